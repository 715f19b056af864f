// Many importers against a small BAR. See small_bar.h.
#include "models/platform/small_bar.h"

#include <algorithm>

#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/config.h"
#include "sim/errno.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}

/// splitmix64: one well-mixed 64-bit word per (seed, word index).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

std::uint8_t smallBarPatternByte(std::uint64_t seed, std::uint64_t off) {
  return std::uint8_t(mix(seed * 0x100000001b3ull ^ (off >> 3)) >> (8 * (off & 7)));
}

SmallBar::SmallBar(Platform& platform, const SmallBarParams& params)
    : params_(params),
      parts_(platform, params.gpu, params.nic, params.process),
      stats_("workload"),
      reads_(stats_.counter("reads", "reads", "reads completed (every byte read)")),
      readsFailed_(stats_.counter("reads_failed", "reads", "reads given up after `retries` refused retries")),
      refusals_(stats_.counter("refusals", "tries", "tries of a read whose special-vma map was refused")),
      readErrors_(stats_.counter("read_errors", "reads", "reads failed other than by a refused map")),
      bytesRead_(stats_.counter("bytes_read", "B", "bytes read by completed reads")),
      bytesWrong_(stats_.counter("bytes_wrong", "B", "bytes read that differ from VRAM's")) {
  const SmallBarParams& c = params_;
  if (c.importers == 0) fail("importers", "at least one importer");
  if (c.strideBytes == 0 || c.strideBytes % kPageSize != 0)
    fail("stride", "the stride must be a positive multiple of 4KiB");
  if (c.sliceBytes == 0 || c.sliceBytes % c.strideBytes != 0)
    fail("slice", "the slice must be a positive multiple of stride");
  if (c.readBytes == 0 || c.readBytes > c.strideBytes) fail("read", "a read must be 1 byte to stride");
  if (c.passes == 0) fail("passes", "at least one pass");
  const GpuParams& g = parts_.gpu().gpu().params();
  const std::uint64_t span = std::uint64_t(c.importers) * c.sliceBytes;
  if (span > g.vramBytes)
    fail("slice", "importers x slice (" + std::to_string(span) + " bytes) exceeds the GPU's VRAM (" +
                      std::to_string(g.vramBytes) + " bytes): fewer importers, a smaller slice or more vram");
  // What the GPU left in VRAM at every read location.
  PhysMem& pm = platform.physMem();
  std::vector<std::uint8_t> pat(c.readBytes);
  for (std::size_t i = 0; i < c.importers; ++i)
    for (std::uint64_t k = 0; k < readsPerPass(); ++k) {
      const std::uint64_t off = vramOffset(i, k);
      for (std::uint64_t b = 0; b < c.readBytes; ++b) pat[b] = smallBarPatternByte(c.seed, off + b);
      pm.write(g.vramPa + off, pat.data(), c.readBytes);
    }
  const Va base = parts_.mapVram(0, span);
  importers_.resize(c.importers);
  for (std::size_t i = 0; i < c.importers; ++i) {
    Importer& imp = importers_[i];
    imp.base = base + i * c.sliceBytes;
    imp.dma = parts_.newImporter(c.nic + ".region" + std::to_string(i), imp.base, c.sliceBytes);
  }
  buf_.resize(c.readBytes);
  const StatsGroup& bar = parts_.gpu().driver().exporter().bar().stats();
  barRevokes0_ = bar.counterValue("revoke_hook_calls");
  barRevokedPages0_ = bar.counterValue("revoked_pages");
  barReclaims0_ = bar.counterValue("reclaims");
}

SmallBar::~SmallBar() = default;

std::uint64_t SmallBar::vramOffset(std::size_t i, std::uint64_t read) const {
  return std::uint64_t(i) * params_.sliceBytes + (read % readsPerPass()) * params_.strideBytes;
}

void SmallBar::start() {
  sc_core::sc_spawn([this] { run(); }, (std::string(parts_.nic().basename()) + "_small_bar").c_str());
}

// The NIC's round-robin over its importers: the next one that is not backing off makes one
// read; when every unfinished importer backs off, the NIC waits for the earliest.
void SmallBar::run() {
  SeqQuantumKeeper qk;
  qk.reset();
  std::size_t cursor = 0;
  const std::size_t n = importers_.size();
  while (finished_ < n) {
    const std::uint64_t now = qk.get_current_time().value();
    std::size_t pick = n;
    std::uint64_t earliest = ~0ull;
    for (std::size_t j = 0; j < n && pick == n; ++j) {
      const std::size_t i = (cursor + j) % n;
      if (importers_[i].done) continue;
      if (importers_[i].readyPs <= now) pick = i;
      earliest = std::min(earliest, importers_[i].readyPs);
    }
    if (pick == n) {  // everyone backs off
      qk.set(sc_core::sc_time::from_value(earliest) - sc_core::sc_time_stamp());
      qk.sync();
      continue;
    }
    readNext(pick, qk);
    cursor = pick + 1;
  }
  qk.sync();
  endPs_ = sc_core::sc_time_stamp().value();
}

