// HostMemoryRequesters (whether host memory has served more than one PCIe requester) and the
// DMA engine's rule that uses it (PcieDmaEngine::syncOnSharedHostMemory).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <tlm_utils/simple_target_socket.h>

#include "models/pcie/host_memory_requesters.h"
#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE("host memory is shared from the second requester's first request on, for good") {
  HostMemoryRequesters r;
  CHECK_FALSE(r.shared());
  CHECK_FALSE(r.note(0x100));  // the first requester, again and again: not shared
  CHECK_FALSE(r.note(0x100));
  CHECK(r.note(0x200));  // a second one
  CHECK(r.shared());
  CHECK(r.note(0x100));  // and it stays so, whoever comes next
  CHECK(r.note(0x200));
}

TEST_CASE("requester 0 counts as a requester like any other") {
  HostMemoryRequesters r;
  CHECK_FALSE(r.note(0));
  CHECK_FALSE(r.note(0));
  CHECK(r.note(1));
}

namespace {

// Host memory's front end as the platform's MsiTarget is: notes each request's requester and
// tells the request whether memory is shared. Records (requester, SystemC time of the call).
class NotingMemory : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<NotingMemory> in{"in"};
  struct Seen {
    std::uint32_t requester;
    std::uint64_t nowPs;
  };
  std::vector<Seen> seen;

  explicit NotingMemory(sc_core::sc_module_name n) : sc_module(n) {
    in.register_b_transport(this, &NotingMemory::bTransport);
  }

 private:
  void bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
    PcieTlpExtension& e = pcieExt(gp);
    e.hostMemoryShared = requesters_.note(e.requesterKey);
    seen.push_back(Seen{e.requesterKey, sc_core::sc_time_stamp().value()});
    delay += sc_core::sc_time(100, sc_core::SC_NS);
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
  }
  HostMemoryRequesters requesters_;
};

// Engine A writes once, lets engine B write once (host memory is then shared), then writes
// eight 4 KiB bursts back to back under a 1 ms quantum. Returns, per burst of A's from the
// third on, issue time minus the SystemC time at which host memory saw it.
std::vector<std::uint64_t> runAhead(bool syncOnShared) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_MS));
  PcieLinkConfig c;
  c.gen = PcieGen::Gen3;
  c.lanes = 8;
  PcieFabric fab("fab");
  PcieMemoryTargetParams window;
  window.baseAddr = 0;
  window.sizeBytes = 1ull << 30;
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, window, true);
  PcieLinkParams l;
  l.config = c;
  PcieDmaEngineParams d;
  d.link = c;
  d.fidelity = PcieFidelity::PerBurst;
  d.timingOnly = true;
  d.requester = bdf(1);
  const auto a = fab.addEndpoint("a", r, l, d);
  d.requester = bdf(2);
  const auto b = fab.addEndpoint("b", r, l, d);
  fab.finalize();
  NotingMemory mem("mem");
  fab.rootComplex(r).memOut.bind(mem.in);
  PcieDmaEngine& ea = fab.engine(a);
  ea.syncOnSharedHostMemory(syncOnShared);
  std::vector<std::uint64_t> issued;
  ea.setBurstObserver([&](const DmaBurstRecord& rec) { issued.push_back(rec.issuePs); });
  QkThread ta("ta", [&](tlm_utils::tlm_quantumkeeper& qk) {
    ea.issueWrite(0x1000, 4096, nullptr, qk);
    qk.sync();  // B writes meanwhile
    for (int i = 0; i < 8; ++i) ea.issueWrite(0x10'0000 + i * 4096, 4096, nullptr, qk);
  });
  QkThread tb("tb",
              [&](tlm_utils::tlm_quantumkeeper& qk) { fab.engine(b).issueWrite(0x2000, 64, nullptr, qk); });
  sc_core::sc_start();
  std::vector<std::uint64_t> ahead;
  std::size_t i = 0;
  for (const NotingMemory::Seen& s : mem.seen) {
    if (s.requester != bdf(1).key()) continue;
    if (i >= 2) ahead.push_back(issued.at(i) - s.nowPs);
    ++i;
  }
  CHECK(i == 9);
  return ahead;
}

}  // namespace

TEST_CASE("an engine syncing on shared host memory issues each burst at synchronised time") {
  const std::vector<std::uint64_t> ahead = runAhead(true);
  REQUIRE(ahead.size() == 7);
  for (const std::uint64_t a : ahead) CHECK(a == 0);
}

TEST_CASE("an engine not syncing on shared host memory runs ahead of SystemC time") {
  const std::vector<std::uint64_t> ahead = runAhead(false);
  REQUIRE(ahead.size() == 7);
  CHECK(ahead.back() > 0);  // the control: bursts issued back to back ahead of SystemC time
}
