// The GPU alone (models/devices/gpu): VRAM registration, migration to VRAM and back with real
// bytes and copy-engine timing, the compute engine's pace against its parameters. Assertions
// after sc_start().
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/pcie/dma_engine.h"
#include "sim/trace.h"
#include "tests/unit/devices/gpu_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE("gpu: 16 GiB of VRAM cost nothing until used, and migration to VRAM and back is byte-exact",
          "[devices][gpu]") {
  GpuParams gp;  // the defaults: 16 GiB of VRAM, a 256 MiB BAR
  GpuDriverParams dp;
  GpuPlatform p(gp, dp);
  CHECK(p.pm.dataPages() == 0);  // every VRAM frame is registered, none holds bytes
  CHECK(p.driver->devmem().freePages() == (gp.vramBytes - dp.kernelRegionBytes) / kGpuP);
  constexpr std::uint64_t kPages = 64;
  const Va a = p.mapAnon(kPages * kGpuP);
  p.fill(a, kPages * kGpuP, 0x51);
  const std::uint64_t ramPages = p.pm.dataPages();
  std::uint64_t moved = 0, back = 0;
  Errno toVram = Errno::Inval, toRam = Errno::Inval;
  std::uint64_t migratedAtPs = 0;
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toVram = p.driver->migrateToVram(*p.mm, a, a + kPages * kGpuP, &qk, &moved);
    migratedAtPs = sc_core::sc_time_stamp().value();
    // Half of it back explicitly; the CPU faults the other half back below.
    toRam = p.driver->migrateToRam(*p.mm, a, a + kPages / 2 * kGpuP, &qk, &back);
  });
  sc_core::sc_start();
  CHECK(toVram == Errno::Ok);
  CHECK(moved == kPages);
  CHECK(toRam == Errno::Ok);
  CHECK(back == kPages / 2);
  CHECK(p.driver->devmem().allocatedPages() == kPages / 2);
  CHECK(p.gpu.stats().counterValue("copy_bytes_to_vram") == kPages * kGpuP);
  CHECK(p.gpu.stats().counterValue("copy_bytes_from_vram") == kPages / 2 * kGpuP);
  // The copy engine's DMA read of 256 KiB over Gen4 x16 (< 32 GB/s) took at least 8 us.
  CHECK(migratedAtPs >= kPages * kGpuP * 1000 / 32);
  // The migrated bytes were in VRAM frames (PhysMem data pages at the VRAM address).
  CHECK(p.pm.dataPages() >= ramPages + kPages / 2);
  // CPU reads fault the rest back (migrate_to_ram) and see every byte.
  CHECK(p.cpu(a, kPages * kGpuP) == GpuPlatform::pattern(kPages * kGpuP, 0x51));
  CHECK(p.driver->stats().counterValue("migrate_to_ram_faults") == kPages / 2);
  CHECK(p.driver->devmem().allocatedPages() == 0);
  CHECK(p.violations.ok());
}

