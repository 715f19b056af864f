#pragma once
// ByteStore: a byte-addressed store that a lower layer reads and writes without knowing who holds
// the bytes. PhysMem (cpu_mmu) implements it with physical addresses, so a PCIe BAR target
// (pcie, which may not include cpu_mmu) keeps its bytes in the machine's one store of frames.
// Contract: every address handed in was set up by the owner of the store (a device range of
// PhysMem); an address the store does not hold is a simulator bug (asserted by the store).

#include <cstddef>
#include <cstdint>

namespace hmmsim {

class ByteStore {
 public:
  virtual ~ByteStore() = default;
  /// Copy `len` bytes at `addr` into `dst`; bytes never written read as zeros.
  virtual void readBytes(std::uint64_t addr, void* dst, std::size_t len) const = 0;
  /// Copy `len` bytes from `src` to `addr`.
  virtual void writeBytes(std::uint64_t addr, const void* src, std::size_t len) = 0;
};

}  // namespace hmmsim
