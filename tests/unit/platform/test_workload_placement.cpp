// Workload buffers placed in named process mappings (placement.h) beyond the camera chain: the
// GPU + NIC workloads' process buffers (gpu_monitor's counter in mode copy, gpu_stream_out's
// bounce results) and gpu_reduce's input, in hugetlb, shared, THP and file-private memory; the
// rules that refuse a wrong kind, a read-only mapping or a buffer that is device memory in this
// run, in the words the scenario parser also uses. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "models/cpu_mmu/vma.h"
#include "models/platform/camera_chain.h"
#include "models/platform/gpu_monitor.h"
#include "models/platform/gpu_reduce.h"
#include "models/platform/gpu_stream_out.h"
#include "tests/unit/devices/gpu_nic_platform.h"
#include "tests/unit/platform/mapping_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t k2M = 2ull << 20;
constexpr int kRw = PROT_READ | PROT_WRITE;

/// The GPU + NIC machine ("gpu1", "nic") with process proc0 holding: huge (2 MiB hugetlb),
/// shm (2 MiB shared anonymous), thp (2 MiB anon, MADV_HUGEPAGE), priv (2 MiB private tmpfile),
/// ro (2 MiB anon, PROT_READ).
PlatformDesc placedMachine() {
  PlatformDesc d = gpuNicMachine(smallGpu());
  ProcessDesc& p = d.processes.front();
  p.mm.hugetlbPages = 1;
  MappingDesc thp = mapping("thp", MapKind::Anon, k2M);
  thp.thp = true;
  MappingDesc ro = mapping("ro", MapKind::Anon, k2M);
  ro.prot = PROT_READ;
  p.memory = {mapping("huge", MapKind::Hugetlb, k2M), mapping("shm", MapKind::SharedAnon, k2M), thp,
              mapping("priv", MapKind::FilePrivate, k2M), ro};
  return d;
}

GpuReduceParams reduceParams(GpuReduceSource source, const std::string& mappingName) {
  GpuReduceParams r;
  r.gpu = "gpu1";
  r.process = "proc0";
  r.source = source;
  r.bytes = k2M;
  r.seed = 7;
  r.place = {{"buffer", mappingName}};
  return r;
}

/// Runs a GpuReduce to the end: the sum must be right and the checker clean.
void runReduce(Platform& p, GpuReduce& w) {
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(w.stats().counterValue("sum_correct") == 1);
  CHECK(w.storedSum() == w.expectedSum());
  CHECK(p.violations().ok());
}

}  // namespace

