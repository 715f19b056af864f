// IOMMU invalidations contend between threads on the built platform (issue 12): the IOMMU runs
// its invalidation queue one submission after another, so when two processes unmap ranges two
// devices imported, at nearly the same time, the second unmap's IOTLB invalidations wait for the
// first's: together they take the sum of their times, not the longest. Two copies of the machine
// in one simulation get the same times. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/devices/common/importer_dma.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPages = 16, kLen = kPages * kPageSize;
constexpr std::uint64_t kUnmapAtPs = 100'000'000;  // 100 us: the devices' writes are done

/// hb0: rp0 -> sw0 -> gpu0, rp1 -> gpu2, the IOMMU translating (strict); processes p0 and p1.
PlatformDesc machine() {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0"});
  d.processes = {ProcessDesc{"p0", {}}, ProcessDesc{"p1", {}}};
  return d;
}

/// One machine: gpu0 imports 16 pages of p0, gpu2 16 pages of p1; each device writes its range
/// (faulting it in), then p0 munmaps its range at 100 us and p1 `lagPs` later.
struct Run {
  Run(const std::string& name, std::uint64_t lagPs) : p(name, machine(), builtinDevices()) {
    for (int i = 0; i < 2; ++i) {
      Mm& mm = p.process(i == 0 ? "p0" : "p1");
      const std::string dev = i == 0 ? "gpu0" : "gpu2";
      va[i] = mm.mmap(Va(0), kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
      HmmDmaImporter imp;
      imp.device = &p.pci(dev);
      imp.dma = &p.dma();
      dma[i] =
          std::make_unique<ImporterDma>(name + "_" + dev + "_dma", mm, imp, p.fabric().engine(dev), va[i],
                                        kPages, ImporterDmaParams{}, &p.checker(), &p.directory());
      devs.push_back(std::make_unique<QkThread>(
          (name + "_dev" + std::to_string(i)).c_str(), [this, i](tlm_utils::tlm_quantumkeeper& qk) {
            const std::vector<std::uint8_t> out(kLen, 0x3c);
            written[i] = dma[i]->write(va[i], kLen, out.data(), qk).ok();
          }));
      cpus.push_back(std::make_unique<QkThread>(
          (name + "_cpu" + std::to_string(i)).c_str(), [this, i, &mm, lagPs](tlm_utils::tlm_quantumkeeper&) {
            sc_core::wait(sc_core::sc_time::from_value(kUnmapAtPs + (i == 1 ? lagPs : 0)));
            const std::uint64_t t0 = sc_core::sc_time_stamp().value();
            unmapped[i] = mm.munmap(va[i], kLen);
            took[i] = sc_core::sc_time_stamp().value() - t0;
          }));
    }
  }
  ~Run() {
    for (auto& d : dma) d.reset();
  }

  Platform p;
  Va va[2];
  std::unique_ptr<ImporterDma> dma[2];
  std::vector<std::unique_ptr<QkThread>> devs, cpus;
  bool written[2] = {false, false};
  Errno unmapped[2] = {Errno::Inval, Errno::Inval};
  std::uint64_t took[2] = {0, 0};
};

}  // namespace

TEST_CASE("two processes' munmaps behind one IOMMU queue their IOTLB invalidations one after the other") {
  constexpr std::uint64_t kLagPs = 100'000;  // p1 unmaps 100 ns after p0
  Run a("a", kLagPs), b("b", kLagPs);
  sc_core::sc_start();
  const std::uint64_t tlb = ImporterMirrorParams{}.tlbInvalidationPs;           // 1 us, per device
  const std::uint64_t iotlb = a.p.iommu().params().iotlbInvalidationLatencyPs;  // 500 ns per page
  REQUIRE(tlb == 1'000'000);
  REQUIRE(iotlb == 500'000);
  for (Run* r : {&a, &b}) {
    CHECK(r->written[0]);
    CHECK(r->written[1]);
    CHECK(r->unmapped[0] == Errno::Ok);
    CHECK(r->unmapped[1] == Errno::Ok);
    // p0's unmap: the device TLB invalidation, then 16 strict dma_unmap_page invalidations.
    CHECK(r->took[0] == tlb + kPages * iotlb);
    // p1's device TLB invalidation runs beside p0's (another device), but its IOTLB
    // invalidations queue behind p0's: it ends 16 x 500 ns after p0's, not beside them.
    CHECK(r->took[1] == tlb + 2 * kPages * iotlb - kLagPs);
    CHECK(kUnmapAtPs + kLagPs + r->took[1] - kUnmapAtPs == tlb + 2 * kPages * iotlb);  // the sum
    CHECK(r->p.iommu().stats().counterValue("invalidation_queue_waits") == 1);
    CHECK(r->p.iommu().stats().counterValue("invalidation_queue_wait_ps") == kPages * iotlb - kLagPs);
    CHECK(r->dma[1]->stats().counterValue("unmap_ps") == 2 * kPages * iotlb - kLagPs);
    CHECK(r->p.violations().ok());
  }
  // Deterministic: the second copy of the machine took the same times.
  CHECK(a.took[0] == b.took[0]);
  CHECK(a.took[1] == b.took[1]);
}
