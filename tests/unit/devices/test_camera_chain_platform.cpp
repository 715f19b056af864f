// The camera chain on the platform builder (models/platform/): the machine from a PlatformDesc,
// the camera and the colour engine created by type name, completions delivered as MSIs to a CPU
// driver thread whose handler queues the next stage. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <string>

#include "models/devices/camera/camera_platform.h"
#include "models/devices/colour_engine/colour_engine_platform.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/camera_chain_fixture.h"
#include "tests/unit/platform/camera_chain_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE(
    "on the platform builder, camera -> colour engine -> memory p2p runs from MSI to MSI, every frame "
    "pixel-exact") {
  constexpr unsigned kFrames = 3;
  CameraParams sensor;
  sensor.width = 640;
  sensor.height = 48;
  sensor.hblankPixels = 160;
  sensor.vblankLines = 12;
  sensor.fps = 120;
  sensor.seed = 5;
  const PlatformDesc d = cameraChainDesc(sensor, "proc0");
  Platform p("m", d, builtinDevices());
  auto& camera = p.deviceAs<CameraPlatformDevice>("cam0");
  auto& colour = p.deviceAs<ColourEnginePlatformDevice>("colour0");
  Mm& mm = p.process("proc0");

  const CameraParams& cp = sensor;
  const std::uint64_t slot = pageRound(cp.frameBytes());
  constexpr std::uint64_t kArena = 16ull << 20;
  const VaResult arena = mm.mmap(Va(0), kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(arena.ok());
  REQUIRE(colour.driver().bindAddressSpace(mm, arena.addr, kArena) == Errno::Ok);
  std::shared_ptr<File> file = colour.driver().openFile();
  const VaResult in =
      mm.mmap(arena.addr, 2 * slot, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file, 0);  // special vma
  REQUIRE(in.ok());
  std::vector<Va> out;
  for (unsigned n = 0; n < kFrames; ++n) out.push_back(arena.addr + 2 * slot + n * slot);
  REQUIRE(camera.driver().setUserBuffers(mm, {in.addr, in.addr + slot}) == Errno::Ok);
  const ColourTransform t = testTransform();
  colour.driver().setTransform(t);

  std::vector<std::uint64_t> frameIrq, jobIrq;
  // The camera's interrupt handler queues the frame on the engine; the engine's records its end.
  camera.onFrame([&](const CameraCompletion& c) {
    frameIrq.push_back(sc_core::sc_time_stamp().value());
    ColourRequest q;
    q.srcLocal = true;
    q.srcOffset = c.buffer * slot;
    q.dstVa = out[c.frame];
    q.width = cp.width;
    q.height = cp.height;
    q.tag = c.frame;
    REQUIRE(colour.driver().process(q) == Errno::Ok);
  });
  colour.onJob([&](const ColourCompletion&) { jobIrq.push_back(sc_core::sc_time_stamp().value()); });
  camera.driver().start(kFrames);
  sc_core::sc_start();

  REQUIRE(frameIrq.size() == kFrames);
  REQUIRE(jobIrq.size() == kFrames);
  const std::uint64_t entry = d.interrupts.entryLatencyPs;
  for (unsigned n = 0; n < kFrames; ++n) {
    INFO("frame " << n);
    std::vector<std::uint8_t> bytes(cp.frameBytes());
    REQUIRE(copyFromUser(mm, bytes.data(), out[n], bytes.size()) == Errno::Ok);
    CHECK(firstMismatch(bytes, cp.format, cp.width, cp.height, [&](std::uint32_t x, std::uint32_t y) {
            return referenceTransform(t, cameraPatternPixel(cp.seed, n, x, y));
          }) == -1);
    // Each handler ran after its device's last byte, the MSI's trip and the interrupt entry.
    CHECK(frameIrq[n] >= camera.hardware().completions()[n].donePs + entry);
    CHECK(jobIrq[n] >= colour.hardware().completions()[n].donePs + entry);
    CHECK(colour.hardware().completions()[n].startPs >= frameIrq[n]);
  }
  CHECK(camera.interrupts() == kFrames);
  CHECK(colour.interrupts() == kFrames);
  CHECK(p.fabric().rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);
  CHECK(colour.driver().exporter().stats().counterValue("vma_p2p_pages") > 0);
  CHECK(p.violations().ok());
}

TEST_CASE(
    "two platforms each with cam0 and colour0 draw no SystemC duplicate name, drivers keep device names",
    "[devices][camera][colour][platform]") {
  const PlatformDesc d = smallChainDesc();
  const int before = sc_core::sc_report_handler::get_count(sc_core::SC_ID_INSTANCE_EXISTS_);
  Platform a("a", d, builtinDevices());
  Platform b("b", d, builtinDevices());
  // SystemC renames a second object of a name ("cam0_0") after warning W505; none may be needed.
  CHECK(sc_core::sc_report_handler::get_count(sc_core::SC_ID_INSTANCE_EXISTS_) == before);
  auto& colour = b.deviceAs<ColourEnginePlatformDevice>("colour0");
  auto& camera = b.deviceAs<CameraPlatformDevice>("cam0");
  CHECK(std::string(a.deviceAs<CameraPlatformDevice>("cam0").hardware().name()) == "a_cam0");
  CHECK(std::string(camera.hardware().name()) == "b_cam0");
  CHECK(std::string(colour.hardware().name()) == "b_colour0");
  // What the user sees keeps the device's name: the exporter, the device file, the importers.
  CHECK(colour.driver().exporter().stats().name() == "colour0.p2p");
  CHECK(colour.driver().openFile()->inode().name() == "/dev/colour0");
  Mm& mm = b.process("app");
  constexpr std::uint64_t kArena = 4ull << 20;
  const VaResult arena = mm.mmap(Va(0), kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(arena.ok());
  REQUIRE(colour.driver().bindAddressSpace(mm, arena.addr, kArena) == Errno::Ok);
  CHECK(colour.driver().importerDma()->stats().name() == "colour0.dma");
  REQUIRE(camera.driver().setUserBuffers(mm, {arena.addr}) == Errno::Ok);
  CHECK(camera.driver().importerDma()->stats().name() == "cam0.dma");
}