TEST_CASE("placement rules refuse a wrong kind, a read-only mapping and device memory with the fix") {
  GpuReduceParams r = reduceParams(GpuReduceSource::System, "");
  const PlaceableRegion sys = gpuReducePlaceable(r).front();
  CHECK(placementRefusal(sys, MapKind::Hugetlb, kRw, "").empty());
  CHECK(placementRefusal(sys, MapKind::FileShared, kRw, "").empty());
  CHECK(placementRefusal(sys, MapKind::DeviceFile, kRw, "gpu1") ==
        "with source system the buffer is process memory: place it in an anon, shared, file, file-private "
        "or hugetlb mapping");
  CHECK(placementRefusal(sys, MapKind::Anon, PROT_READ, "") ==
        "buffer needs prot: rw (the process fills it, gpu1 reads it); its mapping has prot: r");
  r.source = GpuReduceSource::Own;
  const PlaceableRegion own = gpuReducePlaceable(r).front();
  CHECK(placementRefusal(own, MapKind::Anon, kRw, "").empty());
  CHECK(placementRefusal(own, MapKind::FilePrivate, kRw, "").empty());
  CHECK(placementRefusal(own, MapKind::Hugetlb, kRw, "") ==
        "with source own the buffer migrates to gpu1's VRAM, and migrate_vma refuses hugetlb memory "
        "(EINVAL): place it in an anon (thp allowed) or file-private mapping (or take source: system)");
  CHECK_THAT(placementRefusal(own, MapKind::SharedAnon, kRw, ""),
             Catch::Contains("only anonymous pages migrate to device memory (the shmem and page-cache pages "
                             "of a shared mapping stay)"));
  const GpuVramLayout vram{0, 1ull << 30, 256ull << 20};  // 1 GiB, the top 256 MiB the driver's
  r.source = GpuReduceSource::PeerVram;  // anywhere in the peer's VRAM, read by the reducing GPU
  const PlaceableRegion peer = gpuReducePlaceable(r, vram).front();
  CHECK(placementRefusal(peer, MapKind::Anon, kRw, "") ==
        "with source peer_vram the buffer is gpu0's VRAM: place it in a mapping with kind: device-file, "
        "device: "
        "gpu0 (or take source: system)");
  CHECK(placementRefusal(peer, MapKind::DeviceFile, PROT_READ, "gpu0", 0).empty());
  CHECK(placementRefusal(peer, MapKind::DeviceFile, PROT_READ, "gpu0", (1ull << 30) - k2M).empty());
  CHECK_THAT(placementRefusal(peer, MapKind::DeviceFile, PROT_READ, "gpu0", (1ull << 30) - 4096),
             Catch::Contains("give the mapping offset: 0 (up to 1022MiB)"));
  GpuMonitorParams m;  // p2p: the counter's page after the kernel's 4 MiB region, at 772 MiB
  const PlaceableRegion counter = gpuMonitorPlaceable(m, vram).front();
  CHECK(placementRefusal(counter, MapKind::DeviceFile, PROT_READ, "gpu0", 772ull << 20).empty());
  CHECK(
      placementRefusal(counter, MapKind::DeviceFile, PROT_READ, "gpu0", 768ull << 20) ==
      "in mode p2p the counter is gpu0's VRAM: counter (4KiB) lies in the page of the kernel's progress "
      "counter, after its region (file offsets 772MiB to 790532KiB) and its mapping starts at offset 768MiB: "
      "give the mapping offset: 772MiB");
  CHECK_THAT(placementRefusal(counter, MapKind::Anon, kRw, ""),
             Catch::Contains("kind: device-file, device: gpu0 (or take mode: copy)"));
  m.mode = GpuMonitorMode::None;
  CHECK_THAT(placementRefusal(gpuMonitorPlaceable(m, vram).front(), MapKind::Anon, kRw, ""),
             Catch::Contains("in mode none there is no counter"));
  m.mode = GpuMonitorMode::Copy;
  CHECK(placementRefusal(gpuMonitorPlaceable(m, vram).front(), MapKind::Hugetlb, kRw, "").empty());
  GpuStreamOutParams s;  // p2p: results is VRAM in the kernel region
  const PlaceableRegion res = gpuStreamOutPlaceable(s, vram).front();
  CHECK(placementRefusal(res, MapKind::Anon, kRw, "") ==
        "on the p2p path results is gpu0's VRAM: place it in a mapping with kind: device-file, device: gpu0 "
        "(or take path: bounce)");
  CHECK(placementRefusal(res, MapKind::DeviceFile, PROT_READ, "gpu0", 768ull << 20).empty());
  CHECK(placementRefusal(res, MapKind::DeviceFile, PROT_READ, "gpu0", (1ull << 30) - s.bytes).empty());
  CHECK(placementRefusal(res, MapKind::DeviceFile, kRw, "gpu0", 0) ==
        "on the p2p path results is gpu0's VRAM: results (4MiB) lies in the GPU driver's kernel region (file "
        "offsets 768MiB to 1GiB) and its mapping starts at offset 0: give the mapping offset: 768MiB (up to "
        "1020MiB)");
  CHECK_THAT(placementRefusal(res, MapKind::DeviceFile, kRw, "gpu0", (1ull << 30) - s.bytes + 4096),
             Catch::Contains("starts at offset 1044484KiB"));
  s.path = GpuStreamPath::Bounce;
  CHECK(gpuStreamOutPlaceable(s, vram).front().bytes == s.bytes);
  CHECK(placementRefusal(gpuStreamOutPlaceable(s, vram).front(), MapKind::SharedAnon, kRw, "").empty());
  CameraChainParams c;  // p2p: frames_in is the engine's device file, that engine's only
  const PlaceableRegion in = cameraChainPlaceable(CameraParams{}, c).front();
  CHECK(placementRefusal(in, MapKind::DeviceFile, kRw, c.engine).empty());
  CHECK_THAT(placementRefusal(in, MapKind::DeviceFile, kRw, "colour9"),
             Catch::Contains("kind: device-file, device: " + c.engine + " (or take path: bounce)"));
}