TEST_CASE("gpu: a traced driver shows each migrate_vma as a slice with the pages it moved",
          "[devices][gpu]") {
  GpuPlatform p(GpuParams{}, GpuDriverParams{});
  TraceSink trace;
  trace.enable(TraceCategory::HmmMigrate);
  p.gpu.dmaEngine().setTimelineTrace(&trace);
  constexpr std::uint64_t kPages = 16;
  const Va a = p.mapAnon(kPages * kGpuP);
  p.fill(a, kPages * kGpuP, 0x33);
  std::uint64_t toVramDone = 0, toRamDone = 0;
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    p.driver->migrateToVram(*p.mm, a, a + kPages * kGpuP, &qk);
    toVramDone = (sc_core::sc_time_stamp() + qk.get_local_time()).value();
    p.driver->migrateToRam(*p.mm, a, a + kPages * kGpuP, &qk);
    toRamDone = (sc_core::sc_time_stamp() + qk.get_local_time()).value();
  });
  sc_core::sc_start();
  const nlohmann::json j = nlohmann::json::parse(trace.toJson());
  std::vector<nlohmann::json> slices;
  std::string track;
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "X")
      slices.push_back(e);
    else if (e["ph"] == "M")
      track = e["args"]["name"];
  CHECK(track.rfind(".migrate") == track.size() - 8);
  REQUIRE(slices.size() == 2);
  CHECK(slices[0]["name"] == "migrate to VRAM");
  CHECK(slices[1]["name"] == "migrate to RAM");
  CHECK(slices[0]["args"]["detail"].get<std::string>().find(": 16 pages moved, OK") != std::string::npos);
  // Each slice spans the copy it charged: to VRAM ends when the caller's time does.
  CHECK(slices[0]["ts"].get<double>() == 0);
  CHECK(slices[0]["dur"].get<double>() == Approx(double(toVramDone) / 1e6));
  CHECK(slices[1]["ts"].get<double>() + slices[1]["dur"].get<double>() == Approx(double(toRamDone) / 1e6));
  CHECK(slices[0]["dur"].get<double>() > 0);
}

namespace {

// One kernel of 64 MiB over a 16 MiB region with nothing else on VRAM.
void computeAlone(double share) {
  GpuParams gp = smallGpu();
  gp.computeShare = share;
  GpuPlatform p(gp);
  GpuKernel k;
  k.regionOffset = p.driver->kernelRegionOffset();
  k.regionBytes = 16ull << 20;
  k.totalBytes = 64ull << 20;
  k.progressOffset = k.regionOffset + k.regionBytes;
  std::vector<std::uint64_t> seen;
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper&) {
    p.gpu.launch(k);
    sc_core::wait(sc_core::sc_time(100, sc_core::SC_US));
    seen.push_back(p.gpu.progress());
    sc_core::wait(p.gpu.computeDone());
  });
  sc_core::sc_start();
  // Read + write of every byte at share x 64 GB/s.
  const double expectedPs = 2.0 * double(k.totalBytes) * 8000.0 / (share * gp.vramGbps());
  const double got = double(p.gpu.kernelEndPs() - p.gpu.kernelStartPs());
  INFO("kernel took " << got << " ps, expected " << expectedPs);
  CHECK(std::abs(got / expectedPs - 1.0) < 0.01);
  CHECK(p.gpu.progress() == k.totalBytes);
  REQUIRE(seen.size() == 1);
  // After 100 us the counter had moved by 100 us worth of the pace (chunks retire when their
  // last byte is done: within two chunks).
  const double expectedAt100 = 100e6 / expectedPs * double(k.totalBytes);
  CHECK(std::abs(double(seen[0]) - expectedAt100) <= 2.0 * double(gp.computeChunkBytes));
  CHECK(p.gpu.stats().counterValue("compute_stall_ps") == 0);
  CHECK(p.gpu.bar().stats().counterValue("local_bytes") == 2 * k.totalBytes);
}

}  // namespace

TEST_CASE(
    "gpu: the compute engine streams VRAM at half of VRAM bandwidth (within 1 %) and counts its "
    "progress in VRAM",
    "[devices][gpu][timing]") {
  computeAlone(0.5);
}

TEST_CASE("gpu: the compute engine at its full share streams VRAM at VRAM bandwidth (within 1 %)",
          "[devices][gpu][timing]") {
  computeAlone(1.0);
}

