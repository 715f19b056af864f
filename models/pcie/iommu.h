#pragma once
// Iommu: a DMA-remapping unit in the spirit of Intel VT-d and AMD-Vi, with the kernel's IOMMU
// API (drivers/iommu/iommu.c: iommu_domain_alloc, iommu_attach_device, iommu_map,
// iommu_unmap, iommu_unmap_fast + iommu_iotlb_sync, iommu_flush_iotlb_all,
// iommu_iova_to_phys) on one side and the hardware translation of upstream DMA on the other.
//
// Models:
//  - modes: Off (no IOMMU: bus addresses are physical), Passthrough (the IOMMU is on but every
//    device sits in the identity domain, iommu=pt), Translate (devices use paging domains);
//  - per-device domains looked up by requester id (the context-table lookup), domain types
//    Dma (paging), Identity (pass-through for one device) and Blocked;
//  - per-domain I/O page tables (IoPageTable: 4 KiB and 2 MiB leaves);
//  - the IOTLB (Iotlb: set-associative, LRU, separate 2 MiB array), filled by walks;
//  - translation faults: the transaction is aborted (translate() returns !ok) and a fault
//    record is kept in a bounded log like VT-d's fault-recording registers (overflow counted);
//  - strict invalidation (unmap flushes the IOTLB and device TLBs before returning) and the
//    lazy path (unmapFast clears PTEs only; the caller batches iotlbSync/flushIotlbAll — the
//    DMA layer's flush queue). Until that flush an IOTLB entry keeps translating an IOVA whose
//    PTE is gone: such a hit is a *stale access*, flagged in the result and counted in
//    "stale_accesses". A stale hit on a range whose flush is still pending (the lazy window,
//    legal in the kernel) is counted in "stale_lazy_window"; one on a range that was never
//    queued for a flush (a missed invalidation, e.g. with skipIotlbInvalidation) is counted in
//    "stale_unflushed" and always reported to an attached InvariantChecker (rule UnmappedIova);
//    lazy-window hits are reported too when reportLazyWindow is set;
//  - ATS (PCIe Address Translation Services): devices with an AtsCache (the device-side ATC)
//    send translation requests here and then issue pre-translated requests; every invalidation
//    of a domain also sends ATS invalidation requests to its ATS devices and waits for their
//    completions (a device that never completes makes the invalidation time out, VT-d's ITE).
//
// Leaves out: interrupt remapping, PASID/first-stage tables, nested translation, PRI/page
// requests, context-cache invalidation timing, per-IOMMU-unit scoping (one unit covers all
// requesters). The inbound bus-to-CPU address offset of a host bridge belongs to the root
// complex: with no translation, translate() returns the bus address unchanged as the Pa.
//
// Timing (pure, no SystemC): translate() returns latencyPs = IOTLB lookup latency, plus on a
// miss the wait for a free page walker and the walk (walk accesses × walkAccessLatencyPs, or
// the sum of the entry reads' latencies from a memory model set with setWalkMemory()).
// The defaults reproduce the pcie-bench anchor: 4 accesses × 56.5 ns = +226 ns per 4 KiB miss.
// A SystemC shell (the root complex) adds latencyPs to the transaction's annotated delay.
// Invalidations (iotlbSync, flushIotlbAll) cost their caller invalidationLatencyPs, summed in
// invalidationPs() for the caller's shell to charge (ImporterMirror's unmaps: ImporterDma). The
// shell charges them through the invalidation queue (queueInvalidation): the unit executes
// invalidation descriptors one after another (VT-d's queued invalidation, AMD-Vi's command
// buffer), so two threads' invalidations take the sum of their times, not the longest.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/pcie/io_page_table.h"
#include "models/pcie/iotlb.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class AtsCache;
class InvariantChecker;
class TraceSink;

enum class IommuMode {
  Off,          ///< no IOMMU on the path: DMA addresses are bus/physical addresses
  Passthrough,  ///< IOMMU present, every device in the identity domain (iommu=pt)
  Translate,    ///< IOMMU translates through per-device paging domains
};

