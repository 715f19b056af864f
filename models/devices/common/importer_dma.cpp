// ImporterDma: the importer data path on the SystemC platform. See importer_dma.h.
#include "models/devices/common/importer_dma.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include <systemc>

#include "hmm/p2p_checker.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmap_lock.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/dma_engine.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/memory_target.h"
#include "sim/assert.h"
#include "sim/trace.h"

namespace hmmsim {

namespace {
bool hasFrame(HmmDmaKind k) {
  return k == HmmDmaKind::System || k == HmmDmaKind::Local || k == HmmDmaKind::DevmemP2p;
}
std::uint64_t localNowPs(const tlm_utils::tlm_quantumkeeper& qk) {
  return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
}
/// The calling process is an SC_THREAD (it may wait).
bool inThread() {
  const sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
  return h.valid() && h.proc_kind() == sc_core::SC_THREAD_PROC_;
}
// Gives `v` a cleared spare vector from `pool` when it has no capacity of its own.
template <typename T>
void takeSpare(std::vector<T>& v, std::vector<std::vector<T>>& pool) {
  v.clear();
  if (v.capacity() != 0 || pool.empty()) return;
  v.swap(pool.back());
  pool.pop_back();
}

// Keeps `v`'s buffer in `pool` (up to `max` of them) for a later run.
template <typename T>
void keepSpare(std::vector<T>& v, std::vector<std::vector<T>>& pool, std::size_t max) {
  v.clear();
  if (v.capacity() != 0 && pool.size() < max) pool.push_back(std::move(v));
}
}  // namespace

const char* importerDmaStatusName(ImporterDmaStatus s) {
  switch (s) {
    case ImporterDmaStatus::Ok:
      return "ok";
    case ImporterDmaStatus::Fault:
      return "fault";
    case ImporterDmaStatus::Io:
      return "io";
    case ImporterDmaStatus::Inval:
      return "inval";
  }
  return "?";
}

std::string ImporterDmaParams::check() const {
  std::ostringstream o;
  if (maxBurstBytes == 0 || maxBurstBytes % kPageSize != 0)
    o << "maxBurstBytes must be a positive multiple of 4096 (is " << maxBurstBytes << ")";
  else if (faultAheadPages == 0)
    o << "faultAheadPages must be at least 1";
  else if (faultAroundPages == 0 || (faultAroundPages & (faultAroundPages - 1)) != 0)
    o << "faultAroundPages must be a power of 2 (is " << faultAroundPages << ")";
  else if (maxFaultRetries == 0)
    o << "maxFaultRetries must be at least 1";
  return o.str();
}

ImporterDma::ImporterDma(const std::string& name, Mm& mm, const HmmDmaImporter& imp, PcieDmaEngine& engine,
                         Va start, std::uint64_t pages, const ImporterDmaParams& params, P2pChecker* checker,
                         ImporterDmaDirectory* directory)
    : params_(params),
      engine_(engine),
      mm_(mm),
      directory_(directory),
      mirror_(mm, imp, start, pages, params.mirror, checker, name + ".mirror"),
      stats_(name),
      transfers_(stats_.counter("transfers", "calls", "transfers issued")),
      bursts_(stats_.counter("bursts", "bursts", "DMA bursts issued on the engine or to local memory")),
      bytes_(stats_.counter("bytes", "bytes", "bytes issued")),
      faults_(stats_.counter("device_faults", "faults", "device page faults (translation misses mapped)")),
      ioErrors_(stats_.counter("io_errors", "bursts", "bursts completed with an error status")),
      dmaWaits_(
          stats_.counter("invalidation_waits", "calls", "invalidations that waited for bursts in flight")),
      waitedPs_(stats_.counter("invalidation_wait_ps", "ps", "time invalidations waited for bursts")),
      walkPs_(stats_.counter("walk_ps", "ps", "time device faults spent walking and DMA-mapping")),
      tlbInvalPs_(stats_.counter("tlb_invalidation_ps", "ps", "time spent invalidating the device TLB")),
      unmapPs_(stats_.counter("unmap_ps", "ps", "time DMA unmaps spent in IOMMU invalidations")) {
  const std::string err = params_.check();
  HMMSIM_ASSERT(err.empty(), "ImporterDmaParams of " << name << ": " << err);
  HMMSIM_ASSERT(
      !params_.timingOnly || engine_.params().timingOnly,
      name << ": timing-only transfers need a timing-only DMA engine (PcieDmaEngineParams::timingOnly)");
  mirror_.setWaitForDma([this](ImporterMirror&, Va s, Va e) { waitForBursts(s, e); });
  // The IOMMU invalidations of DMA unmaps go through the IOMMU's invalidation queue: another
  // thread's invalidations ahead of them there delay them (Iommu::queueInvalidation).
  Iommu* iommu = imp.dma ? &imp.dma->iommu() : nullptr;
  mirror_.setChargeTime([this, iommu](MirrorWork w, std::uint64_t ps) {
    if (w == MirrorWork::DmaUnmap && iommu && inThread()) {
      const std::uint64_t now = sc_core::sc_time_stamp().value();
      ps = iommu->queueInvalidation(now, ps) - now;
    }
    chargeMirrorWork(w, ps);
  });
  if ((trace_ = engine_.timelineTrace()) != nullptr) {
    faultTrack_ = "device." + device().name() + ".faults";
    invalTrack_ = "device." + device().name() + ".invalidations";
    mirror_.setTrace(trace_, invalTrack_, [] { return std::uint64_t(sc_core::sc_time_stamp().value()); });
  }
}

ImporterDma::~ImporterDma() {
  mirror_.setChargeTime({});  // the mirror's teardown outlives this object's counters
  retire(~0ull);
  if (directory_) directory_->issuing_.erase(engine_.params().requester.key());
}

ImporterDmaResult ImporterDma::issueWrite(Va va, std::uint64_t len, const std::uint8_t* data,
                                          tlm_utils::tlm_quantumkeeper& qk, Va dmaEnd) {
  return transfer(true, va, len, const_cast<std::uint8_t*>(data), qk, dmaEnd);
}

ImporterDmaResult ImporterDma::issueRead(Va va, std::uint64_t len, std::uint8_t* data,
                                         tlm_utils::tlm_quantumkeeper& qk, Va dmaEnd) {
  return transfer(false, va, len, data, qk, dmaEnd);
}

ImporterDmaResult ImporterDma::write(Va va, std::uint64_t len, const std::uint8_t* data,
                                     tlm_utils::tlm_quantumkeeper& qk) {
  ImporterDmaResult r = issueWrite(va, len, data, qk);
  drain(qk);
  return r;
}

ImporterDmaResult ImporterDma::read(Va va, std::uint64_t len, std::uint8_t* data,
                                    tlm_utils::tlm_quantumkeeper& qk) {
  ImporterDmaResult r = issueRead(va, len, data, qk);
  drain(qk);
  return r;
}

void ImporterDma::drain(tlm_utils::tlm_quantumkeeper& qk) {
  std::uint64_t done = 0;
  for (const Burst& b : inFlight_)
    if (b.donePs != kIssuing) done = std::max(done, b.donePs);
  const std::uint64_t now = localNowPs(qk);
  if (done > now) qk.inc(psTime(done - now));
  retire(~0ull);
  if (qk.need_sync()) qk.sync();
}

void ImporterDma::retireDone(const tlm_utils::tlm_quantumkeeper& qk) {
  retire(localNowPs(qk));
}

ImporterDmaResult ImporterDma::transfer(bool write, Va va, std::uint64_t len, std::uint8_t* data,
                                        tlm_utils::tlm_quantumkeeper& qk, Va dmaEnd) {
  ImporterDmaResult res;
  const Va end = va + len;
  const Va winEnd = mirror_.start() + (mirror_.pages() << kPageShift);
  if (len == 0 || va < mirror_.start() || end > winEnd || end < va) {
    res.status = ImporterDmaStatus::Inval;
    return res;
  }
  ++transfers_;
  if (params_.timingOnly) data = nullptr;
  retire(localNowPs(qk));
  Run run;
  resetRun(run);
  for (Va pos = va; pos < end;) {
    const Va page = pos.alignDown(kPageSize);
    const std::uint64_t n = std::min<std::uint64_t>(end - pos, (page + kPageSize) - pos);
    std::uint64_t id = mirror_.beginDmaId(pos, write);
    for (unsigned tries = 0; id == 0; ++tries) {
      issueRun(run, write, qk, res);  // what is coalesced goes out before the fault
      if (tries == params_.maxFaultRetries) {
        res.status = ImporterDmaStatus::Fault;
        res.mapStatus = HmmStatus::Busy;
      }
      if (tries == params_.maxFaultRetries || !deviceFault(page, end, dmaEnd, write, qk, res)) return res;
      id = mirror_.beginDmaId(pos, write);
    }
    // From here the page is a DMA of the mirror: an invalidation covering it must wait for it.
    pendFirst_ = run.ids.empty() ? page : run.firstPage;
    pendEnd_ = page + kPageSize;
    const DeviceTranslation& t = *mirror_.dmaTranslation(id);
    const DmaAddr a = t.addr + (pos - page);
    if (!run.ids.empty() && !extends(run, t, a, n)) issueRun(run, write, qk, res);
    if (run.ids.empty()) {
      run.kind = t.kind;
      run.addr = a;
      run.data = data ? data + (pos - va) : nullptr;
      run.firstPage = page;
    }
    run.ids.push_back(id);
    run.pfns.push_back(t.pfn);
    run.lastPfn = t.pfn;
    run.len += n;
    pos = pos + n;
  }
  issueRun(run, write, qk, res);
  pendFirst_ = pendEnd_;
  keepSpare(run.ids, spareIds_, kSpareVectors);
  keepSpare(run.pfns, sparePfns_, kSpareVectors);
  return res;
}

bool ImporterDma::extends(const Run& run, const DeviceTranslation& t, DmaAddr a, std::uint64_t n) const {
  if (t.kind != run.kind || a != run.addr + run.len || run.len + n > params_.maxBurstBytes) return false;
  // System pages linked into the window's IOVA range: the root complex's IOMMU stage scatters
  // the burst over the pages' frames. Elsewhere (the direct path, a BAR decode) a burst is one
  // physically contiguous range.
  if (t.kind == HmmDmaKind::System && mirror_.iovaLinked()) return true;
  return !hasFrame(t.kind) || t.pfn == run.lastPfn + 1;
}

bool ImporterDma::deviceFault(Va page, Va end, Va dmaEnd, bool write, tlm_utils::tlm_quantumkeeper& qk,
                              ImporterDmaResult& res) {
  ++faults_;
  const std::uint64_t t0 = localNowPs(qk);
  qk.inc(psTime(params_.faultPs));
  qk.sync();  // the fault is handled at synchronised time: its outcome depends on no quantum
  const Va winStart = mirror_.start();
  const Va winEnd = winStart + (mirror_.pages() << kPageShift);
  const Va ahead = std::min(page + (params_.faultAheadPages << kPageShift), winEnd);
  const Va mapEnd = std::min(end.alignUp(kPageSize), ahead);
  // A driver's prefetch of a structure of known extent (faultAheadPastEnd; why it is not the
  // fault-around block below: importer_dma.h).
  if (params_.faultAheadPastEnd && ahead > mapEnd && mirror_.map(page, ahead, write) == HmmStatus::Ok) {
    traceFault(t0, page, page, ahead, write, HmmStatus::Ok, qk);
    return true;
  }
  // One hmm_range_fault over more than the transfer, where the access would fault: the rest of
  // the device's DMA and the fault-around block (pages that serve the access already bound it:
  // mapping them again would only replace their entries; a write extends over pages a read fault
  // mapped read-only, which it would fault on one transfer at a time). Each page mapped costs its
  // walk and DMA map as any other.
  Va lo = page, hi = mapEnd;
  const Va far = std::min(std::max(dmaEnd.alignUp(kPageSize), mapEnd), ahead);
  Va blockLo = page, blockHi = far;
  if (params_.faultAroundPages > 1) {
    const std::uint64_t block = params_.faultAroundPages << kPageShift;
    blockLo = winStart + ((page - winStart) / block) * block;
    blockHi = std::max(far, std::min(blockLo + block, ahead));
  }
  if (blockLo < page || blockHi > mapEnd) {
    // The block stays inside the faulting page's vma, as the kernel's fault-around does.
    MmapReadLock l(mm_);
    if (const Vma* v = mm_.vmaLookup(page)) {
      blockLo = std::max(blockLo, v->vmStart);
      blockHi = std::min(blockHi, v->vmEnd);
    }
  }
  while (hi < blockHi && !mirror_.mappedFor(hi, write)) hi = hi + kPageSize;
  while (lo > blockLo && !mirror_.mappedFor(lo - kPageSize, write)) lo = lo - kPageSize;
  if ((lo < page || hi > mapEnd) && mirror_.map(lo, hi, write) == HmmStatus::Ok) {
    traceFault(t0, page, lo, hi, write, HmmStatus::Ok, qk);
    return true;
  }
  const HmmStatus st = mirror_.map(page, mapEnd, write);
  traceFault(t0, page, page, mapEnd, write, st, qk);
  if (st == HmmStatus::Ok) return true;
  res.status = ImporterDmaStatus::Fault;
  res.mapStatus = st;
  return false;
}

void ImporterDma::traceFault(std::uint64_t startPs, Va page, Va mapStart, Va mapEnd, bool write, HmmStatus st,
                             tlm_utils::tlm_quantumkeeper& qk) {
  if (trace_ == nullptr || !trace_->on(TraceCategory::HmmFault)) return;
  std::ostringstream args;
  args << (write ? "write" : "read") << " at " << page << ", mapped [" << mapStart << ", " << mapEnd
       << "): " << hmmStatusName(st);
  trace_->slice(TraceCategory::HmmFault, faultTrack_, "device fault", startPs, localNowPs(qk) - startPs,
                args.str());
}

void ImporterDma::issueRun(Run& run, bool write, tlm_utils::tlm_quantumkeeper& qk, ImporterDmaResult& res) {
  if (run.ids.empty()) return;
  mirror_.noteDmaAccesses(run.ids, run.len);
  // The burst is in flight from now on, its completion time known once the engine issued it
  // (the engine may sync meanwhile, and an invalidation then waits for it: waitForBursts).
  const std::uint64_t seq = nextBurst_++;
  Burst b;
  b.seq = seq;
  b.first = run.firstPage;
  b.end = run.firstPage + (run.ids.size() << kPageShift);
  b.ids.swap(run.ids);  // the run keeps the burst's spare vector (see retireBurst)
  b.donePs = kIssuing;
  inFlight_.push_back(std::move(b));
  pendFirst_ = std::max(pendFirst_, inFlight_.back().end);
  DmaIssue d;
  if (run.kind == HmmDmaKind::Local) {
    d.donePs = issueLocal(run, write, qk);
  } else {
    current_ = &run;
    currentBus_.reset();
    if (directory_) directory_->issuing_[engine_.params().requester.key()] = this;
    d = write ? engine_.issueWrite(run.addr.value(), run.len, run.data, qk)
              : engine_.issueRead(run.addr.value(), run.len, run.data, qk);
    // The entry stays (null): no map node allocated and freed for every burst.
    if (directory_) directory_->issuing_[engine_.params().requester.key()] = nullptr;
    current_ = nullptr;
  }
  if (d.status != CplStatus::SuccessfulCompletion) {
    ++ioErrors_;
    if (res.status == ImporterDmaStatus::Ok) {
      res.status = ImporterDmaStatus::Io;
      res.cpl = d.status;
    }
  }
  ++bursts_;
  bytes_ += run.len;
  ++res.bursts;
  res.bytes += run.len;
  res.donePs = std::max(res.donePs, d.donePs);
  for (Burst& x : inFlight_)
    if (x.seq == seq) x.donePs = d.donePs;
  // Only a waiting invalidation needs the news; a notification nobody waits for would still cost a
  // delta cycle per burst.
  if (progressWaiters_ != 0) progress_.notify(sc_core::SC_ZERO_TIME);
  resetRun(run);
}

void ImporterDma::resetRun(Run& run) {
  // The vectors keep their capacity and take spare ones (retired bursts', finished runs') when
  // they have none: a stream of bursts allocates nothing once warm.
  takeSpare(run.ids, spareIds_);
  takeSpare(run.pfns, sparePfns_);
  run.kind = HmmDmaKind::None;
  run.addr = DmaAddr();
  run.len = 0;
  run.data = nullptr;
  run.firstPage = Va();
  run.lastPfn = Pfn();
}

std::uint64_t ImporterDma::issueLocal(const Run& run, bool write, tlm_utils::tlm_quantumkeeper& qk) {
  const std::uint64_t now = localNowPs(qk);
  if (local_) return local_(run.addr, run.len, run.data, write, now);
  if (run.data) {
    if (write)
      mm_.physMem().write(Pa(run.addr.value()), run.data, run.len);
    else
      mm_.physMem().read(Pa(run.addr.value()), run.data, run.len);
  }
  return now;
}

void ImporterDma::retire(std::uint64_t ps) {
  std::size_t keep = 0;
  for (std::size_t i = 0; i < inFlight_.size(); ++i) {
    if (inFlight_[i].donePs != kIssuing && inFlight_[i].donePs <= ps) {
      retireBurst(inFlight_[i]);
    } else {
      // No self-move: moving a vector onto itself leaves it empty (the burst's DMAs would leak).
      if (keep != i) inFlight_[keep] = std::move(inFlight_[i]);
      ++keep;
    }
  }
  inFlight_.resize(keep);
}

void ImporterDma::retireBurst(Burst& b) {
  mirror_.endDmas(b.ids);  // the burst's last byte: still a legal access?
  keepSpare(b.ids, spareIds_, kSpareVectors);
}

void ImporterDma::waitForBursts(Va start, Va end) {
  std::uint64_t until = 0;
  for (;;) {
    // Pages the device thread took a DMA for and has not issued yet, or a burst it is issuing:
    // wait until it has (it needs no lock for that), then for the completion.
    bool issuing = pendFirst_ < pendEnd_ && pendFirst_ < end && start < pendEnd_;
    until = 0;
    for (const Burst& b : inFlight_)
      if (b.first < end && start < b.end) {
        if (b.donePs == kIssuing)
          issuing = true;
        else
          until = std::max(until, b.donePs);
      }
    if (!issuing || !inThread()) break;
    ++progressWaiters_;
    sc_core::wait(progress_);
    --progressWaiters_;
  }
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (until > now && inThread()) {
    // The invalidating thread sleeps until the device's last burst on the range completed.
    ++dmaWaits_;
    waitedPs_ += until - now;
    seqWait(psTime(until - now));
    if (trace_ != nullptr && trace_->on(TraceCategory::HmmNotifier))
      trace_->slice(TraceCategory::HmmNotifier, invalTrack_, "wait for in-flight DMA", now, until - now);
  }
  std::size_t keep = 0;
  for (std::size_t i = 0; i < inFlight_.size(); ++i) {
    Burst& b = inFlight_[i];
    if (b.donePs != kIssuing && ((b.first < end && start < b.end) || b.donePs <= until)) {
      retireBurst(b);
    } else {
      if (keep != i) inFlight_[keep] = std::move(b);
      ++keep;
    }
  }
  inFlight_.resize(keep);
}

void ImporterDma::chargeMirrorWork(MirrorWork what, std::uint64_t ps) {
  if (!inThread()) return;  // elaboration or teardown: no thread to delay
  ExecContext& ctx = mm_.blocker().current();
  // The walk may sleep (handle_mm_fault); the invalidations are busy waits in the kernel
  // (qi_submit_sync, a device's invalidation completion), legal in a non-blockable
  // invalidation, but a SystemC wait lets other threads run: never with a spinlock held.
  if (what == MirrorWork::Walk || ctx.nonBlockDepth() == 0 || ctx.spinDepth() != 0)
    ctx.mightSleep(what == MirrorWork::Walk ? "hmm_range_fault" : "importer: device/IOMMU invalidation",
                   LockSite::here());
  (what == MirrorWork::Walk ? walkPs_ : what == MirrorWork::TlbInvalidation ? tlbInvalPs_ : unmapPs_) += ps;
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  seqWait(psTime(ps));
  if (trace_ != nullptr && what != MirrorWork::Walk && trace_->on(TraceCategory::HmmNotifier))
    trace_->slice(TraceCategory::HmmNotifier, invalTrack_,
                  what == MirrorWork::TlbInvalidation ? "device TLB invalidation" : "IOMMU invalidation", now,
                  ps);
}

std::optional<std::size_t> ImporterDma::currentPage(std::uint64_t busAddr) {
  if (!current_ || (current_->kind != HmmDmaKind::DevmemP2p && current_->kind != HmmDmaKind::VmaP2p))
    return std::nullopt;
  if (!currentBus_) currentBus_ = busAddr;  // the burst's first access is at its first byte
  const std::uint64_t off = (current_->addr.value() & (kPageSize - 1)) + (busAddr - *currentBus_);
  const std::uint64_t i = off >> kPageShift;
  if (busAddr < *currentBus_ || i >= current_->pfns.size()) return std::nullopt;
  return i;
}

ImporterDmaDirectory::ImporterDmaDirectory(P2pChecker& checker) : checker_(checker) {}

void ImporterDmaDirectory::watchBar(PcieMemoryTarget& target, DevPageOfPfn devPageOf,
                                    DevPageOfVa devPageOfVa) {
  target.setAccessObserver([this, f = std::move(devPageOf),
                            g = std::move(devPageOfVa)](const PcieTargetAccess& a) { onAccess(a, f, g); });
}

ImporterDma* ImporterDmaDirectory::issuingPeer(Bdf requester) const {
  auto it = issuing_.find(requester.key());
  if (it == issuing_.end() || it->second == nullptr || !it->second->current_) return nullptr;
  const HmmDmaKind k = it->second->current_->kind;
  return k == HmmDmaKind::DevmemP2p || k == HmmDmaKind::VmaP2p ? it->second : nullptr;
}

void ImporterDmaDirectory::onAccess(const PcieTargetAccess& a, const DevPageOfPfn& devPageOf,
                                    const DevPageOfVa& devPageOfVa) {
  auto it = issuing_.find(a.requester.key());
  if (it == issuing_.end() || it->second == nullptr) {
    ++unattributed_;
    return;
  }
  ImporterDma& imp = *it->second;
  // One check per page piece: each page of the burst meant its own device page.
  for (std::uint64_t off = 0; off < a.len;) {
    const std::uint64_t bus = a.addr + off;
    const std::uint64_t n = std::min(a.len - off, kPageSize - (bus & (kPageSize - 1)));
    std::optional<DevPage> expected;
    if (const std::optional<std::size_t> i = imp.currentPage(bus)) {
      // The page the translation meant: the frame's device page (devmem), or the device page the
      // special vma maps at the page's address (the vma maps file page p to device page p).
      if (imp.current_->kind == HmmDmaKind::DevmemP2p)
        expected = devPageOf(imp.current_->pfns[*i]);
      else if (devPageOfVa)
        expected = devPageOfVa(imp.mm_, imp.current_->firstPage + (*i << kPageShift));
    }
    checker_.barAccess(imp.device(), BusAddr(bus), n, expected ? &*expected : nullptr);
    ++checked_;
    off += n;
  }
}

}  // namespace hmmsim
