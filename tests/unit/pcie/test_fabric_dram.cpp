// The fabric's root complex driving the cpu_mmu DRAM model (PhysMem-backed) instead of the
// fabric's own memory target.
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/phys_mem.h"
#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

PcieLinkConfig gen3x8() {
  PcieLinkConfig c;
  c.gen = PcieGen::Gen3;
  c.lanes = 8;
  return c;
}

struct Host {
  Host() : mem(ramParams()), dram("dram", DramParams{}, mem) {}
  static PhysMemParams ramParams() {
    PhysMemParams p;
    p.ramSize = 1ull << 30;
    return p;
  }
  PhysMem mem;
  Dram dram;
};

PcieMemoryTargetParams window() {
  PcieMemoryTargetParams w;
  w.baseAddr = 0;
  w.sizeBytes = 1ull << 30;
  return w;
}

}  // namespace

TEST_CASE("DMA through the fabric into the cpu_mmu DRAM model stores bytes that read back") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  Host host;
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, window(), true);
  PcieLinkParams l;
  l.config = c;
  PcieDmaEngineParams d;
  d.requester = bdf(1);
  d.link = c;
  const auto e = fab.addEndpoint("ep", r, l, d);
  fab.finalize();
  fab.rootComplex(r).memOut.bind(host.dram.tSocket);
  std::vector<std::uint8_t> out(3000), in(3000, 0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i ^ 0x5a);
  CplStatus ws = CplStatus::CompleterAbort, rs = CplStatus::CompleterAbort;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    ws = fab.engine(e).write(0x20'0100, out.size(), out.data(), qk);
    rs = fab.engine(e).read(0x20'0100, in.size(), in.data(), qk);
  });
  sc_core::sc_start();
  CHECK(ws == CplStatus::SuccessfulCompletion);
  CHECK(rs == CplStatus::SuccessfulCompletion);
  CHECK(in == out);
  CHECK(host.dram.stats().counterValue("bytes_written") == 3000);
}

TEST_CASE("a write stream into the cpu_mmu DRAM model still runs at the link's model rate") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_US));
  Host host;
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, window(), true);
  PcieLinkParams l;
  l.config = c;
  PcieDmaEngineParams d;
  d.requester = bdf(1);
  d.link = c;
  const auto e = fab.addEndpoint("ep", r, l, d);
  fab.finalize();
  fab.rootComplex(r).memOut.bind(host.dram.tSocket);
  StreamDriver s("s", fab.engine(e), StreamOp::Write, 0x10'0000, 1500, 4096, 200);
  sc_core::sc_start();
  CHECK(relErr(s.writeGbps(), writeEffectiveGbps(c, 1500)) < 0.005);
}
