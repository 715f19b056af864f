// The GPU's hardware half. See gpu.h.
#include "models/devices/gpu/gpu.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <sstream>
#include <utility>

#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/pcie/dma_engine.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {
// Requester keys of the GPU's own engines on its VRAM channels (PCIe requesters use their BDF).
constexpr std::uint32_t kComputeKey = 0x8000'0000u;
constexpr std::uint32_t kCopyKey = 0x8000'0001u;
constexpr std::uint64_t k2M = 2ull << 20;
}  // namespace

std::string GpuParams::check() const {
  std::ostringstream os;
  if (vramBytes == 0 || vramBytes % k2M != 0)
    os << "GpuParams.vramBytes: must be a positive multiple of 2 MiB, got " << vramBytes;
  else if (vramPa.value() % k2M != 0)
    os << "GpuParams.vramPa: must be 2 MiB aligned, got 0x" << std::hex << vramPa.value();
  else if (vramChannels == 0 || !(vramChannelGbps > 0))
    os << "GpuParams.vramChannels and vramChannelGbps must be positive";
  else if (vramInterleaveBytes == 0 || (vramInterleaveBytes & (vramInterleaveBytes - 1)) != 0)
    os << "GpuParams.vramInterleaveBytes: must be a power of two, got " << vramInterleaveBytes;
  else if (!resizableBar &&
           (barApertureBytes == 0 || barApertureBytes % k2M != 0 || barApertureBytes > vramBytes))
    os << "GpuParams.barApertureBytes: must be a positive multiple of 2 MiB, at most vramBytes, got "
       << barApertureBytes;
  else if (!(computeShare > 0 && computeShare <= 1))
    os << "GpuParams.computeShare: must be in (0, 1], got " << computeShare;
  else if (computeChunkBytes == 0 || computeChunkBytes % 4096 != 0)
    os << "GpuParams.computeChunkBytes: must be a positive multiple of 4 KiB, got " << computeChunkBytes;
  else if (!(computeRateGbps > 0))
    os << "GpuParams.computeRateGbps: must be positive, got " << computeRateGbps;
  return os.str();
}

PcieMemoryTargetParams Gpu::barTargetParams(const GpuParams& params, std::uint64_t barBase) {
  PcieMemoryTargetParams t;
  t.baseAddr = barBase;
  t.sizeBytes = params.barBytes();
  t.latencyPs = params.vramLatencyPs;
  t.bandwidthGbps = params.vramChannelGbps;
  t.channels = params.vramChannels;
  t.interleaveBytes = params.vramInterleaveBytes;
  t.storeData = true;
  return t;
}

Gpu::Gpu(sc_core::sc_module_name name, const GpuParams& params, PhysMem& pm, PcieMemoryTarget& bar,
         PcieDmaEngine& dma)
    : sc_module(name),
      params_(params),
      pm_(pm),
      bar_(bar),
      dma_(dma),
      stats_(std::string(this->name())),
      kernels_(stats_.counter("kernels", "kernels", "compute kernels completed")),
      computeBytes_(stats_.counter("compute_bytes", "B", "bytes the compute engine read (and wrote back)")),
      computeChunks_(stats_.counter("compute_chunks", "chunks", "compute engine steps")),
      computeStallPs_(stats_.counter("compute_stall_ps", "ps", "time compute steps took beyond their pace")),
      vaKernels_(stats_.counter("va_kernels", "kernels", "kernels over process memory completed")),
      vaBytesIn_(stats_.counter("va_bytes_in", "B", "input bytes VA kernels read through the device MMU")),
      vaBytesOut_(stats_.counter("va_bytes_out", "B", "output bytes VA kernels wrote")),
      copyToVram_(stats_.counter("copy_bytes_to_vram", "B", "copy engine bytes host -> VRAM")),
      copyFromVram_(stats_.counter("copy_bytes_from_vram", "B", "copy engine bytes VRAM -> host")),
      copyDescriptors_(
          stats_.counter("copy_descriptors", "descriptors", "pages the copy engine copied or cleared")) {
  const std::string bad = params.check();
  HMMSIM_ASSERT(bad.empty(), this->name() << ": " << bad);
  HMMSIM_ASSERT(bar.params().sizeBytes == params.barBytes(),
                this->name() << ": the BAR target has " << bar.params().sizeBytes << " B, the GPU's BAR "
                             << params.barBytes() << " B");
  bar.setTiming(barTargetParams(params, bar.params().baseAddr));  // the BAR's memory is VRAM
  bar.setBacking(&pm, params.vramPa.value(), params.vramBytes);
  SC_THREAD(computeThread);
}

