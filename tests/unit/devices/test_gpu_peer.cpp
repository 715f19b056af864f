// The GPU with a peer (gpu0 importing through ImporterDma) on the SystemC platform: peer reads of
// VRAM through the BAR share VRAM bandwidth with the compute engine; GPU memory migrated back to
// RAM while a peer streams it keeps every byte and the checker clean. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/platform/exporter_events.h"
#include "tests/unit/devices/gpu_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

struct SharingRun {
  double computeGBps = 0;  ///< compute bytes / kernel duration
  double peerGBps = 0;     ///< peer bytes read during the kernel / kernel duration
  std::uint64_t peerErrors = 0;
  std::uint64_t faultsDuringKernel = 0;  ///< the peer's device faults after the kernel's launch
  bool bytesOk = true;
};

// A 64 MiB kernel demanding all of VRAM's 64 GB/s (computeShare 1); with `peer`, gpu0 reads 8 MiB
// of VRAM through the BAR (a special vma) over and over while the kernel runs, after one pass
// that maps it (the device faults) before the launch.
SharingRun shareVram(bool peer) {
  GpuParams gp = smallGpu();
  gp.computeShare = 1.0;
  GpuPlatform p(gp);
  constexpr std::uint64_t kPeerBytes = 8ull << 20, kBurst = 64ull << 10;
  // The peer's VRAM holds a pattern (written directly: VRAM offset 0 on).
  const std::vector<std::uint8_t> pat = GpuPlatform::pattern(kPeerBytes, 0x77);
  p.pm.write(gp.vramPa, pat.data(), pat.size());
  const Va v = p.mapVram(0, kPeerBytes);
  ImporterDma& imp = p.peerOver(v, kPeerBytes / kGpuP);
  GpuKernel k;
  k.regionOffset = p.driver->kernelRegionOffset();
  k.regionBytes = 16ull << 20;
  k.totalBytes = 64ull << 20;
  k.progressOffset = k.regionOffset + k.regionBytes;
  SharingRun out;
  std::uint64_t peerBytes = 0;
  std::vector<std::uint8_t> buf(kBurst);
  sc_core::sc_event mapped;
  std::uint64_t faultsBefore = 0;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper&) {
    if (peer) sc_core::wait(mapped);
    faultsBefore = imp.stats().counterValue("device_faults");
    p.gpu.launch(k);
    sc_core::wait(p.gpu.computeDone());
  });
  QkThread reader("peer", [&](tlm_utils::tlm_quantumkeeper& qk) {
    if (!peer) return;
    // The peer's device faults (fault cost, walk and DMA map of every page) happen before the
    // kernel: what the kernel shares VRAM with is the peer's streaming, not its first touch.
    for (std::uint64_t off = 0; off < kPeerBytes; off += kBurst)
      if (!imp.read(v + off, kBurst, buf.data(), qk).ok()) ++out.peerErrors;
    qk.sync();
    mapped.notify(sc_core::SC_ZERO_TIME);
    sc_core::wait(sc_core::SC_ZERO_TIME);  // the kernel has started
    sc_core::wait(sc_core::SC_ZERO_TIME);
    for (std::uint64_t off = 0; p.gpu.computeBusy(); off = (off + kBurst) % kPeerBytes) {
      const ImporterDmaResult r = imp.read(v + off, kBurst, buf.data(), qk);
      if (!r.ok()) {
        ++out.peerErrors;
        break;
      }
      if (r.donePs <= p.gpu.kernelEndPs() || p.gpu.computeBusy()) peerBytes += kBurst;
      if (!std::equal(buf.begin(), buf.end(), pat.begin() + static_cast<std::ptrdiff_t>(off)))
        out.bytesOk = false;
      qk.sync();
    }
  });
  sc_core::sc_start();
  const double ps = double(p.gpu.kernelEndPs() - p.gpu.kernelStartPs());
  out.computeGBps = double(k.totalBytes) / ps * 1000.0;  // bytes/ps -> GB/s
  out.peerGBps = double(peerBytes) / ps * 1000.0;
  CHECK(p.violations.ok());
  out.faultsDuringKernel = imp.stats().counterValue("device_faults") - faultsBefore;
  return out;
}

}  // namespace

TEST_CASE("gpu: without a peer the sharing test's kernel gets all of VRAM bandwidth (the baseline)",
          "[devices][gpu][timing][p2p]") {
  const SharingRun alone = shareVram(false);
  INFO("alone: compute " << alone.computeGBps << " GB/s");
  // All of 64 GB/s; the kernel streams each byte once (read + write: 2x the bytes on VRAM).
  CHECK(std::abs(alone.computeGBps * 2 / 64.0 - 1.0) < 0.01);
}

TEST_CASE(
    "gpu: a peer reading VRAM through the BAR while the GPU computes slows the compute engine to the "
    "VRAM bandwidth the peer leaves (bandwidth-sharing model)",
    "[devices][gpu][timing][p2p]") {
  const SharingRun shared = shareVram(true);
  INFO("with a peer: compute " << shared.computeGBps << " GB/s, peer " << shared.peerGBps << " GB/s");
  CHECK(shared.peerErrors == 0);
  CHECK(shared.bytesOk);
  CHECK(shared.faultsDuringKernel == 0);
  CHECK(shared.peerGBps > 10.0);  // the peer really streamed (Gen4 x16 reads)
  // Bandwidth sharing: the compute engine demands all 64 GB/s of VRAM; the peer's reads take
  // what they use; compute gets the rest.
  CHECK(std::abs(shared.computeGBps * 2 / (64.0 - shared.peerGBps) - 1.0) < 0.03);
  CHECK(shared.computeGBps * 2 < 0.9 * 64.0);  // measurably slower than alone
}