/// How unmap invalidates (the kernel's IOMMU_DOMAIN_DMA versus IOMMU_DOMAIN_DMA_FQ).
enum class IommuInvalidation {
  Strict,  ///< iommu.strict=1: every unmap flushes the IOTLB before it returns
  Lazy,    ///< iommu.strict=0: unmaps are batched in a flush queue; stale IOTLB hits possible
};

enum class IommuDomainType {
  Dma,       ///< paging domain used by the DMA API (IOMMU_DOMAIN_DMA / DMA_FQ)
  Identity,  ///< IOVA == physical address (IOMMU_DOMAIN_IDENTITY)
  Blocked,   ///< all DMA refused (IOMMU_DOMAIN_BLOCKED)
};

enum class IommuFaultReason {
  NoDomain,            ///< the requester id has no domain attached (VT-d: context entry not present)
  Blocked,             ///< the requester is attached to a blocking domain
  NotPresent,          ///< no leaf maps the IOVA (VT-d: second-stage entry not present)
  ReadDenied,          ///< a read through a mapping without read permission
  WriteDenied,         ///< a write through a mapping without write permission
  BeyondAddressWidth,  ///< the IOVA is above the 48-bit input address width
  TranslatedDenied,    ///< a pre-translated (ATS) request from a device without ATS enabled
};

const char* iommuFaultReasonName(IommuFaultReason r);

/// One entry of the fault log.
struct IommuFault {
  std::uint64_t timePs = 0;  ///< simulated time of the faulting request
  Bdf rid{};                 ///< requester
  Iova iova{};               ///< address the requester used
  bool write = false;        ///< the request was a write
  IommuFaultReason reason = IommuFaultReason::NotPresent;
};

/// Outcome of one translation. When !ok the transaction is aborted (the root complex
/// completes it with Unsupported Request / Completer Abort) and nothing reaches memory.
struct IommuTranslation {
  bool ok = false;
  IommuFaultReason reason = IommuFaultReason::NotPresent;  ///< valid when !ok
  Pa pa{};                                                 ///< where the access goes (valid when ok)
  bool translated = false;      ///< a page table or IOTLB was used (false: passthrough/off/identity)
  bool iotlbHit = false;        ///< served from the IOTLB
  bool stale = false;           ///< served by an IOTLB entry whose PTE was already unmapped (lazy)
  unsigned walkAccesses = 0;    ///< page-table entries read (0 on a hit)
  std::uint64_t pageSize = 0;   ///< size of the translating page (when translated)
  IommuProt prot = 0;           ///< permissions of the translating page (when translated)
  std::uint64_t latencyPs = 0;  ///< translation latency to add to the request (ps)
};

/// Ranges removed by unmapFast and not yet flushed (the kernel's iommu_iotlb_gather).
struct IommuIotlbGather {
  Iova start{~0ull};
  Iova end{0};  ///< exclusive
  bool empty() const { return end <= start; }
  void add(Iova iova, std::uint64_t size) {
    if (iova < start) start = iova;
    if (iova + size > end) end = iova + size;
  }
};

struct IommuParams {
  IommuMode mode = IommuMode::Translate;  ///< -; Translate; how DMA is remapped
  IommuInvalidation invalidation =
      IommuInvalidation::Strict;  ///< -; Strict; unmap flush policy (read by the DMA layer)
  bool largePages = true;         ///< -; true; domains may use 2 MiB leaves (pgsize_bitmap has 2 MiB)
  IotlbParams iotlb{};            ///< IOTLB geometry (see IotlbParams)
  std::uint64_t iotlbHitLatencyPs =
      4000;  ///< ps; 4 ns; IOTLB lookup latency, paid by every translated request
  std::uint64_t walkAccessLatencyPs =
      56500;                       ///< ps; 56.5 ns; one page-table entry read from DRAM (4 × = 226 ns)
  unsigned pageWalkers = 7;        ///< count; 7; concurrent page walks (7 / 226 ns = the anchor's 36 %:
                                   ///< tests/unit/pcie/test_iommu_sweep.cpp)
  std::size_t faultRecords = 256;  ///< count; 256; fault log capacity (older records kept, newer dropped)
  std::uint64_t pageTableBase =
      0x80'0000'0000ull;  ///< byte address; 512 GiB; where domain d's tables live (+ d × 4 GiB)
  std::uint64_t iotlbInvalidationLatencyPs =
      500'000;  ///< ps; 500 ns; one IOTLB invalidation + wait descriptor (queued invalidation)
  std::uint64_t atsInvalidationLatencyPs =
      1'000'000;                  ///< ps; 1 us; ATS invalidation round trip per ATS device
  bool reportLazyWindow = false;  ///< -; false; also report stale hits inside the lazy flush window to the
                                  ///< checker (legal in the kernel's lazy mode)
  bool skipIotlbInvalidation =
      false;  ///< -; false; misbehaviour injection: unmaps and flushes leave the IOTLB untouched
};