double Gpu::chunkIntervalPs(std::uint64_t bytes) const {
  // Read + write of `bytes` at computeShare of the VRAM bandwidth (Gb/s = bits per ns).
  return 2.0 * double(bytes) * 8.0 * 1000.0 / (params_.computeShare * params_.vramGbps());
}

void Gpu::launch(const GpuKernel& k) {
  HMMSIM_ASSERT(!busy_, name() << ": launch while a kernel runs");
  HMMSIM_ASSERT(
      k.regionBytes >= params_.computeChunkBytes && k.regionBytes % params_.computeChunkBytes == 0 &&
          k.regionOffset + k.regionBytes <= params_.vramBytes && k.progressOffset + 8 <= params_.vramBytes,
      name() << ": kernel region must be whole chunks inside VRAM");
  kernel_ = k;
  busy_ = true;
  launched_ = true;
  launchEv_.notify(sc_core::SC_ZERO_TIME);
}

std::uint64_t Gpu::progress() const {
  std::uint64_t v = 0;
  pm_.read(params_.vramPa + kernel_.progressOffset, &v, sizeof v);
  return v;
}

void Gpu::storeProgress(std::uint64_t value) {
  pm_.write(params_.vramPa + kernel_.progressOffset, &value, sizeof value);
  if (params_.recordProgress) history_.push_back({sc_core::sc_time_stamp().value(), value});
}

void Gpu::computeThread() {
  for (;;) {
    // A launch may come while this thread still sends the previous kernel's MSI.
    while (!launched_) sc_core::wait(launchEv_);
    launched_ = false;
    startPs_ = sc_core::sc_time_stamp().value();
    if (vaMmu_) {
      runVaKernel();
      vaMmu_ = nullptr;
      ++vaKernels_;
    } else {
      runStreamKernel();
      ++kernels_;
    }
    endPs_ = sc_core::sc_time_stamp().value();
    busy_ = false;
    doneEv_.notify(sc_core::SC_ZERO_TIME);
    if (kernelMsi_.programmed()) {  // the completion interrupt, after the kernel's last store
      SeqQuantumKeeper qk;
      qk.reset();
      sendMsi(dma_, kernelMsi_, qk);
      qk.sync();
    }
  }
}

void Gpu::runStreamKernel() {
  const std::uint64_t chunk = params_.computeChunkBytes;
  double nextIssue = double(startPs_);
  std::uint64_t issued = 0, done = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> pending;  // (completion ps, bytes)
  storeProgress(done);
  auto retire = [&](std::uint64_t upTo) {
    const std::uint64_t before = done;
    while (!pending.empty() && pending.front().first <= upTo) {
      done += pending.front().second;
      pending.pop_front();
    }
    if (done != before) storeProgress(done);
  };
  while (issued < kernel_.totalBytes) {
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    const std::uint64_t issue = std::max(now, static_cast<std::uint64_t>(std::llround(nextIssue)));
    if (issue > now) {
      seqWait(sc_core::sc_time::from_value(issue - now));
      retire(issue);
    }
    const std::uint64_t n = std::min(chunk, kernel_.totalBytes - issued);
    const std::uint64_t off = kernel_.regionOffset + (issued % kernel_.regionBytes);
    // A pipelined engine: the chunk's reads and its write-back occupy the channels from its
    // issue on (2n bytes); the next chunk issues at the pace computeShare allows, but not
    // before the channels took this one (so contention slows the engine, it never queues
    // more than one chunk ahead of the channels). The chunk is many small accesses: it takes
    // the channels' free time around a peer's access booked ahead (localStream), so that
    // access costs the kernel its own channel time only.
    const HeadTail r = bar_.localStream(off, n, issue, issue, kComputeKey);
    const HeadTail w = bar_.localStream(off, n, issue, issue, kComputeKey);
    const std::uint64_t channelsFree = std::max(r.tailPs, w.tailPs) - params_.vramLatencyPs;
    const double paced = double(issue) + chunkIntervalPs(n);
    if (double(channelsFree) > paced)
      computeStallPs_ += static_cast<std::uint64_t>(double(channelsFree) - paced);
    nextIssue = std::max(paced, double(channelsFree));
    pending.emplace_back(std::max(r.tailPs, w.tailPs), n);
    issued += n;
    computeBytes_ += n;
    ++computeChunks_;
  }
  const std::uint64_t last = pending.back().first;
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (last > now) seqWait(sc_core::sc_time::from_value(last - now));
  retire(last);
}

