// PcieDmaEngine::issueStream: a periodic stream booked in closed form per chunk gives the same
// completion times (within 0.01 %) and the same link traffic as issuing its bursts one by one, in
// far fewer transactions; shared paths and translation stages fall back to one-by-one issue.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

PcieLinkConfig gen4x16() {
  PcieLinkConfig c;
  c.gen = PcieGen::Gen4;
  c.lanes = 16;
  return c;
}

/// Issues one stream (issueStream) or the same bursts one by one, from its own SC_THREAD.
class StreamCaller : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(StreamCaller);
  StreamCaller(sc_core::sc_module_name n, PcieDmaEngine& e, bool write, std::uint64_t base,
               std::uint64_t size, std::uint64_t count, bool stream)
      : sc_module(n), e_(e), write_(write), base_(base), size_(size), count_(count), stream_(stream) {
    SC_THREAD(run);
  }
  DmaIssue result;
  std::uint64_t startPs = 0;

 private:
  void run() {
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    startPs = sc_core::sc_time_stamp().value();
    if (stream_) {
      result = e_.issueStream(write_, base_, size_, count_, qk);
    } else {
      for (std::uint64_t i = 0; i < count_; ++i) {
        const std::uint64_t a = base_ + i * size_;
        const DmaIssue r =
            write_ ? e_.issueWrite(a, size_, nullptr, qk) : e_.issueRead(a, size_, nullptr, qk);
        result.donePs = std::max(result.donePs, r.donePs);
        if (result.status == CplStatus::SuccessfulCompletion) result.status = r.status;
      }
    }
    qk.sync();
  }
  PcieDmaEngine& e_;
  bool write_;
  std::uint64_t base_, size_, count_;
  bool stream_;
};

/// endpoint -> (links - 1) switches -> root complex -> host memory, one stream.
struct Path {
  Path(const std::string& name, int links, bool write, std::uint64_t size, std::uint64_t count, bool stream,
       std::uint32_t tags = 256, std::uint64_t chunkPs = 200'000'000)
      : fab(name) {
    PcieLinkParams l;
    l.config = gen4x16();
    PcieMemoryTargetParams mem = hostMemory();
    mem.sizeBytes = 1ull << 36;
    mem.bandwidthGbps = 204.8;  // the default DDR4-3200 channels
    auto parent = fab.addRootComplex("rc", PcieRootComplexParams{}, mem);
    for (int i = 1; i < links; ++i)
      parent = fab.addSwitch("sw" + std::to_string(i), parent, l, PcieSwitchParams{});
    PcieDmaEngineParams d;
    d.requester = bdf(1);
    d.link = l.config;
    d.fidelity = PcieFidelity::PerBurst;
    d.timingOnly = true;
    d.readTags = tags;
    d.streamChunkPs = chunkPs;
    ep = fab.addEndpoint("ep", parent, l, d);
    fab.finalize();
    caller = std::make_unique<StreamCaller>((name + "_c").c_str(), fab.engine(ep), write, 0x100000, size,
                                            count, stream);
  }
  std::uint64_t rcTransactions() { return fab.rootComplex(0).stats().counterValue("to_memory_transactions"); }
  PcieFabric fab;
  PcieFabric::NodeId ep;
  std::unique_ptr<StreamCaller> caller;
};

void streamMatchesOneByOne(int links, std::uint32_t tags) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  struct Pair {
    std::unique_ptr<Path> stream, single;
    bool write;
    std::uint64_t size, count;
  };
  std::vector<Pair> pairs;
  for (std::uint64_t size : {4096ull, 64ull * 1024, 1ull << 20}) {
    const std::uint64_t count = std::max<std::uint64_t>(64, (64ull << 20) / size / 4);
    for (bool write : {true, false}) {
      const std::string n =
          std::to_string(size) + (write ? "w" : "r") + std::to_string(links) + "_" + std::to_string(tags);
      pairs.push_back({std::make_unique<Path>("s" + n, links, write, size, count, true, tags),
                       std::make_unique<Path>("o" + n, links, write, size, count, false, tags), write, size,
                       count});
    }
  }
  sc_core::sc_start();
  for (Pair& p : pairs) {
    const DmaIssue& s = p.stream->caller->result;
    const DmaIssue& o = p.single->caller->result;
    INFO((p.write ? "write " : "read ")
         << p.count << " x " << p.size << " B over " << links << " links, " << tags << " tags: stream done "
         << s.donePs << " ps, one by one " << o.donePs << " ps; RC transactions "
         << p.stream->rcTransactions() << " vs " << p.single->rcTransactions());
    REQUIRE(s.status == CplStatus::SuccessfulCompletion);
    REQUIRE(o.status == CplStatus::SuccessfulCompletion);
    CHECK(relErr(double(s.donePs), double(o.donePs)) < 1e-4);
    // The same traffic on the wire, in far fewer transactions.
    PcieLinkModule& ls = p.stream->fab.uplink(p.stream->ep);
    PcieLinkModule& lo = p.single->fab.uplink(p.single->ep);
    CHECK(ls.up().wireBytes() == lo.up().wireBytes());
    CHECK(ls.down().wireBytes() == lo.down().wireBytes());
    CHECK(p.stream->fab.engine(p.stream->ep).stats().counterValue("bursts") == p.count);
    CHECK(p.single->rcTransactions() == p.count);
    // A chunk holds streamChunkPs / period bursts (200 us here): fewer transactions once that is >= 4.
    // Per chunk: one probe burst, then one transaction.
    const std::uint64_t period = o.donePs / p.count;
    if (period * 16 < 200'000'000) CHECK(p.stream->rcTransactions() * 4 < p.count);
    if (period * 4 < 200'000'000) CHECK(p.stream->rcTransactions() < p.count);
  }
}

}  // namespace

