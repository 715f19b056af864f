#pragma once
// CpuCore: one CPU core running one process's program against its Mm, as a SystemC module.
//
// What it models
//  - A program: a list of user-level operations (CpuOp): loads and stores of byte ranges, the
//    system calls that shape the address space (mmap, munmap, mprotect, madvise, mremap, fork)
//    and compute time. Addresses are absolute or relative to the result of an earlier mmap
//    (a "slot"), so programs need not know where mmap puts things.
//  - The data TLB (Tlb): a load/store looks each page up; a miss costs tlbMissCost and walks the
//    page table (PageTable::lookup, the hardware walker); an entry that does not allow the access
//    raises a page fault, which costs faultCost and runs the kernel's handler
//    (handleUserFault in memory.h), then the walk is repeated, as hardware re-executes the access.
//    The walker sets the pte's Accessed bit, and Dirty on a write, like x86; a TLB entry is cached
//    writable only once the pte is dirty, so the first write through a clean entry walks again
//    (the x86 dirty-bit assist).
//  - TLB shootdown: the core subscribes to its mm's notifiers (a plain MmuNotifier) and flushes
//    the invalidated range from its TLB at the end of every invalidation round (flushRange, with
//    the kernel's single-page ceiling), charging tlbShootdownCost to itself; release (exit_mmap)
//    flushes everything. The cost goes to the op that raised the round (this core's syscall) or,
//    for another thread's round at time t, to the first op retiring after t (never to one
//    retiring at t: SystemC's order of same-time processes must not decide it). (The kernel flushes inside
//    the page-table operation, before invalidate_range_end; the mm raises a round around every page-table
//    change that needs a flush, so observing the round's end flushes at a correct point: after the entries
//    changed.)
//  - Page walks cost tlbMissCost, or with walkThroughMemory also one memory read per page-table
//    entry the walk touches (the table pages are RAM frames of the mm's PhysMem).
//  - Memory traffic: every accessed page chunk is one TLM b_transport to the memory bound to
//    iSocket (Dram, or a SystemBus that also reaches BARs and device-coherent memory
//    through a root complex), with the translated physical address; the data moves through it.
//  - Signals: an access that faults with SIGSEGV/SIGBUS (or a bus error from the memory) kills
//    the process: the program stops, the op records the error, killed() is true.
// What it leaves out: caches (every access goes to memory), instruction fetch, out-of-order
//   overlap of misses, multiple threads per process, scheduling (one program per core), PCID.
// Timing: loosely timed with a tlm_quantumkeeper. Pure-core state (page tables, vmas, notifiers)
//   is read or changed only at synchronized time: the core syncs before every walk, fault and
//   system call; TLB hits and memory transfers accumulate local time within the quantum.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <systemc>
#include <tlm>

#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/tlb.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;
class TraceSink;

/// One user-level operation of a CpuCore program. Build with the factory functions.
struct CpuOp {
  enum class Kind {
    Load,      ///< read `len` bytes at the address (kept in the result's `data`)
    Store,     ///< write `len` bytes of `value` at the address
    Mmap,      ///< mmap(addr or 0, len, prot, flags) of anonymous memory; result -> slot `slot`
    Munmap,    ///< munmap(address, len)
    Mprotect,  ///< mprotect(address, len, prot)
    Madvise,   ///< madvise(address, len, advice)
    Mremap,    ///< mremap(address, len, newLen, flags); result (the old address on failure) -> `resultSlot`
    Fork,      ///< fork(): the child mm is kept by the core (children()); the program continues as the parent
    Compute,   ///< spend `computePs` without touching memory
    Until,     ///< idle until absolute simulated time `computePs` (no wait once it has passed)
  };
  Kind kind = Kind::Compute;
  /// Address = (slot >= 0 ? slotAddress(slot) : Va(0)) + offset. For Mmap: the slot that receives
  /// the mapped address (offset is then the address hint, 0 = none).
  int slot = -1;
  std::uint64_t offset = 0;
  std::uint64_t len = 0;     ///< bytes
  std::uint64_t newLen = 0;  ///< Mremap: new length (bytes)
  int resultSlot = -1;       ///< Mremap: slot that receives the new address
  /// Mremap with MREMAP_FIXED: the new address = (newSlot >= 0 ? slotAddress(newSlot) : Va(0)) +
  /// newOffset.
  int newSlot = -1;
  std::uint64_t newOffset = 0;
  int prot = 0;                 ///< Mmap/Mprotect: PROT_* bits
  int flags = 0;                ///< Mmap: MAP_* bits (MAP_ANONYMOUS is added); Mremap: MREMAP_*
  int advice = 0;               ///< Madvise: MADV_*
  std::uint8_t value = 0;       ///< Store: byte written
  std::uint64_t computePs = 0;  ///< Compute: duration (ps); Until: the absolute time (ps)