/// An IOMMU domain (struct iommu_domain): an address space that devices attach to.
class IommuDomain {
 public:
  std::uint16_t id() const { return id_; }
  IommuDomainType type() const { return type_; }
  const IoPageTable& pageTable() const { return pt_; }
  /// Requesters attached, in attach order.
  const std::vector<Bdf>& devices() const { return devices_; }

 private:
  friend class Iommu;
  IommuDomain(std::uint16_t id, IommuDomainType type, Pa tableBase) : id_(id), type_(type), pt_(tableBase) {}
  std::uint16_t id_;
  IommuDomainType type_;
  IoPageTable pt_;
  std::vector<Bdf> devices_;
  // IOVA ranges [first, second) unmapped by unmapFast and not yet flushed (the lazy window).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pendingFlush_;
};

class Iommu {
 public:
  /// `name` names the stats group ("top.iommu0"). Params are validated by the config layer.
  Iommu(std::string name, const IommuParams& params);
  ~Iommu();
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;

  const IommuParams& params() const { return params_; }
  IommuMode mode() const { return params_.mode; }

  // ---- domains (iommu_domain_alloc / iommu_attach_device / iommu_detach_device) ----

  /// Allocates a domain; ids start at 1 (VT-d reserves DID 0). Never fails (the model has no
  /// DID limit). The Iommu owns it; the reference stays valid until domainFree().
  IommuDomain& domainAlloc(IommuDomainType type);
  /// Frees a domain. Returns Ok; Busy if devices are still attached.
  Errno domainFree(IommuDomain& domain);
  /// Attaches requester `rid` to `domain`. Returns Ok; Busy if `rid` is attached elsewhere
  /// (detach first); Exist if already attached to this domain.
  Errno attachDevice(IommuDomain& domain, Bdf rid);
  /// Detaches `rid` (its IOTLB and device-TLB entries for the domain are flushed, as the
  /// driver does when it clears a context entry). Returns Ok; NoDev if not attached.
  Errno detachDevice(Bdf rid);
  /// iommu_get_domain_for_dev(): the domain of `rid`, or nullptr.
  IommuDomain* domainForDev(Bdf rid);
  const IommuDomain* domainForDev(Bdf rid) const;

  // ---- mappings (iommu_map / iommu_unmap / iommu_unmap_fast / iommu_iotlb_sync) ----

  /// Maps [iova, iova+size) to [pa, pa+size) with `prot`, using 2 MiB leaves wherever both
  /// addresses are 2 MiB aligned and at least 2 MiB remain (iommu_pgsize). Returns Ok; Inval if
  /// iova, pa or size is not 4 KiB aligned, size is 0, prot has neither read nor write, or the
  /// domain is not a paging domain; Exist if part of the range is mapped. On failure nothing
  /// stays mapped (the kernel unmaps the partial mapping).
  Errno map(IommuDomain& domain, Iova iova, Pa pa, std::uint64_t size, IommuProt prot);
  /// Strict unmap: removes leaves from `iova` up to `size` bytes (stopping at the first hole,
  /// a 2 MiB leaf removed whole), then invalidates the IOTLB and the ATS devices' caches for the
  /// range before returning. Returns the bytes unmapped (0 if unaligned or nothing mapped).
  std::uint64_t unmap(IommuDomain& domain, Iova iova, std::uint64_t size);
  /// Lazy unmap: removes the leaves like unmap() but only records the range in `gather`;
  /// IOTLB entries stay usable until iotlbSync() or flushIotlbAll(). Returns bytes unmapped.
  std::uint64_t unmapFast(IommuDomain& domain, Iova iova, std::uint64_t size, IommuIotlbGather& gather);
  /// Invalidates the gathered range (IOTLB page-selective + ATS). Returns Ok; TimedOut if an
  /// ATS device did not complete its invalidation (the IOTLB is flushed regardless).
  Errno iotlbSync(IommuDomain& domain, const IommuIotlbGather& gather);
  /// Domain-selective IOTLB flush plus ATS invalidation of the whole address space (what the
  /// flush queue issues). Returns Ok or TimedOut as iotlbSync().
  Errno flushIotlbAll(IommuDomain& domain);
  /// iommu_iova_to_phys(): software walk, no IOTLB, no stats. nullopt if unmapped.
  std::optional<Pa> iovaToPhys(const IommuDomain& domain, Iova iova) const;