TEST_CASE(
    "gpu: GPU memory migrated back to RAM while a peer streams it keeps every byte, and the checker "
    "stays clean",
    "[devices][gpu][p2p][migrate]") {
  GpuPlatform p;
  constexpr std::uint64_t kPages = 512, kBytes = kPages * kGpuP, kBurst = 64ull << 10;
  const Va a = p.mapAnon(kBytes);
  p.fill(a, kBytes, 0x31);
  std::vector<std::uint8_t> expect = GpuPlatform::pattern(kBytes, 0x31);
  const std::vector<std::uint8_t> second = GpuPlatform::pattern(kBytes / 2, 0x32);
  ImporterDma& imp = p.peerOver(a, kPages);
  std::uint64_t moved = 0, back = 0, passes = 0, badBursts = 0, failed = 0, p2pBeforeMigration = 0;
  Errno toVram = Errno::Inval, toRam = Errno::Inval;
  bool migrated = false;
  sc_core::sc_event inVram, halfway;
  std::vector<std::uint8_t> buf(kBurst);
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toVram = p.driver->migrateToVram(*p.mm, a, a + kBytes, &qk, &moved);
    inVram.notify(sc_core::SC_ZERO_TIME);
    sc_core::wait(halfway);
    // Mid-stream: everything goes back to RAM while the peer's bursts are in flight.
    toRam = p.driver->migrateToRam(*p.mm, a, a + kBytes, &qk, &back);
    migrated = true;
  });
  QkThread peer("peer", [&](tlm_utils::tlm_quantumkeeper& qk) {
    sc_core::wait(inVram);
    // The peer writes the first half in place (p2p into VRAM), then streams the whole range.
    if (!imp.write(a, kBytes / 2, second.data(), qk).ok()) ++failed;
    std::copy(second.begin(), second.end(), expect.begin());
    p2pBeforeMigration = p.driver->exporter().stats().counterValue("devmem_p2p_pages");
    for (passes = 0; passes < 6; ++passes) {
      for (std::uint64_t off = 0; off < kBytes; off += kBurst) {
        if (passes == 1 && off == kBytes / 2) halfway.notify(sc_core::SC_ZERO_TIME);
        const ImporterDmaResult r = imp.read(a + off, kBurst, buf.data(), qk);
        if (!r.ok()) {
          ++failed;
          continue;
        }
        if (!std::equal(buf.begin(), buf.end(), expect.begin() + static_cast<std::ptrdiff_t>(off)))
          ++badBursts;
      }
      qk.sync();
    }
  });
  sc_core::sc_start();
  CHECK(toVram == Errno::Ok);
  CHECK(moved == kPages);
  CHECK(toRam == Errno::Ok);
  CHECK(back == kPages);
  CHECK(migrated);
  CHECK(failed == 0);
  CHECK(badBursts == 0);
  CHECK(passes == 6);
  // Before the migration the peer reached VRAM p2p (devmem p2p ops through the BAR) ...
  CHECK(p2pBeforeMigration >= kPages / 2);
  CHECK(p.driver->exporter().stats().counterValue("devmem_p2p_pages") >= kPages);
  CHECK(p.directory.checkedPages() > 0);
  // ... after it, system memory: nothing of the GPU's memory is held any more.
  CHECK(imp.mirror().kindAt(a) == HmmDmaKind::System);
  CHECK(p.driver->devmem().allocatedPages() == 0);
  CHECK(p.driver->exporter().bar().heldPages() == 0);
  CHECK(p.cpu(a, kBytes) == expect);  // the peer's p2p writes came back with the pages
  CHECK(p.violations.ok());
}

TEST_CASE("gpu: a revoke of a peer's device-private pages takes rmap_walk_page_cost per page in the revoker",
          "[devices][gpu][p2p][timing]") {
  GpuPlatform p;
  constexpr std::uint64_t kPages = 64, kBytes = kPages * kGpuP;
  const Va a = p.mapAnon(kBytes);
  p.fill(a, kBytes, 0x41);
  ImporterDmaParams ip;
  ip.mirror.tlbInvalidationPs = 0;  // the revoke's time is the exporter's walk (and IOMMU unmaps)
  ImporterDma& imp = p.peerOver(a, kPages, ip);
  std::uint64_t moved = 0, took = 0, unmapPs = 0;
  ExporterEventResult r;
  std::vector<std::uint8_t> buf(kBytes);
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    REQUIRE(p.driver->migrateToVram(*p.mm, a, a + kBytes, &qk, &moved) == Errno::Ok);
    REQUIRE(imp.read(a, kBytes, buf.data(), qk).ok());  // the peer maps the VRAM pages in place
    qk.sync();
    const std::uint64_t t0 = sc_core::sc_time_stamp().value(), u0 = imp.stats().counterValue("unmap_ps");
    r = revokeImporters(p.driver->exporter());
    took = sc_core::sc_time_stamp().value() - t0;
    unmapPs = imp.stats().counterValue("unmap_ps") - u0;
  });
  sc_core::sc_start();
  const std::uint64_t cost = GpuDriverParams{}.rmapWalkPagePs;
  CHECK(moved == kPages);
  CHECK(buf == GpuPlatform::pattern(kBytes, 0x41));
  CHECK(r.pagesRevoked == kPages);
  CHECK(p.driver->exporter().stats().counterValue("revoke_clear_rounds") >= 1);
  CHECK(p.driver->exporter().stats().counterValue("rmap_walk_ps") == kPages * cost);
  CHECK(took == kPages * cost + unmapPs);  // the walk, then the peer's IOMMU invalidations
  CHECK(p.violations.ok());
}
