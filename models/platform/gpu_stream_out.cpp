// The GPU results streamed out by the NIC on a Platform. See gpu_stream_out.h.
#include "models/platform/gpu_stream_out.h"

#include <algorithm>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/nic/nic_driver.h"
#include "sim/config.h"
#include "sim/errno.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}
constexpr std::uint64_t kMaxBuffer = 32ull << 10;  // a descriptor's length is 16 bits
}  // namespace

const char* gpuStreamPathName(GpuStreamPath p) {
  switch (p) {
    case GpuStreamPath::P2p:
      return "p2p";
    case GpuStreamPath::Bounce:
      return "bounce";
  }
  return "?";
}

std::vector<std::uint8_t> gpuResultsPattern(std::uint64_t bytes, std::uint64_t seed) {
  std::vector<std::uint8_t> v(bytes);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::uint64_t i = 0; i < bytes; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<std::uint8_t>(x >> 24);
  }
  return v;
}

std::vector<PlaceableRegion> gpuStreamOutPlaceable(const GpuStreamOutParams& params,
                                                   const GpuVramLayout& gpu) {
  PlaceableRegion results{"results", params.process, params.bytes, {}};
  if (params.path == GpuStreamPath::Bounce) {
    results.rule.what = "on the bounce path results is process memory";
    results.rule.users = "the GPU's copy engine writes it, the NIC reads it";
    results.rule.alternative = "or take path: p2p with a device-file mapping of " + params.gpu;
  } else {
    // The GPU's kernels left the results in driver-owned VRAM; the rest of VRAM is HMM memory
    // that migrated pages may hold.
    setVramRule(results.rule, params.gpu, gpu, gpu.kernelRegionOffset(), gpu.vramBytes,
                "the GPU driver's kernel region");
    results.rule.what = "on the p2p path results is " + params.gpu + "'s VRAM";
    results.rule.users = "the NIC reads it";
    results.rule.prot = PROT_READ;
    results.rule.alternative = "or take path: bounce";
  }
  return {results};
}

GpuStreamOut::GpuStreamOut(Platform& platform, const GpuStreamOutParams& params)
    : params_(params), parts_(platform, params.gpu, params.nic, params.process), stats_("workload") {
  if (params.bufferBytes == 0 || params.bufferBytes > kMaxBuffer)
    fail("buffer", "a descriptor's buffer is 1 .. 32KiB");
  if (params.chunkBytes == 0 || params.chunkBytes % params.bufferBytes != 0 ||
      params.chunkBytes % kPageSize != 0)
    fail("chunk", "the chunk must be a positive multiple of the buffer and of 4KiB");
  if (params.bytes == 0 || params.bytes % params.chunkBytes != 0)
    fail("bytes", "the results must be a positive multiple of the chunk");
  GpuPlatformDevice& g = parts_.gpu();
  if (params.bytes > g.driver().params().kernelRegionBytes)
    fail("bytes", "the results must fit in the GPU driver's kernel region (" +
                      std::to_string(g.driver().params().kernelRegionBytes) + " bytes)");
  if (!parts_.nic().params().recordWire)
    fail("nic", "the NIC must record the wire (its record_wire) for every byte to be checked");
  const GpuVramLayout vram = GpuVramLayout::of(g);
  const std::vector<PlaceableRegion> placeable = gpuStreamOutPlaceable(params, vram);
  checkPlacement(platform, params.place, placeable);
  const bool bounce = params.path == GpuStreamPath::Bounce;
  const ProcessMapping* placed = bounce ? nullptr : placedMapping(platform, params.place, placeable.front());
  resultsOffset_ = placed ? placed->offset - vram.fileOffset : vram.kernelRegionOffset();
  results_ = gpuResultsPattern(params.bytes, params.seed);  // what the GPU's kernels left in VRAM
  platform.physMem().write(g.gpu().params().vramPa + resultsOffset_, results_.data(), params.bytes);
  src_ = bounce   ? parts_.processBuffer(params.place, placeable.front())
         : placed ? placed->start
                  : parts_.mapVram(resultsOffset_, params.bytes);
  parts_.nic().setTxImporter(&parts_.importerOver(src_, params.bytes));
  const std::optional<Pfn> ring = platform.physMem().allocFrame(0);  // the driver's descriptor ring
  if (!ring) fail("process", "no system RAM frame left for the NIC's descriptor ring");
  ringPa_ = paOf(*ring).value();
  driver_ = std::make_unique<DriverThread>((std::string(parts_.nic().basename()) + "_txdrv").c_str(),
                                           platform, [this](DriverThread& t) { run(t); });
}

