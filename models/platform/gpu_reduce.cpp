// A GPU reduces a buffer of process memory on a Platform. See gpu_reduce.h.
#include "models/platform/gpu_reduce.h"

#include <cstring>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/platform/platform.h"
#include "sim/config.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}

GpuPlatformDevice* gpuNamed(Platform& p, const std::string& key, const std::string& name) {
  auto* g = dynamic_cast<GpuPlatformDevice*>(&p.device(name));
  if (!g) fail(key, "device \"" + name + "\" is not a gpu");
  return g;
}

/// The buffer's words: a xorshift sequence from `seed`.
std::vector<std::uint8_t> reduceWords(std::uint64_t bytes, std::uint64_t seed) {
  std::vector<std::uint8_t> v(bytes);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::uint64_t i = 0; i + 8 <= bytes; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(&v[i], &x, 8);
  }
  return v;
}
}  // namespace

const char* gpuReduceSourceName(GpuReduceSource s) {
  switch (s) {
    case GpuReduceSource::System:
      return "system";
    case GpuReduceSource::PeerVram:
      return "peer_vram";
    case GpuReduceSource::PeerPrivate:
      return "peer_private";
    case GpuReduceSource::Own:
      return "own";
  }
  return "?";
}

std::vector<PlaceableRegion> gpuReducePlaceable(const GpuReduceParams& params, const GpuVramLayout& peer) {
  PlaceableRegion buffer{"buffer", params.process, params.bytes, {}};
  buffer.rule.users = "the process fills it, " + params.gpu + " reads it";
  const std::string source = gpuReduceSourceName(params.source);
  switch (params.source) {
    case GpuReduceSource::System:
      buffer.rule.what = "with source system the buffer is process memory";
      break;
    case GpuReduceSource::PeerPrivate:
    case GpuReduceSource::Own:
      buffer.rule.memory = PlacementRule::Memory::Migrated;
      buffer.rule.what = "with source " + source + " the buffer migrates to " +
                         (params.source == GpuReduceSource::Own ? params.gpu : params.peer) + "'s VRAM";
      buffer.rule.alternative = "or take source: system";
      break;
    case GpuReduceSource::PeerVram:
      // Any VRAM of the peer: the workload writes the words there before the kernel runs.
      setVramRule(buffer.rule, params.peer, peer, 0, peer.vramBytes, params.peer + "'s VRAM");
      buffer.rule.what = "with source peer_vram the buffer is " + params.peer + "'s VRAM";
      buffer.rule.users = params.gpu + " reads it";
      buffer.rule.prot = PROT_READ;
      buffer.rule.alternative = "or take source: system";
      break;
  }
  return {buffer};
}

GpuReduce::GpuReduce(Platform& platform, const GpuReduceParams& params)
    : platform_(platform), params_(params), stats_("workload") {
  if (params.bytes == 0 || params.bytes % kPageSize != 0)
    fail("bytes", "the buffer must be a positive multiple of 4KiB");
  gpu_ = gpuNamed(platform, "gpu", params.gpu);
  const bool needsPeer =
      params.source == GpuReduceSource::PeerVram || params.source == GpuReduceSource::PeerPrivate;
  if (needsPeer) {
    peer_ = gpuNamed(platform, "peer", params.peer);
    if (peer_ == gpu_) fail("peer", "the peer must be another gpu than the reducing one");
  }
  mm_ = &platform.process(params.process);
  const std::vector<PlaceableRegion> placeable =
      gpuReducePlaceable(params, peer_ ? GpuVramLayout::of(*peer_) : GpuVramLayout{});
  checkPlacement(platform, params.place, placeable);
  const std::vector<std::uint8_t> words = reduceWords(params.bytes, params.seed);
  gpuKernelApply(GpuKernelOp::Sum64, 0, words.data(), params.bytes, nullptr, expected_);
  VaResult r;
  if (params.source == GpuReduceSource::PeerVram) {
    if (params.bytes > peer_->gpu().params().vramBytes)
      fail("bytes", "the buffer must fit in the peer's VRAM");
    std::uint64_t vramOffset = 0;  // the process's device-file mapping of the peer, or the workload's own
    if (const ProcessMapping* m = placedMapping(platform, params.place, placeable.front())) {
      r.addr = m->start;
      vramOffset = m->offset - peer_->driver().params().vramMmapOffset;
    } else {
      peerFile_ = peer_->driver().open();
      r = mm_->mmap(Va(0), params.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, peerFile_,
                    peer_->driver().params().vramMmapOffset);
      if (!r.ok()) fail("peer", "mmap of the peer's VRAM failed");
    }
    platform.physMem().write(peer_->gpu().params().vramPa + vramOffset, words.data(),
                             params.bytes);  // its VRAM holds them
  } else if (const std::optional<Va> at = placedRegion(platform, params.place, placeable.front())) {
    r.addr = *at;
    if (copyToUser(*mm_, r.addr, words.data(), params.bytes) != Errno::Ok)
      fail("place", "cannot fill the buffer in mapping \"" + params.place.at("buffer") +
                        "\" (system RAM or the hugetlb pool too small?)");
  } else {
    r = mm_->mmap(Va(0), params.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok() || copyToUser(*mm_, r.addr, words.data(), params.bytes) != Errno::Ok)
      fail("bytes", "cannot map and fill " + std::to_string(params.bytes) + " bytes of anonymous memory");
  }
  buffer_ = r.addr;
  if (gpu_->driver().bindAddressSpace(*mm_, buffer_, params.bytes) != Errno::Ok)
    fail("gpu", "the gpu's address-space window is bound already");
  driver_ = std::make_unique<DriverThread>((std::string(gpu_->gpu().basename()) + "_runtime").c_str(),
                                           platform, [this](DriverThread& t) { run(t); });
}

