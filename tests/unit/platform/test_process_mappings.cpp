// Named process mappings on a Platform (ProcessDesc::memory) and a workload's buffers placed in
// them (CameraChainParams::place): the mappings' kinds and addresses, the camera chain
// pixel-exact with its frames in THP, hugetlb, shared-file and device-file memory, the huge pages
// it faulted, and placements that do not fit refused. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "models/cpu_mmu/vma.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/camera_chain.h"
#include "models/platform/platform.h"
#include "tests/unit/platform/camera_chain_desc.h"
#include "tests/unit/platform/mapping_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t k2M = 2ull << 20;

/// The small chain with process "app" holding: in_thp (2 MiB anon, MADV_HUGEPAGE), out_huge
/// (2 MiB hugetlb), out_file (2 MiB shared tmpfile), in_dev (1 MiB of the engine's file).
PlatformDesc placedDesc() {
  PlatformDesc d = smallChainDesc();
  ProcessDesc& app = d.processes.front();
  app.mm.hugetlbPages = 1;
  app.mm.hugetlbPages1G = 1;
  MappingDesc thp = mapping("in_thp", MapKind::Anon, k2M);
  thp.thp = true;
  MappingDesc dev = mapping("in_dev", MapKind::DeviceFile, 1ull << 20);
  dev.device = "colour0";
  MappingDesc gig = mapping("huge_1g", MapKind::Hugetlb, 1ull << 30);
  gig.hugePageBytes = 1ull << 30;
  app.memory = {thp, mapping("out_huge", MapKind::Hugetlb, k2M),
                mapping("out_file", MapKind::FileShared, k2M), dev, gig};
  return d;
}

/// Runs `c` on `p` to the end; every frame must be exact and the checker clean.
void runExact(Platform& p, CameraChain& chain) {
  chain.start();
  sc_core::sc_start();
  chain.finish();
  REQUIRE(chain.frames().size() == chain.params().frames);
  CHECK(chain.stats().counterValue("frames_exact") == chain.params().frames);
  CHECK(p.violations().ok());
}

}  // namespace

TEST_CASE("platform process mappings are made in order with their kinds and alignment") {
  Platform p("m", placedDesc(), builtinDevices());
  Mm& mm = p.process("app");
  const ProcessMapping* thp = p.mapping("app", "in_thp");
  const ProcessMapping* huge = p.mapping("app", "out_huge");
  const ProcessMapping* file = p.mapping("app", "out_file");
  const ProcessMapping* dev = p.mapping("app", "in_dev");
  REQUIRE((thp && huge && file && dev));
  CHECK(p.mapping("app", "nope") == nullptr);
  CHECK(p.mapping("other", "in_thp") == nullptr);
  CHECK(thp->start.value() % k2M == 0);   // thp_get_unmapped_area
  CHECK(huge->start.value() % k2M == 0);  // the hstate's alignment
  CHECK(huge->start < thp->start);        // top-down, in order
  CHECK(dev->kind == MapKind::DeviceFile);
  CHECK(dev->device == "colour0");
  CHECK((mm.findVma(thp->start)->vmFlags & VM_HUGEPAGE) != 0);
  CHECK((mm.findVma(huge->start)->vmFlags & VM_HUGETLB) != 0);
  const ProcessMapping* gig = p.mapping("app", "huge_1g");  // reserved from the 1 GiB pool, not faulted
  REQUIRE(gig);
  CHECK(gig->start.value() % (1ull << 30) == 0);
  CHECK(mm.findVma(gig->start)->vmHugetlbShift == 30);
  CHECK((mm.findVma(file->start)->vmFlags & VM_SHARED) != 0);
  CHECK((mm.findVma(dev->start)->vmFlags & (VM_IO | VM_PFNMAP)) != 0);  // the engine's special vma
}

TEST_CASE("the camera chain bounced through THP and hugetlb mappings is exact and faults huge pages") {
  Platform p("m", placedDesc(), builtinDevices());
  CameraChainParams c;
  c.frames = 3;
  c.path = CameraChainPath::Bounce;
  c.transform = *colourTransformPreset("vivid");
  c.place = {{"frames_in", "in_thp"}, {"frames_out", "out_huge"}};
  CameraChain chain(p, c);
  const std::vector<WorkloadRegion> regions = chain.regions();
  CHECK(regions[0].start == p.mapping("app", "in_thp")->start);
  CHECK(regions[1].start == p.mapping("app", "out_huge")->start);
  runExact(p, chain);
  Mm& mm = p.process("app");
  CHECK(mm.vmEvents().thpFaultAlloc.value() == 1);  // the camera's first write: one 2 MiB folio
  CHECK(mm.vmEvents().hugetlbFault.value() == 1);   // the engine's first write: the huge page
  CHECK(mm.hugetlbUsage() == 512);
}

TEST_CASE("the camera chain p2p into a device-file mapping and out to a shared file is exact") {
  Platform p("m", placedDesc(), builtinDevices());
  CameraChainParams c;
  c.frames = 3;
  c.transform = *colourTransformPreset("vivid");
  c.place = {{"frames_in", "in_dev"}, {"frames_out", "out_file"}};
  CameraChain chain(p, c);
  runExact(p, chain);
  CHECK(p.mapper().stats().counterValue("maps") > 0);  // the camera mapped the engine's memory
  const std::uint64_t outPages = 2 * ((256ull * 32 * 3 + 4095) / 4096);
  CHECK(p.process("app").mmStats().rssShmem.value() == double(outPages));
}

TEST_CASE("the camera chain refuses a placement its mapping cannot hold") {
  PlatformDesc d = placedDesc();
  d.processes.front().memory.push_back(mapping("tiny", MapKind::Anon, 16ull << 10));
  Platform p("m", d, builtinDevices());
  CameraChainParams c;  // each refusal comes before the chain maps or binds anything
  c.path = CameraChainPath::Bounce;
  c.place = {{"frames_out", "out_hug"}};
  CHECK_THROWS_WITH(CameraChain(p, c), Catch::Contains("no mapping \"out_hug\""));
  c.place = {{"frames_out", "tiny"}};  // two 24 KiB frames in 16 KiB
  CHECK_THROWS_WITH(CameraChain(p, c), Catch::Contains("frames_out needs 49152 bytes"));
  c.place = {{"frames_out", "in_dev"}};
  CHECK_THROWS_WITH(CameraChain(p, c), Catch::Contains("frames_out is process memory the engine writes: "
                                                       "place it in an anon, shared, file, file-private or "
                                                       "hugetlb mapping"));
  c.path = CameraChainPath::P2p;
  c.place = {{"frames_in", "out_file"}};
  CHECK_THROWS_WITH(CameraChain(p, c), Catch::Contains("kind: device-file, device: colour0"));
}