CplStatus Gpu::copy(bool toVram, std::uint64_t hostAddr, std::uint64_t vramOffset, std::uint64_t bytes,
                    tlm_utils::tlm_quantumkeeper& qk) {
  // The copy books VRAM channels, links and host memory that other engines share (the compute
  // engine, peers through the BAR, a NIC reading host memory): each booking is made at
  // synchronised time, so which engine's access comes first is time order, not quantum order.
  const std::uint64_t descriptorsEnd =
      takeDescriptors((hostAddr % kPageSize + bytes + kPageSize - 1) / kPageSize, qk);
  qk.sync();
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  const std::uint64_t local = now + qk.get_local_time().value();
  // The engine moves the real bytes (the pure-core copy already put the same bytes in place, so
  // this is idempotent; a DMA without data would send the engine's scratch buffer). The staging
  // buffer is the call's own: the DMA may wait, and another thread's copy (a migration beside a
  // bounce copy) runs meanwhile.
  std::vector<std::uint8_t> buffer(bytes);
  DmaIssue io;
  std::uint64_t end = 0;
  if (toVram) {
    io = dma_.issueRead(hostAddr, bytes, buffer.data(), qk);
    // VRAM takes the run once it arrived (a peer reading VRAM sees the bytes from then on).
    const std::uint64_t issued = sc_core::sc_time_stamp().value();
    if (io.donePs > issued + qk.get_local_time().value())
      qk.set(sc_core::sc_time::from_value(io.donePs - issued));
    qk.sync();
    const std::uint64_t in = sc_core::sc_time_stamp().value();
    if (io.status == CplStatus::SuccessfulCompletion)
      pm_.write(params_.vramPa + vramOffset, buffer.data(), bytes);
    end = bar_.localAccess(vramOffset, bytes, in, in, kCopyKey).tailPs;
    copyToVram_ += bytes;
  } else {
    pm_.read(params_.vramPa + vramOffset, buffer.data(), bytes);
    const HeadTail v = bar_.localAccess(vramOffset, bytes, local, now, kCopyKey);
    qk.set(sc_core::sc_time::from_value(std::max(v.tailPs, local) - now));
    qk.sync();  // the DMA leaves once VRAM delivered the run
    io = dma_.issueWrite(hostAddr, bytes, buffer.data(), qk);
    end = io.donePs;
    copyFromVram_ += bytes;
  }
  end = std::max(end, descriptorsEnd);
  const std::uint64_t cur = sc_core::sc_time_stamp().value();
  if (end > cur + qk.get_local_time().value()) qk.set(sc_core::sc_time::from_value(end - cur));
  if (qk.need_sync()) qk.sync();
  return io.status;
}

void Gpu::clear(std::uint64_t vramOffset, std::uint64_t bytes, tlm_utils::tlm_quantumkeeper& qk) {
  const std::uint64_t descriptorsEnd =
      takeDescriptors((vramOffset % kPageSize + bytes + kPageSize - 1) / kPageSize, qk);
  qk.sync();  // VRAM is shared with the compute engine and peers: booked at synchronised time
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  const HeadTail t = bar_.localAccess(vramOffset, bytes, now, now, kCopyKey);
  qk.set(sc_core::sc_time::from_value(std::max({t.tailPs, descriptorsEnd, now}) - now));
}

std::uint64_t Gpu::takeDescriptors(std::uint64_t pages, tlm_utils::tlm_quantumkeeper& qk) {
  copyDescriptors_ += pages;
  const std::uint64_t start = sc_core::sc_time_stamp().value() + qk.get_local_time().value();
  if (pages > 0) qk.inc(sc_core::sc_time::from_value(params_.copyDescriptorPs));
  return start + pages * params_.copyDescriptorPs;
}

}  // namespace hmmsim
