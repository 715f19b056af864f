// Data movement, routing, peer-to-peer forwarding and the root complex's translation hook.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/pcie/translation_stage.h"
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

PcieLinkParams linkParams(const PcieLinkConfig& c) {
  PcieLinkParams l;
  l.config = c;
  return l;
}

PcieDmaEngineParams dmaParams(std::uint8_t bus, const PcieLinkConfig& c) {
  PcieDmaEngineParams d;
  d.requester = bdf(bus);
  d.link = c;
  return d;
}

PcieMemoryTargetParams bar(std::uint64_t base, bool store = false) {
  PcieMemoryTargetParams m;
  m.baseAddr = base;
  m.sizeBytes = 256ull << 20;
  m.latencyPs = 50'000;
  m.bandwidthGbps = 4000;
  m.storeData = store;
  return m;
}

constexpr std::uint64_t kBarA = 0x80'0000'0000;
constexpr std::uint64_t kBarB = 0x90'0000'0000;

/// A stage that adds a fixed latency, refuses one page and remaps another.
class TestStage : public PcieTranslationStage {
 public:
  UpstreamTranslation translateUpstream(Bdf requester, std::uint64_t busAddr, std::uint64_t, bool, bool,
                                        std::uint64_t) override {
    ++calls;
    lastRequester = requester;
    UpstreamTranslation t;
    t.latencyPs = 300'000;
    t.addr = busAddr;
    if (busAddr >= 0xDEAD000 && busAddr < 0xDEAE000) t.status = CplStatus::UnsupportedRequest;
    if (busAddr >= 0x5000000 && busAddr < 0x5001000) t.addr = kBarB + (busAddr - 0x5000000);
    return t;
  }
  int calls = 0;
  Bdf lastRequester;
};

}  // namespace

TEST_CASE("DMA write data lands in host memory and a DMA read returns it") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  auto mem = hostMemory();
  mem.storeData = true;
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, mem);
  const auto sw = fab.addSwitch("sw", r, linkParams(c), PcieSwitchParams{});
  const auto e = fab.addEndpoint("ep", sw, linkParams(c), dmaParams(1, c));
  fab.finalize();
  std::vector<std::uint8_t> out(5000), in(5000, 0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i * 7 + 3);
  CplStatus ws = CplStatus::CompleterAbort, rs = CplStatus::CompleterAbort;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    ws = fab.engine(e).write(0x10F30, out.size(), out.data(), qk);  // crosses 4 KiB boundaries
    rs = fab.engine(e).read(0x10F30, in.size(), in.data(), qk);
  });
  sc_core::sc_start();
  CHECK(ws == CplStatus::SuccessfulCompletion);
  CHECK(rs == CplStatus::SuccessfulCompletion);
  CHECK(in == out);
  std::vector<std::uint8_t> back(out.size());
  fab.memory(r).peek(0x10F30, back.data(), back.size());
  CHECK(back == out);
}

TEST_CASE("a DMA to an address no target claims completes with Unsupported Request") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto e = fab.addEndpoint("ep", r, linkParams(c), dmaParams(1, c));
  fab.finalize();
  CplStatus ws = CplStatus::SuccessfulCompletion, rs = CplStatus::SuccessfulCompletion;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    ws = fab.engine(e).write(0xF0'0000'0000, 64, nullptr, qk);
    rs = fab.engine(e).read(0xF0'0000'0000, 64, nullptr, qk);
  });
  sc_core::sc_start();
  CHECK(ws == CplStatus::UnsupportedRequest);
  CHECK(rs == CplStatus::UnsupportedRequest);
  CHECK(fab.engine(e).stats().counterValue("failed_bursts") == 2);
}

TEST_CASE("a peer-to-peer write between endpoints under one switch does not reach the root complex") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto sw = fab.addSwitch("sw", r, linkParams(c), PcieSwitchParams{});
  const auto a = fab.addEndpoint("a", sw, linkParams(c), dmaParams(1, c), bar(kBarA));
  const auto b = fab.addEndpoint("b", sw, linkParams(c), dmaParams(2, c), bar(kBarB, true));
  fab.finalize();
  std::vector<std::uint8_t> data(1024, 0x5A);
  CplStatus st = CplStatus::CompleterAbort;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    st = fab.engine(a).write(kBarB + 0x1000, data.size(), data.data(), qk);
  });
  sc_core::sc_start();
  CHECK(st == CplStatus::SuccessfulCompletion);
  CHECK(fab.memory(b).stats().counterValue("bytes_written") == 1024);
  CHECK(fab.uplink(sw).stats().counterValue("up_tlps") == 0);
  CHECK(fab.rootComplex(r).stats().counterValue("p2p_transactions") == 0);
  std::vector<std::uint8_t> got(1024);
  fab.memory(b).peek(kBarB + 0x1000, got.data(), got.size());
  CHECK(got == data);
}