GpuStreamOut::~GpuStreamOut() = default;

void GpuStreamOut::run(DriverThread& t) {
  NicDriverParams dp;
  dp.barBase = parts_.platform().pci(parts_.nicEndpoint()).bar(0).bus.value();
  dp.txRingPa = ringPa_;
  NicDriver d(t, dp);
  d.setupTx();
  SeqQuantumKeeper qk;
  qk.reset();
  auto reclaim = [&] {  // each reclaim loads DD of every freed descriptor and of the first one not done
    const std::uint32_t freed = d.reclaim();
    reclaimed_ += freed;
    ddLoads_ += freed + (d.inFlight() > 0 ? 1 : 0);
  };
  for (std::uint64_t c = 0; c < params_.bytes; c += params_.chunkBytes) {
    chunkStartPs_.push_back(sc_core::sc_time_stamp().value());
    if (params_.path == GpuStreamPath::Bounce) {  // to system memory first; the NIC sends the previous chunk
      if (parts_.gpu().driver().copyVramToUser(parts_.mm(), src_ + c, resultsOffset_ + c, params_.chunkBytes,
                                               qk) != Errno::Ok)
        ++copyErrors_;
      qk.sync();
      if (c == 0) firstCopyDonePs_ = sc_core::sc_time_stamp().value();
      if (trace_)
        trace_->slice(TraceCategory::Dma, "device." + params_.gpu, "copy to RAM", chunkStartPs_.back(),
                      sc_core::sc_time_stamp().value() - chunkStartPs_.back());
    }
    for (std::uint64_t b = c; b < c + params_.chunkBytes; b += params_.bufferBytes)
      while (!d.queue(src_.value() + b, static_cast<std::uint16_t>(params_.bufferBytes))) {
        d.kick();  // the ring is full: send what is queued, free what went out
        reclaim();
        seqWait(sc_core::sc_time(20, sc_core::SC_US), parts_.nic().txDoneEvent());
      }
    d.kick();
  }
  for (;;) {
    reclaim();
    if (reclaimed_ == descriptors()) break;
    seqWait(sc_core::sc_time(20, sc_core::SC_US), parts_.nic().txDoneEvent());
  }
  traceChunks();
}

namespace {
/// Per chunk, the end of the packet carrying its last byte (packets in wire order).
std::vector<std::uint64_t> chunkEnds(const std::vector<NicPacket>& ps, std::uint64_t chunk,
                                     std::uint64_t chunks) {
  std::vector<std::uint64_t> ends;
  std::uint64_t sent = 0;
  for (const NicPacket& p : ps) {
    sent += p.bytes;
    while (ends.size() < chunks && sent >= (ends.size() + 1) * chunk) ends.push_back(p.endPs);
  }
  return ends;
}
}  // namespace

void GpuStreamOut::traceChunks() {
  if (!trace_) return;
  const std::vector<std::uint64_t> ends =
      chunkEnds(parts_.nic().packets(), params_.chunkBytes, chunkStartPs_.size());
  for (std::size_t c = 0; c < ends.size(); ++c)
    trace_->slice(TraceCategory::Dma, "device." + params_.nic, "chunk " + std::to_string(c), chunkStartPs_[c],
                  ends[c] - chunkStartPs_[c]);
}

double GpuStreamOut::wireGbps() const {
  const auto& ps = parts_.nic().packets();
  if (ps.empty()) return 0;
  double bits = 0;
  for (const NicPacket& pk : ps) bits += double(pk.bytes + parts_.nic().params().packetOverheadBytes) * 8.0;
  return bits / double(ps.back().endPs - ps.front().startPs) * 1000.0;
}

