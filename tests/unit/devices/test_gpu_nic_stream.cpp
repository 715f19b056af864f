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
// ring in DRAM, the TDT doorbell, reclaim. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/devices/nic/nic_driver.h"
#include "models/platform/driver_thread.h"
#include "tests/unit/devices/gpu_nic_platform.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kResults = 4ull << 20;  // the results: 4 MiB of VRAM
constexpr std::uint64_t kChunk = 256ull << 10;  // the bounce's copy granule
constexpr std::uint32_t kBufBytes = 32u << 10;  // one TX descriptor's buffer
constexpr std::uint64_t kDescriptors = kResults / kBufBytes;
constexpr std::uint64_t kRingBytesPerDesc =
    16 + 16 + 1 + 1;  // CPU writes, NIC fetches, DD back, CPU reads DD

struct StreamRun : GpuNicRun {
  StreamRun(const std::string& tag, bool p2p) : GpuNicRun(tag, smallGpu()), bounce(!p2p) {
    resultsOffset = gpu.driver().kernelRegionOffset();
    // The GPU's results (what its kernels wrote into VRAM).
    results = GpuPlatform::pattern(kResults, bounce ? 0x51 : 0x52);
    p.physMem().write(gpu.gpu().params().vramPa + resultsOffset, results.data(), kResults);
    src = bounce ? mapAnon(kResults) : mapVram(resultsOffset, kResults);
    if (bounce) {  // the runtime's pinned buffer is populated before the NIC registers it
      const std::vector<std::uint8_t> zeros(kResults);
      REQUIRE(copyToUser(mm, src, zeros.data(), kResults) == Errno::Ok);
    }
    nic.setTxImporter(&nicImporter(src, kResults));
    const std::optional<Pfn> ring = p.physMem().allocFrame(0);  // the driver's descriptor ring
    REQUIRE(ring);
    ringPa = paOf(*ring).value();
    driver = std::make_unique<DriverThread>((tag + "_txdrv").c_str(), p, [this](DriverThread& t) { run(t); });
  }
  void run(DriverThread& t) {
    NicDriverParams dp;
    dp.barBase = p.pci("nic").bar(0).bus.value();
    dp.txRingPa = ringPa;
    NicDriver d(t, dp);
    d.setupTx();
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    for (std::uint64_t c = 0; c < kResults; c += kChunk) {
      if (bounce) {  // this chunk to system memory first; the NIC still sends the previous one
        REQUIRE(gpu.driver().copyVramToUser(mm, src + c, resultsOffset + c, kChunk, qk) == Errno::Ok);
        if (c == 0) firstCopyDonePs = sc_core::sc_time_stamp().value();
      }
      for (std::uint64_t b = c; b < c + kChunk; b += kBufBytes)
        REQUIRE(d.queue(src.value() + b, static_cast<std::uint16_t>(kBufBytes)));
      d.kick();
    }
    for (;;) {  // each reclaim loads DD of every freed descriptor and of the first one not done
      const std::uint32_t freed = d.reclaim();
      reclaimed += freed;
      ddLoads += freed + (d.inFlight() > 0 ? 1 : 0);
      if (reclaimed == kDescriptors) break;
      sc_core::wait(sc_core::sc_time(20, sc_core::SC_US), nic.txDoneEvent());
    }
  }
  double wireGbps() const {
    const auto& ps = nic.packets();
    double bits = 0;
    for (const NicPacket& pk : ps) bits += double(pk.bytes + nic.params().packetOverheadBytes) * 8.0;
    return bits / double(ps.back().endPs - ps.front().startPs) * 1000.0;
  }
  double payloadGbps() const {
    const auto& ps = nic.packets();
    return double(kResults) * 8.0 / double(ps.back().endPs - ps.front().startPs) * 1000.0;
  }

  bool bounce;
  std::uint64_t resultsOffset = 0, ringPa = 0, firstCopyDonePs = 0;
  std::uint64_t reclaimed = 0, ddLoads = 0;
  /// DRAM bytes of the descriptor ring: the CPU writes each descriptor (16 B), the NIC fetches it
  /// (16 B) and writes DD back (1 B), the CPU loads DD bytes when it reclaims.
  std::uint64_t ringBytes() const { return kDescriptors * (16 + 16 + 1) + ddLoads; }
  std::vector<std::uint8_t> results;
  Va src;
  std::unique_ptr<DriverThread> driver;
};

}  // namespace

TEST_CASE("NIC streams a GPU's results out: p2p from VRAM at line rate vs a bounce through RAM",
          "[devices][gpu][nic][platform][workload3]") {
  StreamRun p2p("p2p", true), bounce("bounce", false);
  sc_core::sc_start();

  const NicParams np;
  const double payloadBound =
      np.lineRateGbps * double(np.packetBytes) / double(np.packetBytes + np.packetOverheadBytes);
  for (StreamRun* r : {&p2p, &bounce}) {
    INFO((r->bounce ? "bounce" : "p2p") << ": wire " << r->wireGbps() << " Gb/s, payload " << r->payloadGbps()
                                        << " Gb/s, DRAM " << r->dramBytes() << " B");
    CHECK(r->nic.wire() == r->results);  // every byte on the wire, in order
    CHECK(r->reclaimed == kDescriptors);
    CHECK(r->nic.stats().counterValue("dma_errors") == 0);
    CHECK(r->importer->stats().counterValue("device_faults") == 0);
    // Line rate: the wire never idles once the first packet left.
    CHECK(r->wireGbps() == Approx(np.lineRateGbps).epsilon(0.01));
    CHECK(r->payloadGbps() == Approx(payloadBound).epsilon(0.01));
    CHECK(r->p.violations().ok());
  }
  // System memory: the p2p stream touches DRAM only for the descriptor ring; the bounce also
  // writes every result byte (copy engine) and reads it again (NIC).
  CHECK(p2p.dramBytes() == p2p.ringBytes());
  CHECK(bounce.dramBytes() == bounce.ringBytes() + 2 * kResults);
  CHECK(p2p.rootComplexP2p() == 0);  // VRAM -> NIC under the switch
  CHECK(p2p.gpu.gpu().bar().stats().counterValue("bytes_read") == kResults);
  CHECK(bounce.gpu.gpu().bar().stats().counterValue("bytes_read") == 0);
  CHECK(bounce.gpu.gpu().stats().counterValue("copy_bytes_from_vram") == kResults);
  // The bounce's first packet waits for the first chunk's copy.
  CHECK(bounce.nic.packets().front().startPs > bounce.firstCopyDonePs);
}
