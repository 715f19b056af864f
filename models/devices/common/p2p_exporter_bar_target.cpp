// P2pExporter::bindBarTarget: the SystemC side, in its own object file so that users of the
// exporter that never bind a PcieMemoryTarget do not link SystemC.
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/p2p_exporter.h"

#include <systemc>

#include "models/pcie/memory_target.h"
#include "sim/assert.h"

namespace hmmsim {

void P2pExporter::bindBarTarget(PcieMemoryTarget& target) {
  const std::uint64_t bus = bar_.params().barBus.value();
  HMMSIM_ASSERT(bus >= target.params().baseAddr && target.claims(bus, bar_.params().apertureBytes),
                name_ << ": the BAR target does not claim the aperture");
  const std::uint64_t base = bus - target.params().baseAddr;
  bar_.setTimeSource([] { return std::uint64_t(sc_core::sc_time_stamp().value()); });
  setWindowProgrammer(
      [&target, base](std::uint64_t apertureOffset, std::uint64_t deviceOffset, std::uint64_t bytes) {
        return target.mapWindow(base + apertureOffset, deviceOffset, bytes);
      });
  setTimeCharger([](std::uint64_t ps) {
    // Elaboration, teardown or an SC_METHOD: no thread to delay.
    const sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
    if (!sc_core::sc_is_running() || !h.valid() || h.proc_kind() != sc_core::SC_THREAD_PROC_) return;
    seqWait(sc_core::sc_time(static_cast<double>(ps), sc_core::SC_PS));
  });
}

}  // namespace hmmsim
