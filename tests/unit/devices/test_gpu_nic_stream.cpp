// RFC workload [3] on the platform builder: "Accelerator device doing heavy computation and
// network device is streaming out the result. This avoid the need to first bounce the result
// through system memory (it saves both system memory and bandwidth)." The GPU's results sit in
// VRAM; the NIC's transmit path sends them from a process VA range through its importer
// (ImporterDma), two ways, on two machines in one simulation:
//  - p2p: the range is the GPU's special-vma mmap of the results (RFC 3/5): the NIC reads VRAM
//    through the GPU's BAR under the switch;
//  - bounce: the GPU's copy engine copies the results chunk by chunk into the process's pinned
//    system memory (a runtime's device-to-host copy) and the NIC sends each chunk from there while
//    the next one is copied (double buffering).
// A CPU driver thread (the platform's DriverThread) runs the NIC's TX driver: descriptors in a
// ring in DRAM, the TDT doorbell, reclaim. The workload is models/platform's GpuStreamOut;
// assertions after sc_start().
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "models/platform/gpu_stream_out.h"
#include "tests/unit/devices/gpu_nic_platform.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kResults = 4ull << 20;  // the results: 4 MiB of VRAM
constexpr std::uint64_t kChunk = 256ull << 10;  // the bounce's copy granule
constexpr std::uint32_t kBufBytes = 32u << 10;  // one TX descriptor's buffer
constexpr std::uint64_t kDescriptors = kResults / kBufBytes;

/// One machine streaming the results out on `path`.
struct StreamRun {
  StreamRun(const std::string& tag, GpuStreamPath path)
      : p(tag, gpuNicMachine(smallGpu()), builtinDevices()), w(p, params(path)) {
    w.start();
  }
  static GpuStreamOutParams params(GpuStreamPath path) {
    GpuStreamOutParams s;
    s.gpu = "gpu1";
    s.nic = "nic";
    s.process = "proc0";
    s.path = path;
    s.bytes = kResults;
    s.chunkBytes = kChunk;
    s.bufferBytes = kBufBytes;
    s.seed = path == GpuStreamPath::Bounce ? 0x51 : 0x52;
    return s;
  }
  bool bounce() const { return w.params().path == GpuStreamPath::Bounce; }
  Gpu& gpu() { return w.parts().gpu().gpu(); }
  Nic& nic() { return w.parts().nic(); }
  double stat(const std::string& name) { return workloadStat(p, w, name); }
  std::vector<std::string> failures() { return workloadFailures(w); }

  Platform p;
  GpuStreamOut w;
};

}  // namespace

TEST_CASE("NIC streams a GPU's results out: p2p from VRAM at line rate vs a bounce through RAM",
          "[devices][gpu][nic][platform][workload3]") {
  StreamRun p2p("p2p", GpuStreamPath::P2p), bounce("bounce", GpuStreamPath::Bounce);
  sc_core::sc_start();

  const NicParams np;
  const double payloadBound =
      np.lineRateGbps * double(np.packetBytes) / double(np.packetBytes + np.packetOverheadBytes);
  for (StreamRun* r : {&p2p, &bounce}) {
    r->w.finish();
    INFO((r->bounce() ? "bounce" : "p2p") << ": wire " << r->w.wireGbps() << " Gb/s, payload "
                                          << r->w.payloadGbps() << " Gb/s, DRAM " << dramBytes(r->p) << " B");
    CHECK(r->w.done());
    CHECK(r->failures().empty());              // the workload's own verdict
    CHECK(r->nic().wire() == r->w.results());  // every byte on the wire, in order
    CHECK(r->w.results() == gpuResultsPattern(kResults, r->bounce() ? 0x51 : 0x52));
    CHECK(r->stat("workload.bytes_correct") == kResults);
    CHECK(r->w.reclaimed() == kDescriptors);
    CHECK(r->nic().stats().counterValue("dma_errors") == 0);
    CHECK(r->w.parts().importer()->stats().counterValue("device_faults") == 0);
    // Line rate: the wire never idles once the first packet left.
    CHECK(r->w.wireGbps() == Approx(np.lineRateGbps).epsilon(0.01));
    CHECK(r->w.payloadGbps() == Approx(payloadBound).epsilon(0.01));
    CHECK(r->stat("workload.throughput") == Approx(r->w.payloadGbps() * 1e9 / 8));
    CHECK(r->stat("workload.chunk_latency_p99") >= r->stat("workload.chunk_latency_p50"));
    CHECK(r->p.violations().ok());
  }
  // System memory: the p2p stream touches DRAM only for the descriptor ring; the bounce also
  // writes every result byte (copy engine) and reads it again (NIC).
  CHECK(dramBytes(p2p.p) == p2p.w.ringBytes());
  CHECK(dramBytes(bounce.p) == bounce.w.ringBytes() + 2 * kResults);
  CHECK(rootComplexP2p(p2p.p) == 0);  // VRAM -> NIC under the switch
  CHECK(p2p.gpu().bar().stats().counterValue("bytes_read") == kResults);
  CHECK(bounce.gpu().bar().stats().counterValue("bytes_read") == 0);
  CHECK(bounce.gpu().stats().counterValue("copy_bytes_from_vram") == kResults);
  // The bounce's first packet waits for the first chunk's copy.
  CHECK(bounce.nic().packets().front().startPs > bounce.w.firstCopyDonePs());
  CHECK(bounce.stat("workload.first_byte_latency") > p2p.stat("workload.first_byte_latency"));
}