GpuReduce::~GpuReduce() = default;

void GpuReduce::run(DriverThread& /*t*/) {
  SeqQuantumKeeper qk;
  qk.reset();
  std::uint64_t moved = 0;
  const Va end = buffer_ + params_.bytes;
  if (params_.source == GpuReduceSource::PeerPrivate)
    migrateRc_ = peer_->driver().migrateToVram(*mm_, buffer_, end, &qk, &moved);
  else if (params_.source == GpuReduceSource::Own)
    migrateRc_ = gpu_->driver().migrateToVram(*mm_, buffer_, end, &qk, &moved);
  qk.sync();
  stats_.counter("migrated_pages", "pages", "buffer pages migrated to VRAM before the kernel") += moved;
  GpuVaKernel k;
  k.op = GpuKernelOp::Sum64;
  k.in = buffer_;
  k.bytes = params_.bytes;
  k.outVramOffset = gpu_->driver().kernelRegionOffset();
  const std::uint64_t irqs = gpu_->kernelInterrupts();
  launchRc_ = gpu_->driver().launch(k);
  if (launchRc_ == Errno::Ok) {
    // raw-systemc: kernelCompletion() is notified by delta notification (the MSI handler), in order.
    while (gpu_->kernelInterrupts() == irqs) sc_core::wait(gpu_->kernelCompletion());
    completionPs_ = sc_core::sc_time_stamp().value();
  }
  finished_ = true;
}

std::uint64_t GpuReduce::storedSum() const {
  std::uint64_t v = 0;
  platform_.physMem().read(gpu_->gpu().params().vramPa + gpu_->driver().kernelRegionOffset(), &v, 8);
  return v;
}

void GpuReduce::finish() {
  const GpuVaKernelResult& res = gpu_->gpu().vaResult();
  const bool ran = launchRc_ == Errno::Ok && finished_;
  stats_.counter("bytes", "B", "bytes of the reduced buffer") += params_.bytes;
  stats_.counter("sum_correct", "", "1 when the sum stored in VRAM is the buffer's") +=
      ran && res.ok() && storedSum() == expected_ ? 1 : 0;
  ImporterDma* mmu = gpu_->importerDma();
  stats_.counter("device_faults", "faults", "device faults the GPU's device MMU took during the run") +=
      mmu ? mmu->stats().counterValue("device_faults") : 0;
  const double kernelPs = ran ? double(res.endPs - res.startPs) : 0.0;
  stats_.scalar("kernel_time", "ps", "the kernel's launch to its last store").set(kernelPs);
  stats_.scalar("throughput", "B/s", "buffer bytes per second of kernel time")
      .set(kernelPs > 0 ? double(params_.bytes) / kernelPs * 1e12 : 0.0);
  stats_.scalar("completion_latency", "ps", "the kernel's end -> the runtime woke on its interrupt")
      .set(ran && completionPs_ >= res.endPs ? double(completionPs_ - res.endPs) : 0.0);
  if (trace_ && ran)
    trace_->slice(TraceCategory::Dma, "device." + params_.gpu, "sum64 kernel", res.startPs,
                  res.endPs - res.startPs, std::string("source ") + gpuReduceSourceName(params_.source));
}

void GpuReduce::check(const std::string& at, std::vector<std::string>& failures) const {
  if (migrateRc_ != Errno::Ok)
    failures.push_back(at + ": migrating the buffer to VRAM failed: " + errnoName(migrateRc_));
  if (launchRc_ != Errno::Ok) {
    failures.push_back(at + ": the kernel's launch failed: " + errnoName(launchRc_));
    return;
  }
  if (!finished_) {
    failures.push_back(at + ": the kernel did not complete");
    return;
  }
  const GpuVaKernelResult& res = gpu_->gpu().vaResult();
  if (!res.ok())
    failures.push_back(at + ": the kernel ended with " + importerDmaStatusName(res.status) + " after " +
                       std::to_string(res.bytesIn) + " of " + std::to_string(params_.bytes) + " bytes");
  else if (storedSum() != expected_)
    failures.push_back(at + ": the kernel's sum " + std::to_string(storedSum()) + " is not the buffer's " +
                       std::to_string(expected_));
}

void GpuReduce::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  r.add("device." + params_.gpu, gpu_->gpu().stats());
  if (ImporterDma* d = gpu_->importerDma()) r.add("device." + params_.gpu + ".importer", d->stats());
  r.add("device." + params_.gpu + ".bar", gpu_->gpu().bar().stats());
  if (peer_) r.add("device." + params_.peer + ".bar", peer_->gpu().bar().stats());
}

std::vector<WorkloadRegion> GpuReduce::regions() const {
  return {WorkloadRegion{"buffer", params_.process, buffer_, params_.bytes}};
}

}  // namespace hmmsim