TEST_CASE("gpu: a CPU thread faulting a VRAM page back waits for the copy engine's PCIe + VRAM copy",
          "[devices][gpu]") {
  GpuPlatform p;
  constexpr std::uint64_t kPages = 16;
  const Va a = p.mapAnon(kPages * kGpuP);
  p.fill(a, kPages * kGpuP, 0x23);
  std::uint64_t faultsTook = 0, moved = 0, faultErrors = 0;
  std::uint64_t fromVramBefore = 0;
  Errno toVram = Errno::Inval;
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toVram = p.driver->migrateToVram(*p.mm, a, a + kPages * kGpuP, &qk, &moved);
    qk.sync();
    fromVramBefore = p.gpu.stats().counterValue("copy_bytes_from_vram");
    const std::uint64_t t0 = sc_core::sc_time_stamp().value();
    // The CPU's read faults migrate_to_ram each page, one at a time (as CpuCore's would).
    for (std::uint64_t i = 0; i < kPages; ++i)
      faultErrors += isFaultError(handleUserFault(*p.mm, a + i * kGpuP, false));
    faultsTook = sc_core::sc_time_stamp().value() - t0;
  });
  sc_core::sc_start();
  CHECK(toVram == Errno::Ok);
  CHECK(faultErrors == 0);
  CHECK(moved == kPages);
  CHECK(p.driver->stats().counterValue("migrate_to_ram_faults") == kPages);
  // Each fault's copy ran on the copy engine: VRAM -> host over PCIe Gen4 x16 (< 32 GB/s).
  CHECK(p.gpu.stats().counterValue("copy_bytes_from_vram") - fromVramBefore == kPages * kGpuP);
  CHECK(faultsTook >= kPages * kGpuP * 1000 / 32);
  CHECK(p.driver->copier().pendingPs() == 0);  // nothing left uncharged in the pure core
  CHECK(p.cpu(a, kPages * kGpuP) == GpuPlatform::pattern(kPages * kGpuP, 0x23));
  CHECK(p.violations.ok());
}

TEST_CASE("gpu: a migration beside a copy to user memory on the copy engine keeps both copies' bytes",
          "[devices][gpu]") {
  // Two threads use the copy engine at once: each copy's DMA may wait, so each needs its own
  // staging bytes (a shared buffer sent one copy's bytes as the other's).
  GpuPlatform p;
  constexpr std::uint64_t kPages = 64, kLen = kPages * kGpuP;
  const Va a = p.mapAnon(kLen), b = p.mapAnon(kLen);
  p.fill(a, kLen, 0x51);
  p.fill(b, kLen, 0x11);
  const std::uint64_t vramOff = p.driver->kernelRegionOffset();
  const std::vector<std::uint8_t> results = GpuPlatform::pattern(kLen, 0x77);
  p.pm.write(p.gpu.params().vramPa + vramOff, results.data(), kLen);
  Errno mig = Errno::Inval, copied = Errno::Inval;
  std::uint64_t moved = 0, copyDonePs = 0, migStartPs = 0;
  // The copy reads VRAM (256 KiB at 64 GB/s: 4 us, beyond the 1 us quantum), then waits before
  // its PCIe write; the migration's PCIe read (at 500 ns) lands in that wait.
  QkThread copier("copier", [&](tlm_utils::tlm_quantumkeeper& qk) {
    copied = p.driver->copyVramToUser(*p.mm, b, vramOff, kLen, qk);
    copyDonePs = sc_core::sc_time_stamp().value();
  });
  QkThread migrator("migrator", [&](tlm_utils::tlm_quantumkeeper& qk) {
    sc_core::wait(sc_core::sc_time(500, sc_core::SC_NS));
    migStartPs = sc_core::sc_time_stamp().value();
    mig = p.driver->migrateToVram(*p.mm, a, a + kLen, &qk, &moved);
  });
  sc_core::sc_start();
  CHECK(mig == Errno::Ok);
  CHECK(moved == kPages);
  CHECK(copied == Errno::Ok);
  CHECK(copyDonePs > migStartPs);  // the migration started during the copy
  CHECK(p.cpu(b, kLen) == results);
  // The migrated pages' VRAM bytes (a CPU read faults them back) are the process's.
  CHECK(p.cpu(a, kLen) == GpuPlatform::pattern(kLen, 0x51));
  CHECK(p.violations.ok());
}