TEST_CASE("gpu_reduce sums a buffer placed in a hugetlb mapping, read through the device MMU") {
  Platform p("m", placedMachine(), builtinDevices());
  GpuReduce w(p, reduceParams(GpuReduceSource::System, "huge"));
  CHECK(w.regions().front().start == p.mapping("proc0", "huge")->start);
  runReduce(p, w);
  Mm& mm = p.process("proc0");
  CHECK(mm.vmEvents().hugetlbFault.value() == 1);  // the process's fill faulted the one huge page
  CHECK(mm.hugetlbUsage() == 512);
  CHECK(w.stats().counterValue("migrated_pages") == 0);
}

TEST_CASE("gpu_reduce migrates a buffer placed in a file-private mapping to its own VRAM") {
  Platform p("m", placedMachine(), builtinDevices());
  GpuReduce w(p, reduceParams(GpuReduceSource::Own, "priv"));
  runReduce(p, w);
  // The fill wrote every page: each is an anonymous copy of the file's page, and those migrate.
  CHECK(w.stats().counterValue("migrated_pages") == 512);
  CHECK(p.process("proc0").mmStats().rssFile.value() == 0.0);
}

TEST_CASE("gpu_reduce migrates a THP-placed buffer to its own VRAM, splitting the huge page") {
  Platform p("m", placedMachine(), builtinDevices());
  GpuReduce w(p, reduceParams(GpuReduceSource::Own, "thp"));
  runReduce(p, w);
  Mm& mm = p.process("proc0");
  CHECK(mm.vmEvents().thpFaultAlloc.value() == 1);  // the fill's first write
  CHECK(mm.vmEvents().thpSplitPmd.value() == 1);    // migrate_vma splits it ("FIXME support THP")
  CHECK(w.stats().counterValue("migrated_pages") == 512);
}

TEST_CASE("gpu_stream_out bounces its results through a shared mapping, every byte correct") {
  Platform p("m", placedMachine(), builtinDevices());
  GpuStreamOutParams s;
  s.gpu = "gpu1";
  s.nic = "nic";
  s.process = "proc0";
  s.path = GpuStreamPath::Bounce;
  s.bytes = 1ull << 20;
  s.place = {{"results", "shm"}};
  GpuStreamOut w(p, s);
  CHECK(w.regions().front().start == p.mapping("proc0", "shm")->start);
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(workloadStat(p, w, "workload.bytes_correct") == double(s.bytes));
  CHECK(p.process("proc0").mmStats().rssShmem.value() == 256.0);  // 1 MiB of shmem pages, populated
  CHECK(p.violations().ok());
}

TEST_CASE("gpu_monitor copies its counter into a hugetlb page the NIC samples") {
  Platform p("m", placedMachine(), builtinDevices());
  GpuMonitorParams m;
  m.gpu = "gpu1";
  m.nic = "nic";
  m.process = "proc0";
  m.mode = GpuMonitorMode::Copy;
  m.samples = 4;
  m.totalBytes = 8ull << 20;
  m.place = {{"counter", "huge"}};
  GpuMonitor w(p, m);
  CHECK(w.regions().front().start == p.mapping("proc0", "huge")->start);
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(workloadStat(p, w, "workload.samples_held") == 4);
  CHECK(p.process("proc0").vmEvents().hugetlbFault.value() == 1);
  CHECK(p.violations().ok());
}

TEST_CASE("a workload refuses a placement its rules do not take before it maps anything") {
  Platform p("m", placedMachine(), builtinDevices());
  CHECK_THROWS_WITH(GpuReduce(p, reduceParams(GpuReduceSource::Own, "huge")),
                    Catch::Contains("migrate_vma refuses hugetlb memory"));
  CHECK_THROWS_WITH(GpuReduce(p, reduceParams(GpuReduceSource::System, "ro")),
                    Catch::Contains("buffer needs prot: rw"));
  GpuReduceParams r = reduceParams(GpuReduceSource::System, "huge");
  r.place = {{"bufer", "huge"}};
  CHECK_THROWS_WITH(GpuReduce(p, r),
                    Catch::Contains("no placeable region \"bufer\" (the workload's: buffer)"));
  GpuMonitorParams m;
  m.gpu = "gpu1";
  m.nic = "nic";
  m.process = "proc0";
  m.place = {{"counter", "huge"}};
  CHECK_THROWS_WITH(
      GpuMonitor(p, m),
      Catch::Contains("place it in a mapping with kind: device-file, device: gpu1 (or take mode: copy)"));
  CHECK(p.process("proc0").vmEvents().hugetlbFault.value() == 0);  // nothing was filled
}