  static CpuOp load(int slot, std::uint64_t offset, std::uint64_t len);
  static CpuOp store(int slot, std::uint64_t offset, std::uint64_t len, std::uint8_t value);
  static CpuOp mmap(int resultSlot, std::uint64_t len, int prot, int flags, std::uint64_t hint = 0);
  static CpuOp munmap(int slot, std::uint64_t offset, std::uint64_t len);
  static CpuOp mprotect(int slot, std::uint64_t offset, std::uint64_t len, int prot);
  static CpuOp madvise(int slot, std::uint64_t offset, std::uint64_t len, int advice);
  static CpuOp mremap(int slot, std::uint64_t offset, std::uint64_t len, std::uint64_t newLen, int flags,
                      int resultSlot, int newSlot = -1, std::uint64_t newOffset = 0);
  static CpuOp fork();
  static CpuOp compute(std::uint64_t ps);
  /// Idle until absolute time `ps` (a timed script: the next op starts then, or at once if later).
  static CpuOp until(std::uint64_t ps);
};
using CpuProgram = std::vector<CpuOp>;

/// What one executed op did.
struct CpuOpResult {
  Errno err = Errno::Ok;           ///< the system call's return, or Fault/NoMem for a killed access
  Va addr;                         ///< Mmap/Mremap: the address returned
  sc_core::sc_time start;          ///< simulated time the op started
  sc_core::sc_time end;            ///< simulated time it completed
  std::vector<std::uint8_t> data;  ///< Load: the bytes read
};

/// Costs charged by the core. Every field: unit, default, meaning.
struct CpuCoreParams {
  /// Page-fault cost (ps): exception entry/exit and handle_mm_fault, excluding the memory traffic
  /// of the access itself. Default 1000000 (1 us).
  std::uint64_t faultCostPs = 1'000'000;
  /// TLB-miss cost (ps): the hardware page walk (its accesses assumed to hit the caches).
  /// Default 30000 (30 ns).
  std::uint64_t tlbMissCostPs = 30'000;
  /// System-call cost (ps): entry/exit plus the kernel work of mmap/munmap/mprotect/... (one
  /// figure for all). Default 500000 (500 ns).
  std::uint64_t syscallCostPs = 500'000;
  /// Cost of one TLB flush caused by a notifier round (ps): local invlpg/flush plus the
  /// shootdown IPI round trip. Default 200000 (200 ns).
  std::uint64_t tlbShootdownCostPs = 200'000;
  /// Cost of a TLB hit (ps), added per page chunk accessed. Default 0 (part of the load/store).
  std::uint64_t tlbHitCostPs = 0;
  /// Page walks read their page-table entries through memory: on a TLB miss, each entry the
  /// walk touches (PGD, PUD, PMD, PTE as far as the leaf: 4 for a 4 KiB page, 3 for 2 MiB, 2 for
  /// 1 GiB) is one dependent 8-byte read at the table frame's physical address through iSocket,
  /// on top of tlbMissCost (which then stands for the walker's own overhead). No paging-structure
  /// caches: every level is read. Default false (a walk costs tlbMissCost only).
  bool walkThroughMemory = false;
  /// The core's data TLB.
  TlbParams tlb;
};

class CpuCore : public sc_core::sc_module {
 public:
  /// Memory side (bind to Dram::tSocket or a SystemBus::tSocket).
  tlm_utils::simple_initiator_socket<CpuCore> iSocket{"iSocket"};

  /// Runs `program` against `mm` from time 0 (mm must outlive the core). Stats group: the
  /// module's name; the TLB's: "<name>.dtlb".
  CpuCore(sc_core::sc_module_name name, const CpuCoreParams& params, Mm& mm, CpuProgram program);
  ~CpuCore() override;

  /// Per op, in program order (only the ops that ran).
  const std::vector<CpuOpResult>& results() const { return results_; }
  /// The process was killed by a signal (SIGSEGV/SIGBUS); the program stopped at the failing op.
  bool killed() const { return killed_; }
  /// True once the program ended (normally or killed).
  bool done() const { return done_; }
  /// When the program ended.
  sc_core::sc_time finishTime() const { return finish_; }
  /// Address held by a slot (after the mmap that fills it ran).
  Va slotAddress(int slot) const;
  /// Children created by Fork ops (their Mm lives as long as the core).
  const std::vector<std::unique_ptr<Mm>>& children() const { return children_; }

