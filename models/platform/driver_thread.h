#pragma once
// DriverThread: a kernel thread on a CPU of the platform running a driver half written against
// DriverHost (models/devices/common/driver_host.h): loads and stores by physical address through
// the system bus (DRAM, or BARs through the root complex: registers, doorbells, a CMB), CPU time,
// and waiting for an interrupt vector. Device-local vectors are bound to MSI vectors of the
// platform's interrupt controller (bindVector gives the message the driver programs into the
// device, e.g. an MSI-X table entry); waitInterrupt(v) returns when the controller's driver CPU
// took v's interrupt, i.e. at max(arrival, that CPU's previous handler end) + entry latency.
// Timing: every access is loosely timed through the bus and then waited for (an uncached access
// is synchronous); cpuWork waits. Leaves out: the CPU's caches and write combining.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <systemc>

#include "models/devices/common/driver_host.h"
#include "models/devices/common/msi.h"

namespace hmmsim {

class Platform;

class DriverThread : public sc_core::sc_module, public DriverHost {
 public:
  SC_HAS_PROCESS(DriverThread);
  /// Runs `body` once on its own SC_THREAD from time 0.
  DriverThread(sc_core::sc_module_name name, Platform& platform, std::function<void(DriverThread&)> body);

  /// The MSI message for device vector `v` (allocated on first use, on interrupt CPU `cpu`).
  MsiMessage bindVector(std::uint16_t v, unsigned cpu = 0);

  void store(std::uint64_t pa, const void* src, std::size_t len) override;
  void load(std::uint64_t pa, void* dst, std::size_t len) override;
  void cpuWork(std::uint64_t ps) override;
  void waitInterrupt(std::uint16_t vector) override;

  std::uint64_t busErrors() const { return busErrors_; }
  std::uint64_t interrupts() const { return interrupts_; }

 private:
  void run();
  void access(bool write, std::uint64_t pa, void* buf, std::size_t len);

  Platform& platform_;
  std::function<void(DriverThread&)> body_;
  std::map<std::uint16_t, MsiMessage> bound_;
  std::map<std::uint16_t, std::uint64_t> pending_;
  sc_core::sc_event irq_;
  std::uint64_t busErrors_ = 0, interrupts_ = 0;
};

}  // namespace hmmsim