double GpuStreamOut::payloadGbps() const {
  const auto& ps = parts_.nic().packets();
  if (ps.empty()) return 0;
  double bits = 0;
  for (const NicPacket& pk : ps) bits += double(pk.bytes) * 8.0;
  return bits / double(ps.back().endPs - ps.front().startPs) * 1000.0;
}

void GpuStreamOut::finish() {
  const std::vector<std::uint8_t>& wire = parts_.nic().wire();
  std::uint64_t correct = 0;
  for (std::size_t i = 0; i < std::min(wire.size(), results_.size()); ++i) correct += wire[i] == results_[i];
  stats_.counter("bytes_sent", "B", "payload bytes on the wire") += wire.size();
  stats_.counter("bytes_correct", "B", "wire bytes equal to the result byte at their offset") += correct;
  stats_.counter("descriptors", "descriptors", "TX descriptors sent and reclaimed") += reclaimed_;
  stats_.counter("ring_bytes", "B", "DRAM bytes of the descriptor ring (CPU and NIC)") += ringBytes();
  stats_.scalar("throughput", "B/s", "payload bytes per second, first packet to last")
      .set(payloadGbps() * 1e9 / 8);
  stats_.scalar("wire_rate", "Gb/s", "wire bits per second (payload and per-packet overhead)")
      .set(wireGbps());
  const auto& ps = parts_.nic().packets();
  const std::uint64_t t0 = chunkStartPs_.empty() ? 0 : chunkStartPs_.front();
  stats_
      .scalar("first_byte_latency", "ps",
              "results ready in VRAM (the stream's start) -> first packet on the wire")
      .set(ps.empty() ? 0.0 : double(ps.front().startPs - t0));
  const std::vector<std::uint64_t> ends = chunkEnds(ps, params_.chunkBytes, chunkStartPs_.size());
  std::vector<std::uint64_t> lat;
  Distribution& d = stats_.distribution(
      "chunk_latency", "ps", "results ready in VRAM (the stream's start) -> a chunk's last byte sent");
  for (std::size_t c = 0; c < ends.size(); ++c) {
    lat.push_back(ends[c] - t0);
    d.sample(lat.back());
  }
  stats_.scalar("chunk_latency_p50", "ps", "median chunk latency").set(double(percentile(lat, 0.50)));
  stats_.scalar("chunk_latency_p99", "ps", "99th percentile chunk latency")
      .set(double(percentile(lat, 0.99)));
}

void GpuStreamOut::check(const std::string& at, std::vector<std::string>& failures) const {
  if (reclaimed_ != descriptors())
    failures.push_back(at + std::to_string(reclaimed_) + " of " + std::to_string(descriptors()) +
                       " descriptors were sent and reclaimed");
  if (const std::uint64_t e = parts_.nic().stats().counterValue("dma_errors"); e != 0)
    failures.push_back(at + "the NIC had " + std::to_string(e) + " DMA error(s)");
  if (copyErrors_ != 0)
    failures.push_back(at + std::to_string(copyErrors_) + " copy(ies) to system memory failed");
  const std::vector<std::uint8_t>& wire = parts_.nic().wire();
  if (wire.size() != results_.size())
    failures.push_back(at + std::to_string(wire.size()) + " of " + std::to_string(results_.size()) +
                       " result bytes went out");
  const auto diff =
      std::mismatch(wire.begin(), wire.begin() + std::min(wire.size(), results_.size()), results_.begin());
  if (diff.first != wire.begin() + std::min(wire.size(), results_.size()))
    failures.push_back(at + "the wire differs from the results at byte " +
                       std::to_string(diff.first - wire.begin()));
}

void GpuStreamOut::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  parts_.addStats(r);
}

std::vector<WorkloadRegion> GpuStreamOut::regions() const {
  return {{"results", params_.process, src_, params_.bytes}};
}

}  // namespace hmmsim