void SmallBar::readNext(std::size_t i, tlm_utils::tlm_quantumkeeper& qk) {
  Importer& imp = importers_[i];
  const std::uint64_t k = imp.next % readsPerPass();
  const Va va = imp.base + k * params_.strideBytes;
  const std::uint64_t startPs = qk.get_current_time().value();
  const ImporterDmaResult r = imp.dma->read(va, params_.readBytes, buf_.data(), qk);
  const std::uint64_t endPs = qk.get_current_time().value();
  const Errno refusal = imp.dma->mirror().lastP2pError();
  if (r.status == ImporterDmaStatus::Fault && refusal != Errno::Ok) {
    ++refusals_;
    if (trace_)
      trace_->slice(TraceCategory::Dma, "device." + params_.nic,
                    std::string("refused (") + errnoName(refusal) + ")", startPs, endPs - startPs);
    if (imp.tries++ < params_.retries) {
      imp.readyPs = endPs + params_.backoffPs;
      return;
    }
    ++readsFailed_;
  } else if (!r.ok()) {
    ++readErrors_;
    if (errors_.size() < 4)
      errors_.push_back("region " + std::to_string(i) + " read " + std::to_string(imp.next) + ": " +
                        importerDmaStatusName(r.status));
  } else {
    const std::uint64_t off = vramOffset(i, k);
    std::uint64_t wrong = 0;
    for (std::uint64_t b = 0; b < params_.readBytes; ++b)
      wrong += buf_[b] != smallBarPatternByte(params_.seed, off + b);
    ++reads_;
    bytesRead_ += params_.readBytes;
    bytesWrong_ += wrong;
    imp.bytes += params_.readBytes - wrong;
    if (trace_)
      trace_->slice(TraceCategory::Dma, "device." + params_.nic, "read region " + std::to_string(i), startPs,
                    endPs - startPs);
  }
  imp.tries = 0;
  imp.readyPs = endPs;
  if (++imp.next == readsPerPass() * params_.passes) finishImporter(imp, qk);
}

// Its work is done: the region is deregistered (ibv_dereg_mr): every page it still maps is
// given back, so its windows become idle for the others.
void SmallBar::finishImporter(Importer& imp, tlm_utils::tlm_quantumkeeper& qk) {
  imp.dma->drain(qk);
  imp.dma->mirror().unmapAll();
  imp.done = true;
  ++finished_;
}

void SmallBar::finish() {
  const StatsGroup& bar = parts_.gpu().driver().exporter().bar().stats();
  std::uint64_t faults = 0, minShare = ~0ull, maxShare = 0;
  for (const Importer& imp : importers_) {
    faults += imp.dma->stats().counterValue("device_faults");
    minShare = std::min(minShare, imp.bytes);
    maxShare = std::max(maxShare, imp.bytes);
  }
  stats_.counter("device_faults", "faults", "device page faults of every importer") += faults;
  const std::uint64_t revokes = bar.counterValue("revoke_hook_calls") - barRevokes0_;
  stats_.counter("revokes", "calls", "revocations the exporter made (revoke hook calls)") += revokes;
  stats_.counter("revoked_pages", "pages", "held pages revoked") +=
      bar.counterValue("revoked_pages") - barRevokedPages0_;
  stats_.counter("window_reclaims", "windows",
                 "windows re-pointed at another chunk (idle ones, and busy ones after a revoke)") +=
      bar.counterValue("reclaims") - barReclaims0_;
  const double secs = double(endPs_) * 1e-12;
  stats_.scalar("elapsed", "ps", "start to the last importer's end").set(double(endPs_));
  stats_.scalar("throughput", "B/s", "bytes read correctly per second")
      .set(secs > 0 ? double(bytesRead_.value() - bytesWrong_.value()) / secs : 0);
  stats_.scalar("revokes_per_s", "1/s", "revocations per second").set(secs > 0 ? double(revokes) / secs : 0);
  stats_.scalar("share_min", "B", "bytes the least served importer read correctly").set(double(minShare));
  stats_.scalar("share_max", "B", "bytes the most served importer read correctly").set(double(maxShare));
  stats_.scalar("fairness", "ratio", "share_min / share_max (1: every importer served alike)")
      .set(maxShare > 0 ? double(minShare) / double(maxShare) : 0);
}

void SmallBar::check(const std::string& at, std::vector<std::string>& failures) const {
  if (finished_ != importers_.size())
    failures.push_back(at + std::to_string(importers_.size() - finished_) + " of " +
                       std::to_string(importers_.size()) + " importers did not finish their reads");
  if (bytesWrong_.value() > 0)
    failures.push_back(at + std::to_string(bytesWrong_.value()) + " bytes read differ from VRAM's");
  if (readErrors_.value() > 0)
    failures.push_back(at + std::to_string(readErrors_.value()) +
                       " read(s) failed other than by a refused map");
  for (const std::string& e : errors_) failures.push_back(at + e);
}

void SmallBar::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  parts_.addStats(r);
}

std::vector<WorkloadRegion> SmallBar::regions() const {
  if (importers_.empty()) return {};
  return {{"vram", params_.process, importers_.front().base,
           std::uint64_t(params_.importers) * params_.sliceBytes}};
}

}  // namespace hmmsim
