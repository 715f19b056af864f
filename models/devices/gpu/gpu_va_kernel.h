#pragma once
// A GPU compute kernel over process memory (the GPU as importer): its input is a process VA
// range that the compute engine reads through the GPU's device MMU (ImporterDma, the platform's
// one importer data path), its output goes to driver-owned VRAM or to a process VA range.
//
// What the transform is (real, checkable arithmetic on little-endian 64-bit words, wrapping):
//  - Sum64: the sum of every input word; the output is that one 8-byte word.
//  - Add64: every input word plus `operand`; the output has the input's size.
// Where the bytes come from: whatever the process range holds, as the device MMU translates it:
// system memory (through the IOMMU), a peer's memory p2p (a special-vma mmap of another GPU's
// VRAM, another device's private pages with p2p ops), or the GPU's own device-private pages
// (owner-matched: hmm_range_fault reports them without faulting, the DMA-map step gives their
// VRAM offset, and the engine reads them on its VRAM channels, no PCIe).
// Timing (Gpu::launchVa): see gpu.h's compute engine.

#include <cstdint>
#include <vector>

#include "hmm/hmm.h"
#include "models/devices/common/importer_dma.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// What a VA kernel computes.
enum class GpuKernelOp {
  Sum64,  ///< out = sum of the input's 64-bit words (8 bytes)
  Add64,  ///< out[i] = in[i] + operand for every 64-bit word (the input's size)
};
const char* gpuKernelOpName(GpuKernelOp op);

/// One kernel over process memory. Offsets and sizes in bytes.
struct GpuVaKernel {
  GpuKernelOp op = GpuKernelOp::Sum64;
  Va in;                            ///< input: a process VA (8-byte aligned)
  std::uint64_t bytes = 0;          ///< input size: a positive multiple of 8. Unit: bytes.
  bool outToVa = false;             ///< the output goes to `out` (else to VRAM at outVramOffset)
  Va out;                           ///< output VA (8-byte aligned) when outToVa
  std::uint64_t outVramOffset = 0;  ///< output VRAM offset (8-byte aligned) otherwise. Unit: bytes.
  std::uint64_t operand = 0;        ///< Add64's addend
  /// Bytes the kernel writes: 8 for Sum64, `bytes` for Add64.
  std::uint64_t outBytes() const { return op == GpuKernelOp::Sum64 ? 8 : bytes; }
};

/// How a VA kernel ended.
struct GpuVaKernelResult {
  ImporterDmaStatus status = ImporterDmaStatus::Ok;  ///< Ok, or the first transfer that failed
  HmmStatus mapStatus = HmmStatus::Ok;               ///< Fault: what the device MMU's map returned
  std::uint64_t bytesIn = 0;                         ///< input bytes read and computed on
  std::uint64_t bytesOut = 0;                        ///< output bytes written
  std::uint64_t sum = 0;                             ///< Sum64: the result (also stored as output)
  std::uint64_t startPs = 0, endPs = 0;              ///< launch and completion. Unit: ps.
  bool ok() const { return status == ImporterDmaStatus::Ok; }
};

/// Applies `op` to `n` input bytes (a multiple of 8) at `in`: Add64 writes `n` bytes to `out`;
/// Sum64 adds the words to `sum`. The reference a test checks the GPU against.
void gpuKernelApply(GpuKernelOp op, std::uint64_t operand, const std::uint8_t* in, std::uint64_t n,
                    std::uint8_t* out, std::uint64_t& sum);

}  // namespace hmmsim
