// Randomized stress of the address-space operations across a fork family (mm_stress.h), with
// the whole-system audit after every step.

#include <catch2/catch.hpp>

#include "tests/unit/cpu_mmu/mm_stress.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE(
    "random address-space operations across a fork family keep frames, counters and chains consistent") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    PhysMem pm(Stress::ram());
    Stress s(pm, seed);
    runAudited(s, seed, 1500);
    // The run exercised what it is meant to: COW views compared after forks.
    CHECK(s.forks > 3);
    CHECK(s.verifiedBytes > 500);
  }
}

TEST_CASE("the mm audit reports a frame whose mapcount disagrees with the page tables") {
  PhysMemParams pp;
  pp.ramSize = 64ull << 20;
  PhysMem pm(pp);
  Mm mm(pm, "audited");
  const VaResult r = mm.mmap(Va(0), 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  const std::uint64_t v = 1;
  REQUIRE(copyToUser(mm, r.addr, &v, sizeof v) == Errno::Ok);
  CHECK(test::auditMms(pm, {&mm}).empty());
  const Pfn pfn = mm.pageTable().lookup(r.addr).pte.pfn();
  ++pm.frame(pfn).mapcount;
  const auto problems = test::auditMms(pm, {&mm});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("mapcount 2 but 1 PTE mappings") != std::string::npos);
  --pm.frame(pfn).mapcount;
  mm.addMmCounter(MmCounter::AnonPages, 1);
  CHECK_FALSE(test::auditMms(pm, {&mm}).empty());
  mm.addMmCounter(MmCounter::AnonPages, -1);
  mm.exitMmap();
}