  // ---- the hardware path ----

  /// Translates one untranslated upstream request (a request never crosses a 4 KiB boundary,
  /// so one address suffices). `nowPs` is the request's arrival time (walker contention and
  /// fault timestamps). On a fault the request is aborted and the fault logged.
  IommuTranslation translate(Bdf rid, Iova iova, bool write, std::uint64_t nowPs);

  // ---- ATS ----

  /// pci_enable_ats(): `rid` may send translation requests and pre-translated requests; `atc`
  /// receives invalidation requests. Returns Ok; Busy if ATS is already enabled for `rid`.
  Errno enableAts(Bdf rid, AtsCache& atc);
  /// pci_disable_ats(). Returns Ok; NoDev if ATS was not enabled.
  Errno disableAts(Bdf rid);
  bool atsEnabled(Bdf rid) const { return ats_.count(rid.key()) != 0; }
  /// A Translation Request: translates like translate() (same walk and IOTLB) but a failure
  /// is answered with a completion granting nothing (R=W=0) instead of a logged fault.
  /// Returns !ok with TranslatedDenied if ATS is not enabled for `rid`.
  IommuTranslation atsTranslationRequest(Bdf rid, Iova iova, bool write, std::uint64_t nowPs);
  /// A pre-translated request (AT=translated): passes untouched if ATS is enabled for `rid`,
  /// else aborted with a TranslatedDenied fault.
  IommuTranslation translatedRequest(Bdf rid, Pa pa, bool write, std::uint64_t nowPs);

  // ---- faults, checker, stats ----

  /// Simulated time an invalidation of `domain` costs its caller (the IOTLB invalidation plus
  /// one ATS round trip per ATS device attached), for SystemC shells that charge unmap time.
  std::uint64_t invalidationLatencyPs(const IommuDomain& domain) const;
  /// Simulated time every invalidation so far cost its caller (invalidationLatencyPs of each
  /// iotlbSync and flushIotlbAll that ran), ps. A SystemC shell reads it before and after a call
  /// that may invalidate (a dma_unmap) and makes its thread wait the difference. Stat
  /// "invalidation_ps".
  std::uint64_t invalidationPs() const { return invalidationPs_.value(); }
  /// The invalidation queue: descriptors whose execution takes `ps`, submitted at `nowPs`, run
  /// once every earlier submission's have (qi_submit_sync's wait descriptor completes in queue
  /// order), so they complete at max(nowPs, the previous completion) + ps. Submissions come in
  /// time order (SystemC shells submit at synchronised time; an earlier `nowPs` than a previous
  /// one is treated as that one's). Returns the completion time, ps. Stats
  /// "invalidation_queue_wait_ps" (time submissions waited behind others'),
  /// "invalidation_queue_waits".
  std::uint64_t queueInvalidation(std::uint64_t nowPs, std::uint64_t ps);