TEST_CASE("peer-to-peer writes through the root complex run at its write forwarding efficiency") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  PcieRootComplexParams rp;
  rp.p2pWriteEfficiency = 0.75;
  rp.p2pReadEfficiency = 0.5;
  const auto r = fab.addRootComplex("rc", rp, hostMemory());
  const auto a = fab.addEndpoint("a", r, linkParams(c), dmaParams(1, c), bar(kBarA));
  const auto b = fab.addEndpoint("b", r, linkParams(c), dmaParams(2, c), bar(kBarB));
  fab.finalize();
  StreamDriver d("d", fab.engine(a), StreamOp::Write, kBarB, 4096, 4096, 300);
  sc_core::sc_start();
  CHECK(fab.rootComplex(r).stats().counterValue("p2p_transactions") == 300u * 16);
  CHECK(relErr(d.writeGbps(), 0.75 * writeEffectiveGbps(c, 4096)) < 0.01);
  (void)b;
}

TEST_CASE("peer-to-peer reads through the root complex run at its read forwarding efficiency") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  PcieRootComplexParams rp;
  rp.p2pWriteEfficiency = 0.75;
  rp.p2pReadEfficiency = 0.5;
  const auto r = fab.addRootComplex("rc", rp, hostMemory());
  const auto a = fab.addEndpoint("a", r, linkParams(c), dmaParams(1, c), bar(kBarA));
  const auto b = fab.addEndpoint("b", r, linkParams(c), dmaParams(2, c), bar(kBarB));
  fab.finalize();
  StreamDriver d("d", fab.engine(a), StreamOp::Read, kBarB, 4096, 4096, 300);
  sc_core::sc_start();
  CHECK(relErr(d.readGbps(), 0.5 * readEffectiveGbps(c, 4096)) < 0.01);
  (void)b;
}

TEST_CASE("the root complex's translation stage sees the requester and adds its latency") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  std::uint64_t plain = 0, translated = 0;
  {
    PcieFabric fab("fab");
    const auto c = gen3x8();
    PcieRootComplexParams r0, r1;
    r1.index = 1;
    const auto ra = fab.addRootComplex("rc0", r0, hostMemory());
    const auto rb = fab.addRootComplex("rc1", r1, hostMemory());
    const auto ea = fab.addEndpoint("a", ra, linkParams(c), dmaParams(1, c));
    const auto eb = fab.addEndpoint("b", rb, linkParams(c), dmaParams(7, c));
    TestStage stage;
    fab.rootComplex(rb).setTranslationStage(&stage);
    fab.finalize();
    StreamDriver da("da", fab.engine(ea), StreamOp::Read, 0x100000, 64, 0, 1);
    StreamDriver db("db", fab.engine(eb), StreamOp::Read, 0x100000, 64, 0, 1);
    sc_core::sc_start();
    plain = da.readDone[0];
    translated = db.readDone[0];
    CHECK(stage.calls == 1);
    CHECK(stage.lastRequester == bdf(7));
  }
  CHECK(translated - plain == 300'000);
}

TEST_CASE("a translation fault aborts the request with Unsupported Request before memory") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto e = fab.addEndpoint("ep", r, linkParams(c), dmaParams(1, c));
  TestStage stage;
  fab.rootComplex(r).setTranslationStage(&stage);
  fab.finalize();
  CplStatus rs = CplStatus::SuccessfulCompletion, ws = CplStatus::SuccessfulCompletion;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    rs = fab.engine(e).read(0xDEAD000, 64, nullptr, qk);
    ws = fab.engine(e).write(0xDEAD000, 64, nullptr, qk);
  });
  sc_core::sc_start();
  CHECK(rs == CplStatus::UnsupportedRequest);
  CHECK(ws == CplStatus::UnsupportedRequest);
  CHECK(fab.memory(r).stats().counterValue("bytes_read") == 0);
  CHECK(fab.memory(r).stats().counterValue("bytes_written") == 0);
  CHECK(fab.rootComplex(r).stats().counterValue("aborted_transactions") == 2);
  // The failed read still returns a completion (Cpl without data, 20 B) on the link.
  CHECK(fab.uplink(e).stats().counterValue("down_wire_bytes") == 20);
}

TEST_CASE("a translation to a peer BAR re-routes the request from the root complex to the peer") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto a = fab.addEndpoint("a", r, linkParams(c), dmaParams(1, c));
  const auto b = fab.addEndpoint("b", r, linkParams(c), dmaParams(2, c), bar(kBarB, true));
  TestStage stage;
  fab.rootComplex(r).setTranslationStage(&stage);
  fab.finalize();
  std::vector<std::uint8_t> data(256, 0xC3);
  CplStatus st = CplStatus::CompleterAbort;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    st = fab.engine(a).write(0x5000100, data.size(), data.data(), qk);  // IOVA -> peer BAR
  });
  sc_core::sc_start();
  CHECK(st == CplStatus::SuccessfulCompletion);
  CHECK(fab.memory(r).stats().counterValue("bytes_written") == 0);
  CHECK(fab.memory(b).stats().counterValue("bytes_written") == 256);
  std::vector<std::uint8_t> got(256);
  fab.memory(b).peek(kBarB + 0x100, got.data(), got.size());
  CHECK(got == data);
}
