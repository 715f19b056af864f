// The GPU built by the platform (type "gpu" through the DeviceRegistry): VRAM re-timed at the
// endpoint's BAR target, migration to VRAM, a peer (gpu0 through ImporterDma) reading the GPU's
// device-private pages p2p through the BAR with every byte right and the checker clean.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/gpu_fixture.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE("built by the platform: a GPU's device-private pages are read p2p by a peer, byte-exact",
          "[devices][gpu][platform]") {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0", "gpu1"});
  d.processes = {ProcessDesc{"proc0", {}}};
  GpuDeviceParams gp;
  gp.gpu = smallGpu();
  gp.driver = smallGpuDriver();
  d.devices = {DeviceDesc{"gpu", "gpu1", "gpu1", gp}};
  // The fabric makes every BAR target with its default memory timing; the GPU re-times its own.
  REQUIRE(d.fabric.barMemory.bandwidthGbps * d.fabric.barMemory.channels != gp.gpu.vramGbps());
  Platform p("m", d, builtinDevices());
  GpuPlatformDevice& g = p.deviceAs<GpuPlatformDevice>("gpu1");
  CHECK(&g.gpu().bar() == &p.fabric().barMemory("gpu1"));
  CHECK(g.gpu().bar().totalGbps() == gp.gpu.vramGbps());  // the BAR target is VRAM now
  CHECK(g.gpu().bar().params().latencyPs == gp.gpu.vramLatencyPs);
  CHECK(g.gpu().bar().params().sizeBytes == p.pci("gpu1").bar(2).size);  // the aperture enumeration gave
  CHECK(p.fabric().barMemory("gpu0").totalGbps() != gp.gpu.vramGbps());  // a peer's BAR keeps its own
  Mm& mm = p.process("proc0");
  constexpr std::uint64_t kBytes = 64 * kGpuP;
  const VaResult map = mm.mmap(Va(0), kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(map.ok());
  const Va a = map.addr;
  const std::vector<std::uint8_t> pat = GpuPlatform::pattern(kBytes, 0x44);
  REQUIRE(copyToUser(mm, a, pat.data(), kBytes) == Errno::Ok);
  HmmDmaImporter imp;
  imp.device = &p.pci("gpu0");
  imp.dma = &p.dma();
  ImporterDma peer("gpu0.dma", mm, imp, p.fabric().engine("gpu0"), a, kBytes / kGpuP, ImporterDmaParams{},
                   &p.checker(), &p.directory());
  std::uint64_t moved = 0;
  bool ok = false;
  std::vector<std::uint8_t> got(kBytes);
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    g.driver().migrateToVram(mm, a, a + kBytes, &qk, &moved);
    ok = peer.read(a, kBytes, got.data(), qk).ok();
  });
  sc_core::sc_start();
  CHECK(moved == kBytes / kGpuP);
  CHECK(ok);
  CHECK(got == pat);
  CHECK(g.driver().exporter().stats().counterValue("devmem_p2p_pages") == kBytes / kGpuP);
  CHECK(p.directory().checkedPages() > 0);
  CHECK(p.violations().ok());
}

TEST_CASE("two platforms each with GPUs gpu0 and gpu1 draw no SystemC duplicate name",
          "[devices][gpu][platform]") {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0", "gpu1"});
  d.processes = {ProcessDesc{"proc0", {}}};
  GpuDeviceParams gp;
  gp.gpu = smallGpu();
  gp.driver = smallGpuDriver();
  GpuDeviceParams gp1 = gp;
  gp1.gpu.vramPa = gp.gpu.vramPa + gp.gpu.vramBytes;  // its VRAM after gpu0's
  d.devices = {DeviceDesc{"gpu", "gpu0", "gpu0", gp}, DeviceDesc{"gpu", "gpu1", "gpu1", gp1}};
  const int before = sc_core::sc_report_handler::get_count(sc_core::SC_ID_INSTANCE_EXISTS_);
  Platform a("a", d, builtinDevices());
  Platform b("b", d, builtinDevices());
  // SystemC renames a second object of a name ("gpu0_0") after warning W505; none may be needed.
  CHECK(sc_core::sc_report_handler::get_count(sc_core::SC_ID_INSTANCE_EXISTS_) == before);
  CHECK(std::string(a.deviceAs<GpuPlatformDevice>("gpu0").gpu().name()) == "a_gpu0");
  CHECK(std::string(a.deviceAs<GpuPlatformDevice>("gpu1").gpu().name()) == "a_gpu1");
  CHECK(std::string(b.deviceAs<GpuPlatformDevice>("gpu0").gpu().name()) == "b_gpu0");
  CHECK(a.deviceAs<GpuPlatformDevice>("gpu0").name() == "gpu0");  // the device keeps its name
}