  /// The fault log, oldest first; at most params().faultRecords entries.
  const std::deque<IommuFault>& faultRecords() const { return faults_; }
  void clearFaultRecords() { faults_.clear(); }
  /// Stale accesses are reported to `checker` (rule UnmappedIova) when set; nullptr detaches.
  void setChecker(InvariantChecker* checker) { checker_ = checker; }
  /// Charges page walks on a memory model instead of the flat walkAccessLatencyPs: `access`
  /// is called for each page-table entry read, in walk order, with the entry's physical address
  /// and the time the read starts, and returns that read's latency in ps (a DRAM model with
  /// busy-until contention can sit behind it). Empty function = flat latency again.
  using WalkMemory = std::function<std::uint64_t(Pa entry, std::uint64_t startPs)>;
  void setWalkMemory(WalkMemory access) { walkMemory_ = std::move(access); }
  /// Category iommu.walk: each page walk as a slice (from the walker's start, its duration),
  /// each fault as an instant, on the track named after the stats group. nullptr detaches.
  void setTrace(TraceSink* trace) { trace_ = trace; }
  /// Stats: translations, iotlb_hits, iotlb_misses, walk_accesses, faults, fault_overflows,
  /// stale_accesses, stale_lazy_window, stale_unflushed, iotlb_invalidations, iotlb_entries_invalidated,
  /// invalidation_ps, invalidation_queue_wait_ps, invalidation_queue_waits, maps, unmaps,
  /// ats_translation_requests, ats_invalidation_requests, ats_invalidation_completions,
  /// ats_invalidation_timeouts.
  const StatsGroup& stats() const { return stats_; }
  Iotlb& iotlb() { return iotlb_; }

 private:
  IommuTranslation translateCore(Bdf rid, Iova iova, bool write, std::uint64_t nowPs, bool recordFaults);
  IommuTranslation translateIotlbHit(IommuDomain& d, const IotlbHit& hit, Bdf rid, Iova iova, bool write,
                                     std::uint64_t nowPs, bool recordFaults);
  void checkStaleHit(IommuDomain& d, Bdf rid, Iova iova, std::uint64_t nowPs, IommuTranslation& t);
  IommuTranslation translateByWalk(IommuDomain& d, Bdf rid, Iova iova, bool write, std::uint64_t nowPs,
                                   bool recordFaults);
  std::pair<std::uint64_t, std::uint64_t> chargeWalk(const IoWalk& w, std::uint64_t readyPs);
  IommuTranslation fault(Bdf rid, Iova iova, bool write, IommuFaultReason reason, std::uint64_t nowPs,
                         bool record);
  std::uint64_t unmapLeaves(IommuDomain& domain, Iova iova, std::uint64_t size);
  Errno invalidateDeviceTlbs(IommuDomain& domain, Iova iova, std::uint64_t size);
  std::uint64_t walkerStart(std::uint64_t nowPs, std::uint64_t walkPs);

  IommuParams params_;
  StatsGroup stats_;
  Iotlb iotlb_;
  std::map<std::uint16_t, std::unique_ptr<IommuDomain>> domains_;  // by id
  std::map<std::uint32_t, IommuDomain*> context_;                  // Bdf::key() -> domain
  std::uint32_t lastContextKey_ = 0;                               // domainForDev's last answer
  IommuDomain* lastContext_ = nullptr;
  std::map<std::uint32_t, AtsCache*> ats_;  // Bdf::key() -> device ATC
  std::uint16_t nextDid_ = 1;
  std::uint32_t nextItag_ = 0;
  std::vector<std::uint64_t> walkerBusyUntil_;  // ps, one per page walker
  std::uint64_t invalQueueBusyUntil_ = 0;       // ps, the last queued invalidation's completion
  std::deque<IommuFault> faults_;
  InvariantChecker* checker_ = nullptr;
  TraceSink* trace_ = nullptr;
  WalkMemory walkMemory_;

  Counter& translations_;
  Counter& iotlbHits_;
  Counter& iotlbMisses_;
  Counter& walkAccesses_;
  Counter& faultsCount_;
  Counter& faultOverflows_;
  Counter& staleAccesses_;
  Counter& staleLazyWindow_;
  Counter& staleUnflushed_;
  Counter& iotlbInvalidations_;
  Counter& iotlbEntriesInvalidated_;
  Counter& invalidationPs_;
  Counter& invalQueueWaitPs_;
  Counter& invalQueueWaits_;
  Counter& maps_;
  Counter& unmaps_;
  Counter& atsTranslationRequests_;
  Counter& atsInvalRequests_;
  Counter& atsInvalCompletions_;
  Counter& atsInvalTimeouts_;
};

}  // namespace hmmsim
