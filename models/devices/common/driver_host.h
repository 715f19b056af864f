#pragma once
// DriverHost: what a device's driver half needs from the CPU context that runs it (a kernel
// thread on a core): loads and stores by CPU physical address (DRAM, or a BAR through the root
// complex: ioremap'd registers, doorbells, a CMB), CPU time for its software work, and waiting for
// an interrupt vector. A SystemC CPU thread implements it (every access pays the platform's
// time); a driver half written against it stays pure C++.
// Contract: BARs sit at their bus address in the CPU's physical address space (no address
// translation between the CPU and PCIe memory space), as on x86.

#include <cstddef>
#include <cstdint>

namespace hmmsim {

class DriverHost {
 public:
  virtual ~DriverHost() = default;
  /// A store of `len` bytes at physical address `pa` (posted when it reaches a BAR).
  virtual void store(std::uint64_t pa, const void* src, std::size_t len) = 0;
  /// A load of `len` bytes at `pa`; returns when the data arrived.
  virtual void load(std::uint64_t pa, void* dst, std::size_t len) = 0;
  /// Spend `ps` of CPU time (driver software work).
  virtual void cpuWork(std::uint64_t ps) = 0;
  /// Sleep until interrupt vector `vector` fired since the last wait on it (at once if it has),
  /// then pay the interrupt entry.
  virtual void waitInterrupt(std::uint16_t vector) = 0;
};

}  // namespace hmmsim
