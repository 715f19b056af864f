#pragma once
// An endpoint's DMA engine as a SystemC initiator: turns DMA bursts into PCIe transactions.
//
// What it models: segmentation into MWr/MRd (tlp.h) at per-TLP fidelity, or one transaction per
// burst charged with the same wire totals at per-burst fidelity; the device's outstanding
// non-posted request limit (read tags: an MRd needs a free tag, freed when its last completion
// arrives, so read throughput ≤ tags × MRRS / round trip); a minimum issue interval between
// request TLPs; and a posted-write window: at most `postedWindow` MWr may be waiting in fabric
// queues before the engine stalls (approximates hop-by-hop posted credits: a slot is freed
// `queue wait` after issue, so an uncontended stream never stalls).
// Timing: loosely timed. issueWrite/issueRead are called from the caller's SC_THREAD with its
// tlm_quantumkeeper; they return once the burst is issued, with the caller's local time at the
// point where the engine can issue again (possibly past the quantum: the next issue or the caller
// syncs), and report when the burst completes. Payload bytes
// move at issue time (LT); the caller must not consume read data before `donePs`.
// Per-burst tag limit, in closed form (O(1) per burst): tags free evenly as a burst's
// completions arrive, so the next burst starts when the first is free; a burst of n requests
// over k tags completes no earlier than its last request's tag reuse chain allows
// ((n - 1) / k + 1 round trips of one request after its first-round issue). Burst lengths are
// 64-bit (PcieTlpExtension::lengthBytes; the TLM length field saturates).
// A request the router cannot deliver (no route: UR, or an ACS violation: CA) fails at issue
// without charging time or link bandwidth (the TLP's trip to where it was stopped is not modelled).
// Leaves out: relaxed ordering, ATS requests (the AT flag is carried but never set here),
// completion timeouts, 10-bit tag negotiation (`readTags` is just a number).

#include <cstdint>
#include <functional>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/pcie/link_timing.h"
#include "models/pcie/pcie_link_module.h"
#include "models/pcie/pcie_route.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "models/pcie/slot_pool.h"
#include "models/pcie/tlp.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class TraceSink;

/// Simulation fidelity of the PCIe fabric, chosen per run.
enum class PcieFidelity : std::uint8_t {
  PerTlp,    ///< every TLP is a transaction crossing every hop
  PerBurst,  ///< one transaction per DMA burst and hop, charged analytically
};

struct PcieDmaEngineParams {
  Bdf requester;                                 ///< the device's requester id
  PcieLinkConfig link;                           ///< TLP sizing: MPS, MRRS, RCB, 64-bit addressing, ECRC
  PcieFidelity fidelity = PcieFidelity::PerTlp;  ///< default per-TLP
  std::uint32_t readTags = 256;                  ///< outstanding MRd limit; default 256 (8-bit tags)
  std::uint32_t postedWindow = 64;               ///< MWr that may queue in the fabric; default 64
  std::uint64_t issueIntervalPs = 0;  ///< minimum spacing of request TLPs, ps; default 0 (link-bound)
  /// While a link direction or memory on this engine's path carried another requester's traffic
  /// within the last `sharedHoldPs`, the engine syncs whenever its local time runs this far
  /// ahead of SystemC time, whatever the global quantum: flows sharing a resource then book it
  /// in near time order and split it as an arbiter would (same split at every quantum). ps;
  /// default 100 ns. An unshared path keeps the full quantum.
  std::uint64_t sharedSyncPs = 100'000;
  std::uint64_t sharedHoldPs = 2'000'000;  ///< see sharedSyncPs; ps; default 2 us
  /// Callers that pass no data get no payload at all: the transaction carries a null data pointer
  /// and no scratch buffer is allocated. The fabric's own targets (PcieMemoryTarget) accept
  /// that; the cpu_mmu Dram requires a buffer, so leave this false when it is host memory.
  /// Default false (a zero-filled scratch buffer as large as the largest burst).
  bool timingOnly = false;
  /// issueStream(): simulated time one closed-form booking of a periodic stream may cover, ps;
  /// default 2 ms. A flow that starts on a shared resource while such a booking is held queues
  /// behind it, so this bounds how long (dma_engine.h, issueStream).
  std::uint64_t streamChunkPs = 2'000'000'000;
};

/// One burst as issueWrite/issueRead issued it (what a trace shows as a DMA slice).
struct DmaBurstRecord {
  bool write = false;
  std::uint64_t addr = 0, len = 0;
  std::uint64_t issuePs = 0;  ///< absolute time the first request left the engine
  std::uint64_t donePs = 0;   ///< as DmaIssue::donePs
  CplStatus status = CplStatus::SuccessfulCompletion;
};

/// Outcome of one DMA burst.
struct DmaIssue {
  CplStatus status = CplStatus::SuccessfulCompletion;  ///< first non-successful status, if any
  std::uint64_t donePs = 0;  ///< absolute time: write stored at target / last read byte arrived
};

