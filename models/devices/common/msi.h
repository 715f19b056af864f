#pragma once
// MSI as a device and its driver see it: the driver asks the platform's interrupt controller for
// a vector (allocateVector: a handler run on a CPU driver thread, with its cost), gets the MSI
// message (address in 0xFEE0_0000.., data = the vector) and programs it into the device; the
// device signals with sendMsi, a posted 4-byte memory write of the data to the address through
// its DMA engine (so it is ordered behind the device's earlier posted DMA writes on the same path
// and pays the fabric's timing). The controller (models/platform/interrupts.h) receives it behind
// the root complex and wakes the driver thread, which pays the interrupt entry latency and then
// runs the handler.
// Leaves out: MSI-X tables and masking, interrupt remapping, per-vector affinity changes.

#include <cstdint>
#include <functional>
#include <string>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/pcie/dma_engine.h"

namespace hmmsim {

/// The address/data pair a driver programs into its device.
struct MsiMessage {
  std::uint64_t address = 0;  ///< 0 = not programmed
  std::uint32_t data = 0;     ///< the vector
  bool programmed() const { return address != 0; }
};

/// What a handler can do on its CPU driver thread (an SC_THREAD): charge CPU time, read the time.
class IrqContext {
 public:
  virtual ~IrqContext() = default;
  /// The handler spends `ps` of CPU time (the driver thread waits; later interrupts queue).
  virtual void charge(std::uint64_t ps) = 0;
  virtual std::uint64_t nowPs() const = 0;
  /// The CPU driver thread's name.
  virtual const std::string& cpu() const = 0;
};

/// A driver's interrupt handler; runs after the interrupt entry latency and `handlerCostPs`.
using MsiHandler = std::function<void(IrqContext&)>;

/// The platform's interrupt controller as drivers see it.
class InterruptController {
 public:
  virtual ~InterruptController() = default;
  /// request_irq for one MSI vector: `handler` runs on CPU driver thread `cpu` (0-based) each time
  /// the vector's message is written, after the entry latency, having charged `handlerCostPs`
  /// (ps; the handler may charge more). `name` names it in stats. Returns the message to program.
  virtual MsiMessage allocateVector(const std::string& name, std::uint64_t handlerCostPs, MsiHandler handler,
                                    unsigned cpu = 0) = 0;
};

/// The device signals: a posted MWr of `msg.data` (4 bytes, little endian) to `msg.address`.
/// Returns the engine's issue result (donePs: when the write reached the controller).
inline DmaIssue sendMsi(PcieDmaEngine& engine, const MsiMessage& msg, tlm_utils::tlm_quantumkeeper& qk) {
  std::uint8_t bytes[4] = {static_cast<std::uint8_t>(msg.data), static_cast<std::uint8_t>(msg.data >> 8),
                           static_cast<std::uint8_t>(msg.data >> 16),
                           static_cast<std::uint8_t>(msg.data >> 24)};
  return engine.issueWrite(msg.address, sizeof bytes, bytes, qk);
}

}  // namespace hmmsim
