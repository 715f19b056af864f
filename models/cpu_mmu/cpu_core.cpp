#include "models/cpu_mmu/cpu_core.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"
#include "sim/trace.h"

namespace hmmsim {

// --- CpuOp factories ---------------------------------------------------------------------------

CpuOp CpuOp::load(int slot, std::uint64_t offset, std::uint64_t len) {
  CpuOp op;
  op.kind = Kind::Load;
  op.slot = slot;
  op.offset = offset;
  op.len = len;
  return op;
}
CpuOp CpuOp::store(int slot, std::uint64_t offset, std::uint64_t len, std::uint8_t value) {
  CpuOp op = load(slot, offset, len);
  op.kind = Kind::Store;
  op.value = value;
  return op;
}
CpuOp CpuOp::mmap(int resultSlot, std::uint64_t len, int prot, int flags, std::uint64_t hint) {
  CpuOp op;
  op.kind = Kind::Mmap;
  op.slot = resultSlot;
  op.offset = hint;
  op.len = len;
  op.prot = prot;
  op.flags = flags;
  return op;
}
CpuOp CpuOp::munmap(int slot, std::uint64_t offset, std::uint64_t len) {
  CpuOp op = load(slot, offset, len);
  op.kind = Kind::Munmap;
  return op;
}
CpuOp CpuOp::mprotect(int slot, std::uint64_t offset, std::uint64_t len, int prot) {
  CpuOp op = load(slot, offset, len);
  op.kind = Kind::Mprotect;
  op.prot = prot;
  return op;
}
CpuOp CpuOp::madvise(int slot, std::uint64_t offset, std::uint64_t len, int advice) {
  CpuOp op = load(slot, offset, len);
  op.kind = Kind::Madvise;
  op.advice = advice;
  return op;
}
CpuOp CpuOp::mremap(int slot, std::uint64_t offset, std::uint64_t len, std::uint64_t newLen, int flags,
                    int resultSlot, int newSlot, std::uint64_t newOffset) {
  CpuOp op = load(slot, offset, len);
  op.kind = Kind::Mremap;
  op.newLen = newLen;
  op.flags = flags;
  op.resultSlot = resultSlot;
  op.newSlot = newSlot;
  op.newOffset = newOffset;
  return op;
}
CpuOp CpuOp::fork() {
  CpuOp op;
  op.kind = Kind::Fork;
  return op;
}
CpuOp CpuOp::compute(std::uint64_t ps) {
  CpuOp op;
  op.kind = Kind::Compute;
  op.computePs = ps;
  return op;
}

CpuOp CpuOp::until(std::uint64_t ps) {
  CpuOp op;
  op.kind = Kind::Until;
  op.computePs = ps;
  return op;
}

// --- CpuCore -----------------------------------------------------------------------------------

namespace {
sc_core::sc_time ps(std::uint64_t v) {
  return sc_core::sc_time(static_cast<double>(v), sc_core::SC_PS);
}
std::uint64_t toPs(const sc_core::sc_time& t) {
  return static_cast<std::uint64_t>(std::llround(t.to_seconds() * 1e12));
}
std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

TlbPageSize tlbSizeOf(PtLevel level) {
  switch (level) {
    case PtLevel::Pmd:
      return TlbPageSize::Size2M;
    case PtLevel::Pud:
      return TlbPageSize::Size1G;
    default:
      return TlbPageSize::Size4K;
  }
}

/// What the hardware walker accepts without a fault: a hardware-present leaf, writable for a write.
bool accessOk(const PtWalk& w, bool write) {
  if (w.level == PtLevel::None || !w.pte.isHwPresent()) return false;
  return !write || w.pte.isWrite();
}

constexpr int kMaxFaultsPerAccess = 64;
}  // namespace

CpuCore::CpuCore(sc_core::sc_module_name name, const CpuCoreParams& params, Mm& mm, CpuProgram program)
    : sc_core::sc_module(name),
      params_(params),
      mm_(mm),
      program_(std::move(program)),
      tlb_(params.tlb, std::string(this->name()) + ".dtlb"),
      shootdown_(*this),
      faultCost_(ps(params.faultCostPs)),
      tlbMissCost_(ps(params.tlbMissCostPs)),
      syscallCost_(ps(params.syscallCostPs)),
      shootdownCost_(ps(params.tlbShootdownCostPs)),
      tlbHitCost_(ps(params.tlbHitCostPs)),
      pendingShootdowns_(sc_core::SC_ZERO_TIME),
      stats_(this->name()),
      loads_(stats_.counter("loads", "ops", "load operations executed")),
      stores_(stats_.counter("stores", "ops", "store operations executed")),
      bytesLoaded_(stats_.counter("bytes_loaded", "B", "bytes read by loads")),
      bytesStored_(stats_.counter("bytes_stored", "B", "bytes written by stores")),
      pageFaults_(stats_.counter("page_faults", "faults", "page faults taken (handleUserFault calls)")),
      syscalls_(stats_.counter("syscalls", "calls", "system calls executed")),
      shootdowns_(stats_.counter("tlb_shootdowns", "flushes", "TLB flushes caused by mmu-notifier rounds")),
      busErrors_(stats_.counter("bus_errors", "accesses", "memory transactions that did not complete OK")),
      signals_(stats_.counter("signals", "signals", "fatal signals (SIGSEGV/SIGBUS) delivered")),
      walkReads_(stats_.counter("walk_reads", "reads", "page-table entries read through memory by walks")) {
  // A SystemC platform: kernel sleeps of this mm (migration waits, notifier waits) block SC_THREADs.
  mm_.notifierSubscriptions().setBlocker(scBlocker());
  (void)mm_.notifierSubscriptions().mmuNotifierRegister(shootdown_);
  SC_HAS_PROCESS(CpuCore);
  SC_THREAD(run);
}

CpuCore::~CpuCore() {
  if (shootdown_.subscriptions() != nullptr) mm_.notifierSubscriptions().mmuNotifierUnregister(shootdown_);
}

void CpuCore::Shootdown::invalidateRangeEnd(const MmuNotifierRange& range) {
  if (core_.trace_ && core_.trace_->on(TraceCategory::HmmNotifier))
    core_.trace_->instant(TraceCategory::HmmNotifier, core_.name(), "tlb_shootdown",
                          toPs(sc_core::sc_time_stamp()),
                          std::string("event=") + mmuNotifierEventName(range.event) +
                              " start=" + hex(range.start.value()) + " end=" + hex(range.end.value()));
  core_.tlb_.flushRange(range.start, range.end);
  ++core_.shootdowns_;
  core_.oweShootdown();
}

void CpuCore::Shootdown::release(Mm* /*mm*/) {
  core_.tlb_.flushAll();
  ++core_.shootdowns_;
  core_.oweShootdown();
}

Va CpuCore::slotAddress(int slot) const {
  HMMSIM_ASSERT(slot >= 0 && static_cast<std::size_t>(slot) < slots_.size(),
                "CpuCore " << name() << ": slot " << slot << " used before an mmap filled it");
  return slots_[static_cast<std::size_t>(slot)];
}

Va CpuCore::address(const CpuOp& op) const {
  return (op.slot >= 0 ? slotAddress(op.slot) : Va(0)) + op.offset;
}

void CpuCore::sync() {
  // tlm_quantumkeeper::sync() through the Sequencer: same-time wake-ups in request order.
  seqWait(qk_.get_local_time());
  qk_.reset();
}

void CpuCore::waitUntil(std::uint64_t atPs) {
  sync();
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (atPs > now) seqWait(ps(atPs - now));
  qk_.reset();
}

Errno CpuCore::translate(Va va, bool write, Pa& pa) {
  if (auto t = tlb_.lookup(va); t && (!write || t->writable)) {
    charge(tlbHitCost_);
    pa = t->pa;
    return Errno::Ok;
  }
  // Miss (or a write through a read-only/clean entry): walk at synchronized time.
  charge(tlbMissCost_);
  sync();
  PageTable& pt = mm_.pageTable();
  PtWalk w = pt.lookup(va);
  for (int tries = 0; !accessOk(w, write); ++tries) {
    HMMSIM_ASSERT(tries < kMaxFaultsPerAccess, "CpuCore " << name() << ": access at " << va
                                                          << " keeps faulting although each fault succeeded");
    ++pageFaults_;
    const sc_core::sc_time faultStart = qk_.get_current_time();
    const VmFaultResult r = handleUserFault(mm_, va, write);
    charge(faultCost_);
    if (trace_ && trace_->on(TraceCategory::CpuFault))
      trace_->slice(TraceCategory::CpuFault, name(), write ? "write_fault" : "read_fault", toPs(faultStart),
                    params_.faultCostPs,
                    "va=" + hex(va.value()) + " vm_fault=" + hex(static_cast<std::uint32_t>(r)));
    if (isFaultError(r)) return vmFaultToErrno(r);
    sync();
    w = pt.lookup(va);
  }
  if (params_.walkThroughMemory) {
    if (Errno e = walkReads(va); e != Errno::Ok) return e;
  }
  // The walker sets Accessed, and Dirty for a write, in the leaf entry.
  *w.slot = write ? w.pte.mkHwDirty().mkYoung() : w.pte.mkYoung();
  const Pte e = *w.slot;
  const std::uint64_t leafSize = ptLevelSize(w.level);
  // Cached writable only when the pte is writable and already dirty (x86 dirty-bit assist).
  tlb_.insert(va, e.pfn(), tlbSizeOf(w.level), e.isWrite() && e.isDirty());
  pa = paOf(e.pfn()) + (va.value() & (leafSize - 1));
  return Errno::Ok;
}

Errno CpuCore::walkReads(Va va) {
  PageTable& pt = mm_.pageTable();
  const Pte* path[4];
  const unsigned n = pt.walkPath(va, path);
  for (unsigned i = 0; i < n; ++i) {
    // The entry's physical address: its table's frame plus its offset in the table.
    const std::uint64_t offset = reinterpret_cast<std::uintptr_t>(path[i]) & (kPageSize - 1);
    std::uint8_t entry[8];
    if (Errno e = memoryTransfer(paOf(pt.tablePfn(path[i])) + offset, entry, sizeof entry, false);
        e != Errno::Ok)
      return e;
    ++walkReads_;
  }
  return Errno::Ok;
}

Errno CpuCore::memoryTransfer(Pa pa, std::uint8_t* buf, std::size_t len, bool write) {
  tlm::tlm_generic_payload gp;
  gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp.set_address(pa.value());
  gp.set_data_ptr(buf);
  gp.set_data_length(static_cast<unsigned>(len));
  gp.set_streaming_width(static_cast<unsigned>(len));
  gp.set_byte_enable_ptr(nullptr);
  gp.set_dmi_allowed(false);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  sc_core::sc_time delay = qk_.get_local_time();
  iSocket->b_transport(gp, delay);
  qk_.set(delay);
  if (gp.get_response_status() != tlm::TLM_OK_RESPONSE) {
    ++busErrors_;
    return Errno::Fault;  // SIGBUS
  }
  return Errno::Ok;
}

Errno CpuCore::access(const CpuOp& op, Va va, std::uint8_t* buf, bool write) {
  std::uint64_t moved = 0;
  while (moved < op.len) {
    const Va at = va + moved;
    const std::size_t chunk = static_cast<std::size_t>(
        std::min<std::uint64_t>(op.len - moved, kPageSize - (at.value() & (kPageSize - 1))));
    Pa pa;
    if (Errno e = translate(at, write, pa); e != Errno::Ok) return e;
    if (Errno e = memoryTransfer(pa, buf + moved, chunk, write); e != Errno::Ok) return e;
    moved += chunk;
    if (qk_.need_sync()) sync();
  }
  return Errno::Ok;
}

void CpuCore::setSlot(int slot, Va addr) {
  if (slot < 0) return;
  if (slots_.size() <= static_cast<std::size_t>(slot)) slots_.resize(static_cast<std::size_t>(slot) + 1);
  slots_[static_cast<std::size_t>(slot)] = addr;
}

Errno CpuCore::execAccess(const CpuOp& op, CpuOpResult& res) {
  if (op.kind == CpuOp::Kind::Load) {
    ++loads_;
    res.data.assign(op.len, 0);
    const Errno err = access(op, address(op), res.data.data(), false);
    if (err == Errno::Ok) bytesLoaded_ += op.len;
    return err;
  }
  ++stores_;
  std::vector<std::uint8_t> buf(op.len, op.value);
  const Errno err = access(op, address(op), buf.data(), true);
  if (err == Errno::Ok) bytesStored_ += op.len;
  return err;
}

Errno CpuCore::execSyscall(const CpuOp& op, CpuOpResult& res) {
  ++syscalls_;
  sync();  // the mm changes at synchronized time
  Errno err = Errno::Ok;
  switch (op.kind) {
    case CpuOp::Kind::Mmap: {
      const VaResult r = mm_.mmap(Va(op.offset), op.len, op.prot, op.flags | MAP_ANONYMOUS);
      err = r.err;
      res.addr = r.addr;
      if (r.ok()) setSlot(op.slot, r.addr);
      break;
    }
    case CpuOp::Kind::Munmap:
      err = mm_.munmap(address(op), op.len);
      break;
    case CpuOp::Kind::Mprotect:
      err = mm_.mprotect(address(op), op.len, op.prot);
      break;
    case CpuOp::Kind::Madvise:
      err = mm_.madvise(address(op), op.len, op.advice);
      break;
    case CpuOp::Kind::Mremap: {
      const Va to = (op.newSlot >= 0 ? slotAddress(op.newSlot) : Va(0)) + op.newOffset;
      const VaResult r = mm_.mremap(address(op), op.len, op.newLen, op.flags, to);
      err = r.err;
      res.addr = r.addr;
      setSlot(op.resultSlot, r.ok() ? r.addr : address(op));  // a failed mremap leaves the mapping
      break;
    }
    case CpuOp::Kind::Fork: {
      ForkResult r = mm_.fork(mm_.name() + ".child" + std::to_string(children_.size()));
      err = r.err;
      if (r.ok()) children_.push_back(std::move(r.child));
      break;
    }
    default:
      HMMSIM_ASSERT(false, "CpuCore " << name() << ": op kind " << int(op.kind) << " is not a system call");
  }
  charge(syscallCost_);
  return err;
}

void CpuCore::retire(const CpuOp& op, CpuOpResult& res) {
  // Shootdowns that notifier rounds asked of this core meanwhile.
  const sc_core::sc_time owed = takeShootdowns();
  if (owed != sc_core::SC_ZERO_TIME) charge(owed);
  if (isAccess(op) && res.err != Errno::Ok) {
    killed_ = true;  // SIGSEGV/SIGBUS: the process dies
    ++signals_;
  }
  res.end = qk_.get_current_time();
  results_.push_back(std::move(res));
  if (qk_.need_sync()) sync();
}

void CpuCore::oweShootdown() {
  if (sc_core::sc_is_running() && sc_core::sc_get_current_process_handle() == self_)
    pendingShootdowns_ += shootdownCost_;
  else if (!done_ && !remoteShootdowns_.empty() && remoteShootdowns_.back().first == sc_core::sc_time_stamp())
    remoteShootdowns_.back().second += shootdownCost_;
  else if (!done_)  // a finished program owes nothing
    remoteShootdowns_.emplace_back(sc_core::sc_time_stamp(), shootdownCost_);
}

sc_core::sc_time CpuCore::takeShootdowns() {
  // Another thread's round at time t and this core's retire at t are simultaneous: SystemC runs
  // them in either order (the order of same-time wakeups depends on every other event pending, so
  // two identical machines in one simulation, or one machine next to an unrelated device, would
  // charge the flush to different ops). A round at t is owed by the first retire after t.
  sc_core::sc_time owed = pendingShootdowns_;
  pendingShootdowns_ = sc_core::SC_ZERO_TIME;
  const sc_core::sc_time& now = sc_core::sc_time_stamp();
  std::size_t n = 0;
  while (n < remoteShootdowns_.size() && remoteShootdowns_[n].first < now)
    owed += remoteShootdowns_[n++].second;
  remoteShootdowns_.erase(remoteShootdowns_.begin(),
                          remoteShootdowns_.begin() + static_cast<std::ptrdiff_t>(n));
  return owed;
}

void CpuCore::run() {
  self_ = sc_core::sc_get_current_process_handle();
  qk_.reset();
  for (const CpuOp& op : program_) {
    CpuOpResult res;
    res.start = qk_.get_current_time();
    if (isAccess(op))
      res.err = execAccess(op, res);
    else if (op.kind == CpuOp::Kind::Compute)
      charge(ps(op.computePs));
    else if (op.kind == CpuOp::Kind::Until)
      waitUntil(op.computePs);
    else
      res.err = execSyscall(op, res);
    retire(op, res);
    if (killed_) break;
  }
  sync();
  finish_ = sc_core::sc_time_stamp();
  done_ = true;
}

}  // namespace hmmsim