class PcieDmaEngine : public sc_core::sc_module {
 public:
  PcieInitiatorSocket<> out{"out"};

  PcieDmaEngine(sc_core::sc_module_name name, const PcieDmaEngineParams& params);

  /// Binds `out` to `next` (the element above the endpoint's link), sending over `link` (the
  /// lower end of the endpoint's link, charged inline; nullptr: none). Before sc_start.
  template <class Target>
  void bindUplink(Target& next, PcieLinkModule::Sender* link) {
    uplink_.bind(out, next, link);
  }

  /// Router that maps (requester, bus address) to a route; not owned; required before use.
  void setRouter(const PcieRouter* router) {
    router_ = router;
    routeCache_[0] = routeCache_[1] = PcieRouteResult{};
  }
  /// Called after every burst issueWrite/issueRead issued (not for one that found no route, nor
  /// for the closed-form chunks of issueStream): a trace's DMA slices. One observer; empty: none.
  void setBurstObserver(std::function<void(const DmaBurstRecord&)> fn) { observer_ = std::move(fn); }
  /// The run's timeline trace, kept for the device's driver half (an ImporterDma issuing on this
  /// engine records its faults and invalidation waits there). nullptr: not traced. The engine
  /// records nothing itself: its bursts reach a trace through the burst observer.
  void setTimelineTrace(TraceSink* trace) { trace_ = trace; }
  TraceSink* timelineTrace() const { return trace_; }

