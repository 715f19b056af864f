#pragma once
// MSI delivery and CPU driver threads (issue 12: "devices signal completion with MSI writes; a
// CPU thread takes the interrupt and runs the driver's work").
//
// What it models
//  - MsiTarget: the root complex's host-memory port goes through it. A posted write into the MSI
//    window (msiBase, 1 MiB: 0xFEE0_0000 on x86) is an interrupt message: its data names the
//    vector, its arrival time (the write's first byte at the root complex's memory side) is when
//    the interrupt is raised. Everything else goes on to DRAM unchanged. A read of the window, or
//    a write of a vector nobody allocated, is counted and dropped (completes, as the chipset does).
//    It also notes the requester of every request it passes on to DRAM in the platform's
//    HostMemoryRequesters (one for all host bridges) and tells the request whether host memory
//    is shared (PcieTlpExtension::hostMemoryShared); interrupt messages are not noted.
//  - MsiPassStage: the IOMMU translation stage with the MSI window passed through untranslated
//    (the DMA API reserves that IOVA range: DmaMappingParams::platformReserved); interrupt
//    remapping is not modelled.
//  - InterruptControllerModule: one SC_THREAD per CPU driver thread (`cpus`). A raised interrupt
//    queues on its vector's CPU; the thread takes interrupts in arrival order, one at a time:
//    it waits for the arrival, pays `entryLatencyPs` (interrupt entry, the APIC, irq_enter and the
//    generic handler), runs the driver's handler (which may charge more CPU time, or do anything an
//    SC_THREAD may, e.g. take the mmap lock), then pays the vector's handler cost, and only then
//    takes the next interrupt. So a handler starts at max(arrival, previous end) +
//    entryLatencyPs and ends handlerCostPs (plus what it charged) later.
// Leaves out: preemption of the CpuCores running user programs (driver threads are separate CPUs),
// interrupt coalescing/moderation (a device does that before it writes), threaded irqs and
// softirq deferral as separate stages (a handler charges them), MSI-X masking, posted-interrupt
// virtualisation.

#include <cstdint>
#include <deque>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "models/devices/common/msi.h"
#include "models/pcie/host_memory_requesters.h"
#include "models/pcie/translation_stage.h"
#include "sim/stats.h"

namespace hmmsim {

struct InterruptParams {
  /// First byte of the MSI address window. Unit: bytes. Default 0xFEE00000 (x86 LAPIC range).
  std::uint64_t msiBase = 0xFEE0'0000ull;
  /// Size of the MSI window. Unit: bytes. Default 1 MiB.
  std::uint64_t msiBytes = 1ull << 20;
  /// Interrupt entry latency: from the message's arrival to the handler's first instruction
  /// (APIC delivery, entry, irq_enter, generic irq dispatch). Unit: ps. Default 1 us.
  std::uint64_t entryLatencyPs = 1'000'000;
  /// CPU driver threads taking interrupts (vectors are allocated on one of them). Default 1.
  unsigned cpus = 1;
  /// "" when valid, else what is wrong naming the parameter.
  std::string check() const;
};

/// The IOMMU stage of a root complex with the MSI window passed through.
class MsiPassStage final : public PcieTranslationStage {
 public:
  /// `inner` (the IOMMU's stage; may be null: no IOMMU) must outlive this object.
  MsiPassStage(const InterruptParams& params, PcieTranslationStage* inner) : params_(params), inner_(inner) {}
  UpstreamTranslation translateUpstream(Bdf requester, std::uint64_t busAddr, std::uint64_t len, bool isWrite,
                                        bool addressTranslated, std::uint64_t nowPs) override;

 private:
  InterruptParams params_;
  PcieTranslationStage* inner_;
};

class InterruptControllerModule;
class TraceSink;

/// Between a root complex's memOut and the DRAM: takes MSI writes out of the stream.
class MsiTarget : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<MsiTarget> in{"in"};
  tlm_utils::simple_initiator_socket<MsiTarget> toMemory{"toMemory"};

  /// `requesters` (shared by every host bridge's MsiTarget) must outlive the module.
  MsiTarget(sc_core::sc_module_name name, const InterruptParams& params, InterruptControllerModule& irq,
            HostMemoryRequesters& requesters);
  StatsGroup& stats() { return stats_; }

 private:
  void bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned int transportDbg(tlm::tlm_generic_payload& gp);
  InterruptParams params_;
  InterruptControllerModule& irq_;
  HostMemoryRequesters& requesters_;
  StatsGroup stats_;
  Counter& messages_;  ///< "msi_writes"
  Counter& dropped_;   ///< "msi_dropped": reads of the window, unknown vectors, short writes
};

/// The interrupt controller and its CPU driver threads.
class InterruptControllerModule : public sc_core::sc_module, public InterruptController {
 public:
  InterruptControllerModule(sc_core::sc_module_name name, const InterruptParams& params);
  ~InterruptControllerModule() override;

  MsiMessage allocateVector(const std::string& name, std::uint64_t handlerCostPs, MsiHandler handler,
                            unsigned cpu = 0) override;
  /// An interrupt message for `vector` arrived at absolute time `arrivalPs`. False: no such vector.
  bool raise(std::uint32_t vector, std::uint64_t arrivalPs);

  const InterruptParams& params() const { return params_; }
  /// Per vector: how often its handler ran.
  std::uint64_t handled(std::uint32_t vector) const;
  StatsGroup& stats() { return stats_; }
  /// Records, per driver CPU c on track "cpu.driver<c>" (category irq; nullptr: none), each
  /// message's arrival ("MSI <vector>", an instant) and its handler (a slice from the interrupt's
  /// entry to the handler's end).
  void setTrace(TraceSink* trace) { trace_ = trace; }

 private:
  struct Vector {
    std::string name;
    std::uint64_t costPs = 0;
    MsiHandler handler;
    unsigned cpu = 0;
    std::uint64_t handled = 0;
  };
  struct Pending {
    std::uint64_t arrivalPs;
    std::uint64_t seq;
    std::uint32_t vector;
    bool operator>(const Pending& o) const {
      return arrivalPs != o.arrivalPs ? arrivalPs > o.arrivalPs : seq > o.seq;
    }
  };
  class DriverCpu;
  void run(DriverCpu& cpu);
  void traceHandler(const DriverCpu& cpu, const Vector& v, std::uint64_t arrivalPs, std::uint64_t startPs);

  InterruptParams params_;
  std::deque<Vector> vectors_;  // index = vector number - kFirstVector (stable: handlers run by reference)
  std::vector<std::unique_ptr<DriverCpu>> cpus_;
  std::uint64_t seq_ = 0;
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
  Counter& raised_;    ///< "interrupts": messages raised
  Counter& handledC_;  ///< "handled": handlers run
  Counter& queuedPs_;  ///< "queued_ps": time interrupts waited for a busy driver thread
  Counter& busyPs_;    ///< "cpu_busy_ps": driver-thread time (entry + handlers)
  static constexpr std::uint32_t kFirstVector = 0x20;  ///< below are exceptions on x86
};

}  // namespace hmmsim