TEST_CASE("a stream booked in closed form completes when its bursts one by one do, over one link") {
  streamMatchesOneByOne(1, 256);
}

TEST_CASE("a stream booked in closed form completes when its bursts one by one do, over three links") {
  streamMatchesOneByOne(3, 256);
}

TEST_CASE("a tag-limited read stream (8 tags) in closed form completes when its bursts one by one do") {
  streamMatchesOneByOne(3, 8);
}

TEST_CASE("a stream of bursts that are not 4 KiB multiples is issued one by one") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  Path s("s", 1, true, 1000, 64, true), o("o", 1, true, 1000, 64, false);
  sc_core::sc_start();
  CHECK(s.caller->result.donePs == o.caller->result.donePs);
  CHECK(s.rcTransactions() == 64);
}

namespace {

/// Two endpoints under one switch writing host memory (the switch uplink is shared), issued as
/// streams and, on a second fabric, one by one.
void sharedStreamsSplitEvenly(std::uint64_t quantumNs) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(double(quantumNs), sc_core::SC_NS));
  struct Shared {
    std::unique_ptr<PcieFabric> fab;
    PcieFabric::NodeId sw = 0;
    std::unique_ptr<StreamCaller> a, b;
  };
  constexpr std::uint64_t kSize = 64 * 1024, kCount = 400;
  std::vector<Shared> runs;
  for (bool stream : {false, true}) {
    Shared r;
    const std::string n = stream ? "s" : "o";
    r.fab = std::make_unique<PcieFabric>("share" + n);
    PcieLinkParams l;
    l.config = gen4x16();
    const auto rc = r.fab->addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
    r.sw = r.fab->addSwitch("sw", rc, l, PcieSwitchParams{});
    std::vector<PcieFabric::NodeId> eps;
    for (int i = 0; i < 2; ++i) {
      PcieDmaEngineParams d;
      d.requester = bdf(std::uint8_t(2 + i));
      d.link = l.config;
      d.fidelity = PcieFidelity::PerBurst;
      d.timingOnly = true;
      eps.push_back(r.fab->addEndpoint("ep" + std::to_string(i), r.sw, l, d));
    }
    r.fab->finalize();
    r.a = std::make_unique<StreamCaller>(("a" + n).c_str(), r.fab->engine(eps[0]), true, 0x100000, kSize,
                                         kCount, stream);
    r.b = std::make_unique<StreamCaller>(("b" + n).c_str(), r.fab->engine(eps[1]), true, 0x80000000, kSize,
                                         kCount, stream);
    runs.push_back(std::move(r));
  }
  sc_core::sc_start();
  double gbps[2][2];
  for (int k = 0; k < 2; ++k) {
    gbps[k][0] = double(kSize * kCount) * 8000.0 / double(runs[k].a->result.donePs - runs[k].a->startPs);
    gbps[k][1] = double(kSize * kCount) * 8000.0 / double(runs[k].b->result.donePs - runs[k].b->startPs);
  }
  const double linkGbps = runs[0].fab->uplink(runs[0].sw).up().tlpGbps();
  INFO("at a " << quantumNs << " ns quantum: one by one " << gbps[0][0] << " and " << gbps[0][1]
               << " Gb/s, streams " << gbps[1][0] << " and " << gbps[1][1] << " Gb/s over a " << linkGbps
               << " Gb/s link");
  for (int f = 0; f < 2; ++f) {
    CHECK(relErr(gbps[1][f], gbps[0][f]) < 0.01);  // the stream gets what its bursts one by one get
    CHECK(gbps[1][f] < 0.6 * linkGbps);            // neither takes the shared uplink alone
  }
  CHECK(relErr(gbps[1][0], gbps[1][1]) < 0.01);
}

}  // namespace

TEST_CASE("two streams sharing a link split it as their bursts one by one do, 1 ns quantum") {
  sharedStreamsSplitEvenly(1);
}

TEST_CASE("two streams sharing a link split it as their bursts one by one do, 1 us quantum") {
  sharedStreamsSplitEvenly(1000);
}

TEST_CASE("two streams sharing a link split it as their bursts one by one do, 10 us quantum") {
  sharedStreamsSplitEvenly(10'000);
}

TEST_CASE("the burst observer sees each burst issued one by one, with its issue and completion times") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  constexpr std::uint64_t kSize = 64 * 1024, kCount = 8;
  Path w("obsw", 2, true, kSize, kCount, false), r("obsr", 2, false, kSize, kCount, false);
  std::vector<DmaBurstRecord> seenW, seenR;
  w.fab.engine(w.ep).setBurstObserver([&](const DmaBurstRecord& b) { seenW.push_back(b); });
  r.fab.engine(r.ep).setBurstObserver([&](const DmaBurstRecord& b) { seenR.push_back(b); });
  sc_core::sc_start();
  for (auto* x : {&seenW, &seenR}) {
    const bool write = x == &seenW;
    REQUIRE(x->size() == kCount);
    for (std::uint64_t i = 0; i < kCount; ++i) {
      const DmaBurstRecord& b = (*x)[i];
      CHECK(b.write == write);
      CHECK(b.addr == 0x100000 + i * kSize);
      CHECK(b.len == kSize);
      CHECK(b.issuePs < b.donePs);
      CHECK(b.status == CplStatus::SuccessfulCompletion);
      if (i > 0) CHECK(b.issuePs >= (*x)[i - 1].issuePs);
    }
  }
  CHECK(seenW.back().donePs == w.caller->result.donePs);
  CHECK(seenR.back().donePs == r.caller->result.donePs);
}