  Tlb& tlb() { return tlb_; }
  Mm& mm() { return mm_; }
  /// Optional timeline: page faults as "cpu.fault" slices and TLB shootdowns as "hmm.notifier"
  /// instants on the track named after the core. `sink` must outlive the core; nullptr = off.
  void setTrace(TraceSink* sink) { trace_ = sink; }
  /// Stats: "loads", "stores", "bytes_loaded", "bytes_stored", "page_faults", "syscalls",
  /// "tlb_shootdowns", "bus_errors", "signals".
  StatsGroup& stats() { return stats_; }

 private:
  // The core's subscription to its mm: TLB shootdown at the end of each invalidation round.
  class Shootdown : public MmuNotifier {
   public:
    explicit Shootdown(CpuCore& core) : core_(core) {}
    void invalidateRangeEnd(const MmuNotifierRange& range) override;
    void release(Mm* mm) override;

   private:
    CpuCore& core_;
  };

  void run();
  static bool isAccess(const CpuOp& op) {
    return op.kind == CpuOp::Kind::Load || op.kind == CpuOp::Kind::Store;
  }
  /// A load or store: moves the bytes (res.data for a load); Ok or the error that kills.
  Errno execAccess(const CpuOp& op, CpuOpResult& res);
  /// mmap, munmap, mprotect, madvise, mremap or fork at synchronized time, charging the syscall.
  Errno execSyscall(const CpuOp& op, CpuOpResult& res);
  /// After an op: charge pending shootdowns, deliver the fatal signal of a failed access, record.
  void retire(const CpuOp& op, CpuOpResult& res);
  /// A notifier round's TLB flush cost, owed by the op that retires next (see remoteShootdowns_).
  void oweShootdown();
  /// The shootdown time the op retiring now owes (its own rounds, remote rounds before now).
  sc_core::sc_time takeShootdowns();
  /// Slot `slot` (ignored if < 0) holds `addr` from now on.
  void setSlot(int slot, Va addr);
  Va address(const CpuOp& op) const;
  /// Executes one load/store; returns Ok or the error that killed the process.
  Errno access(const CpuOp& op, Va va, std::uint8_t* buf, bool write);
  /// Translates the page of `va` for the access (TLB, walk, faults); Ok or the killing error.
  Errno translate(Va va, bool write, Pa& pa);
  Errno memoryTransfer(Pa pa, std::uint8_t* buf, std::size_t len, bool write);
  /// walkThroughMemory: read the entries the walk for `va` touches. Ok or the bus error.
  Errno walkReads(Va va);
  void sync();
  /// Until: sync, then sleep until absolute time `atPs` (local time 0 afterwards).
  void waitUntil(std::uint64_t atPs);
  void charge(const sc_core::sc_time& t) { qk_.inc(t); }

  CpuCoreParams params_;
  Mm& mm_;
  CpuProgram program_;
  Tlb tlb_;
  Shootdown shootdown_;
  tlm_utils::tlm_quantumkeeper qk_;  // raw-systemc: its sync() is never called; CpuCore::sync() seqWaits
  sc_core::sc_time faultCost_, tlbMissCost_, syscallCost_, shootdownCost_, tlbHitCost_;
  /// Shootdowns this core's own thread raised (its syscalls): charged when the op retires.
  sc_core::sc_time pendingShootdowns_;
  /// Shootdowns other threads raised, with the SystemC time of the round: a round at time t is
  /// charged by the first retire at a time after t, whichever process ran first at t.
  std::vector<std::pair<sc_core::sc_time, sc_core::sc_time>> remoteShootdowns_;
  sc_core::sc_process_handle self_;  ///< the run() thread
  std::vector<Va> slots_;
  std::vector<CpuOpResult> results_;
  std::vector<std::unique_ptr<Mm>> children_;
  TraceSink* trace_ = nullptr;
  bool killed_ = false;
  bool done_ = false;
  sc_core::sc_time finish_;

  StatsGroup stats_;
  Counter& loads_;
  Counter& stores_;
  Counter& bytesLoaded_;
  Counter& bytesStored_;
  Counter& pageFaults_;
  Counter& syscalls_;
  Counter& shootdowns_;
  Counter& busErrors_;
  Counter& signals_;
  Counter& walkReads_;
};

}  // namespace hmmsim