  /// Issues a DMA write of `len` > 0 bytes at bus address `addr`; `data` may be null (timing
  /// only: the engine then sends the contents of an internal scratch buffer, since TLM needs a
  /// valid data pointer). Returns status UnsupportedRequest (nothing sent) if no target claims `addr`, or the
  /// status the target reported (posted writes: a real requester never learns it; it is
  /// reported here for the simulator's checks). The caller's local time moves to when the
  /// engine can issue again; may sync the quantum keeper (wait) when it runs out of quantum.
  DmaIssue issueWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                      tlm_utils::tlm_quantumkeeper& qk);
  /// Issues a DMA read of `len` > 0 bytes into `data` (may be null). Status as for issueWrite;
  /// UnsupportedRequest/CompleterAbort also if the completer or the translation stage refused.
  DmaIssue issueRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
                     tlm_utils::tlm_quantumkeeper& qk);
  /// A stream of `count` bursts of `burstBytes` at addr, addr + burstBytes, ... (writes or
  /// reads), with the same completion time as issuing them one by one (within 0.01 %), in
  /// O(hops) per chunk instead of per burst. Timing only: no payload moves (nothing is stored
  /// at the target). At per-burst fidelity with timingOnly, burstBytes a multiple of 4 KiB and an
  /// unshared path without a translation stage, bursts are issued one by one until three in a
  /// row complete one period apart (the stream is periodic from then on: its state, shifted by a
  /// period, repeats). Then, per chunk: sync (every other initiator catches up), issue one burst
  /// (it learns whether another requester used the path meanwhile), and if the path is still
  /// unshared book up to `streamChunkPs` of bursts as one transaction on every hop (the same
  /// bytes and TLPs) and move the engine's state (tags, posted window, next issue) on by the
  /// chunk's periods. Another requester's traffic, a route change or a translation stage returns
  /// the stream to one-by-one issue (then the sharing rules of sharedSyncPs apply). Otherwise:
  /// one by one. Under contention a flow that starts during a chunk waits for it (at most
  /// streamChunkPs).
  /// Returns the first non-successful status and the last burst's completion.
  DmaIssue issueStream(bool write, std::uint64_t addr, std::uint64_t burstBytes, std::uint64_t count,
                       tlm_utils::tlm_quantumkeeper& qk);
  /// issueWrite/issueRead, then advance the caller's local time to the burst's completion.
  CplStatus write(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                  tlm_utils::tlm_quantumkeeper& qk);
  CplStatus read(std::uint64_t addr, std::uint64_t len, std::uint8_t* data, tlm_utils::tlm_quantumkeeper& qk);

  /// From the first burst that finds host memory shared between requesters
  /// (PcieTlpExtension::hostMemoryShared, host_memory_requesters.h) on, issue every request at
  /// synchronised time: the caller's local time moves to the issue time and the quantum keeper
  /// syncs there, whatever the quantum. A device that takes turns with another requester in host
  /// memory turns it on, so its bookings there and on the links to it are made in an order the
  /// quantum does not decide. Costs a sync per burst (per TLP at per-TLP fidelity) once shared.
  /// Default off. Before sc_start.
  void syncOnSharedHostMemory(bool on) { syncOnSharedHostMemory_ = on; }
  /// Whether every request is now issued at synchronised time (syncOnSharedHostMemory).
  bool syncingEachIssue() const { return syncEachIssue_; }

  const PcieDmaEngineParams& params() const { return params_; }
  /// Bytes of scratch payload buffer held (0 with timingOnly).
  std::size_t scratchBytes() const { return scratch_.size(); }
  StatsGroup& stats() { return stats_; }

 private:
  /// Moves the caller's local time to absolute `t` (if later) and syncs if the quantum is used
  /// up; returns max(t, caller's current absolute time).
  std::uint64_t advanceTo(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk);
  /// qk.sync(); returns the new SystemC time (out of line: advanceTo's rare case).
  std::uint64_t sync(tlm_utils::tlm_quantumkeeper& qk);
  /// Moves the caller's local time to `t` (if later) without syncing. Only after an advanceTo()
  /// in the same issue call (it knows the local time from there: one virtual call less per TLP).
  void setLocal(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk);
  /// The data pointer for a caller that passed none: nullptr with timingOnly, else a scratch
  /// buffer of at least `len` bytes (targets outside the fabric may require one).
  std::uint8_t* payloadFor(std::uint64_t len) {
    if (params_.timingOnly) return nullptr;  // no payload moves, nothing allocated
    if (scratch_.size() < len) growScratch(len);
    return scratch_.data();
  }
  void growScratch(std::uint64_t len);
  void prepare(TlpKind kind, std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
               const PcieRoute* route);
  /// Sends the prepared transaction at absolute time t; returns the absolute head time on return.
  std::uint64_t send(std::uint64_t t);

  void end_of_elaboration() override { uplink_.resolve(out); }

  PcieDmaEngineParams params_;
  PcieEgressPorts uplink_;  // `out` and the link it sends on
  const PcieRouter* router_ = nullptr;
  PcieRouteResult routeCache_[2];  // last lookup for reads [0] and writes [1]
  tlm::tlm_generic_payload gp_;
  PcieTlpExtension* ext_;     // owned by gp_
  SlotPool tags_;             // read tags at per-TLP fidelity
  LinearSlotPool burstTags_;  // read tags at per-burst fidelity
  SlidingWindow posted_;
  /// router_->routeRequest(), or the cached result when the router promised it for `addr`.
  PcieRouteResult route(std::uint64_t addr, bool isWrite) {
    const PcieRouteResult& c = routeCache_[isWrite];
    if (addr - c.validBase < c.validBytes) return c;
    return routeCache_[isWrite] = router_->routeRequest(params_.requester, addr, isWrite, false);
  }
  /// One closed-form chunk of a periodic stream (issueStream); false if it could not be sent.
  bool streamChunk(bool write, std::uint64_t addr, std::uint64_t burstBytes, std::uint64_t m,
                   std::uint64_t issuePs, std::uint64_t periodPs, DmaIssue& res,
                   tlm_utils::tlm_quantumkeeper& qk);

  std::uint64_t nextIssuePs_ = 0;
  std::uint64_t lastIssuePs_ = 0;  // issue time of the last per-burst transaction
  std::uint64_t nowPs_ = 0;        // sc_time_stamp() as last read by advanceTo()
  std::uint64_t localPs_ = 0;      // nowPs_ + the caller's local time, as advanceTo()/setLocal() left it
  // The simulation context: its time_stamp() is sc_time_stamp() without the out-of-line call
  // (advanceTo runs for every TLP).
  sc_core::sc_simcontext* ctx_ = nullptr;
  std::uint64_t sharedSeenPs_ = 0;       // latest PcieTlpExtension::sharedSeenPs seen (0: never shared)
  bool syncOnSharedHostMemory_ = false;  // see syncOnSharedHostMemory()
  bool syncEachIssue_ = false;           // it is on and a burst found host memory shared
  // Wire sizes fixed by params_.link, computed once (prepare() runs for every TLP).
  std::uint32_t cplNoDataWire_;  // cplWireBytes(params_.link): one Cpl without data
  std::uint32_t mrdWire_;        // mrdWireBytes(params_.link)
  std::uint32_t mwrHeaderWire_;  // mwrWireBytes(params_.link, 0): an MWr's bytes besides its payload
  /// readBurstWire(params_.link, addr, len), remembered for the last (addr mod 4 KiB, len): the
  /// totals depend on the address only through its offset in the page (RCB and MRRS divide 4 KiB).
  BurstWire readWire(std::uint64_t addr, std::uint64_t len);
  BurstWire readWire_{};
  std::uint64_t readWireOffset_ = ~0ull, readWireLen_ = 0;
  std::vector<std::uint8_t> scratch_;
  StatsGroup stats_;
  Counter& bytesWritten_;
  Counter& bytesRead_;
  Counter& mwrTlps_;
  Counter& mrdTlps_;
  Counter& bursts_;
  Counter& failed_;
  // After the per-TLP state: read once per burst, and only tested when no trace is taken.
  std::function<void(const DmaBurstRecord&)> observer_;
  TraceSink* trace_ = nullptr;
};

}  // namespace hmmsim
