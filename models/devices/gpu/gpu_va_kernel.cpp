// The GPU's compute engine on process memory (VA kernels). See gpu_va_kernel.h and gpu.h.
#include "models/devices/gpu/gpu_va_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {
// The compute engine's requester key on its VRAM channels (gpu.cpp's kComputeKey).
constexpr std::uint32_t kComputeKey = 0x8000'0000u;

std::uint64_t localNow(const tlm_utils::tlm_quantumkeeper& qk) {
  return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
}

/// Moves the caller's local time forward to `ps` (never back).
void advanceTo(tlm_utils::tlm_quantumkeeper& qk, std::uint64_t ps) {
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (ps > now + qk.get_local_time().value()) qk.set(sc_core::sc_time::from_value(ps - now));
  if (qk.need_sync()) qk.sync();
}
}  // namespace

const char* gpuKernelOpName(GpuKernelOp op) {
  return op == GpuKernelOp::Sum64 ? "sum64" : "add64";
}

void gpuKernelApply(GpuKernelOp op, std::uint64_t operand, const std::uint8_t* in, std::uint64_t n,
                    std::uint8_t* out, std::uint64_t& sum) {
  for (std::uint64_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, in + i, 8);
    if (op == GpuKernelOp::Sum64) {
      sum += w;
    } else {
      w += operand;
      std::memcpy(out + i, &w, 8);
    }
  }
}

double Gpu::computePs(std::uint64_t bytes) const {
  return double(bytes) * 8.0 * 1000.0 / params_.computeRateGbps;  // Gb/s = bits per ns
}

void Gpu::launchVa(const GpuVaKernel& k, ImporterDma& mmu) {
  HMMSIM_ASSERT(!busy_, name() << ": launch while a kernel runs");
  HMMSIM_ASSERT(k.bytes > 0 && k.bytes % 8 == 0, name()
                                                     << ": a VA kernel's input must be whole 64-bit words");
  HMMSIM_ASSERT(k.outToVa || (k.outVramOffset <= params_.vramBytes &&
                              k.outBytes() <= params_.vramBytes - k.outVramOffset),
                name() << ": a VA kernel's VRAM output must lie in VRAM");
  vaKernel_ = k;
  vaMmu_ = &mmu;
  vaResult_ = GpuVaKernelResult{};
  busy_ = true;
  launched_ = true;
  launchEv_.notify(sc_core::SC_ZERO_TIME);
}

std::uint64_t Gpu::vramAccess(std::uint64_t offset, std::uint64_t len, std::uint8_t* data, bool write,
                              std::uint64_t startPs) {
  HMMSIM_ASSERT(offset <= params_.vramBytes && len <= params_.vramBytes - offset,
                name() << ": VRAM access [" << offset << ", +" << len << ") outside VRAM");
  if (data) {
    if (write)
      pm_.write(params_.vramPa + offset, data, len);
    else
      pm_.read(params_.vramPa + offset, data, len);
  }
  return bar_.localStream(offset, len, startPs, sc_core::sc_time_stamp().value(), kComputeKey).tailPs;
}

std::uint64_t Gpu::writeVaOutput(std::uint64_t off, const std::uint8_t* data, std::uint64_t n,
                                 std::uint64_t readyPs, tlm_utils::tlm_quantumkeeper& qk) {
  const GpuVaKernel& k = vaKernel_;
  std::uint64_t done = 0;
  if (!k.outToVa) {
    done = vramAccess(k.outVramOffset + off, n, const_cast<std::uint8_t*>(data), true, readyPs);
  } else {
    advanceTo(qk, readyPs);
    // The kernel's output is one DMA: a device fault maps the rest of it (ImporterDma's dmaEnd).
    const ImporterDmaResult r = vaMmu_->issueWrite(k.out + off, n, data, qk, k.out + k.outBytes());
    if (!r.ok()) {
      vaResult_.status = r.status;
      vaResult_.mapStatus = r.mapStatus;
      return 0;
    }
    done = r.donePs;
  }
  vaResult_.bytesOut += n;
  vaBytesOut_ += n;
  return done;
}

void Gpu::runVaKernel() {
  const GpuVaKernel& k = vaKernel_;
  GpuVaKernelResult& res = vaResult_;
  res.startPs = startPs_;
  SeqQuantumKeeper qk;
  qk.reset();
  const std::uint64_t chunk = params_.computeChunkBytes;
  std::vector<std::uint8_t> in(chunk);
  std::vector<std::uint8_t> out[2] = {std::vector<std::uint8_t>(chunk), std::vector<std::uint8_t>(chunk)};
  // Ends of the arithmetic of the last two chunks (double-buffered input), and the chunk whose
  // output waits for the next chunk's read to be issued.
  std::uint64_t end1 = startPs_, end2 = startPs_, lastDone = startPs_;
  struct Pending {
    bool valid = false;
    std::uint64_t off = 0, n = 0, readyPs = 0;
    int buf = 0;
  } pending;
  auto flush = [&] {
    if (!pending.valid || !res.ok()) return;
    lastDone = std::max(lastDone,
                        writeVaOutput(pending.off, out[pending.buf].data(), pending.n, pending.readyPs, qk));
    pending.valid = false;
  };
  int cur = 0;
  for (std::uint64_t off = 0; off < k.bytes && res.ok();) {
    const std::uint64_t n = std::min(chunk, k.bytes - off);
    advanceTo(qk, end2);  // chunk k-2's buffer is free once its arithmetic ended
    // The kernel's input is one DMA read chunk by chunk: a device fault maps the rest of it.
    const ImporterDmaResult r = vaMmu_->issueRead(k.in + off, n, in.data(), qk, k.in + k.bytes);
    if (!r.ok()) {
      res.status = r.status;
      res.mapStatus = r.mapStatus;
      break;
    }
    // The arithmetic starts when the chunk's last byte arrived and the previous chunk's ended.
    const std::uint64_t begin = std::max(r.donePs, end1);
    const std::uint64_t end = begin + static_cast<std::uint64_t>(std::llround(computePs(n)));
    gpuKernelApply(k.op, k.operand, in.data(), n, out[cur].data(), res.sum);
    res.bytesIn += n;
    vaBytesIn_ += n;
    if (k.op == GpuKernelOp::Add64) {
      flush();  // chunk k-1's output, behind chunk k's read
      pending = {true, off, n, end, cur};
      cur ^= 1;
    }
    end2 = end1;
    end1 = end;
    off += n;
  }
  if (res.ok()) {
    if (k.op == GpuKernelOp::Add64) {
      flush();
    } else {
      std::uint8_t word[8];
      std::memcpy(word, &res.sum, 8);
      lastDone = std::max(lastDone, writeVaOutput(0, word, 8, end1, qk));
    }
  }
  vaMmu_->drain(qk);  // nothing of the kernel stays in flight
  const std::uint64_t finish = std::max({end1, lastDone, localNow(qk)});
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  qk.reset();
  if (finish > now) seqWait(sc_core::sc_time::from_value(finish - now));
  res.endPs = sc_core::sc_time_stamp().value();
}

}  // namespace hmmsim
