// The platform's timeline trace (Platform with a TraceSink): the camera chain while the colour
// engine's exporter moves its BAR windows, traced with every category on, and the JSON read back:
// a track per link direction used and per device part, DMA bursts no shorter than the link can
// carry them, link occupancy that adds up to the link's own counters, device faults after a
// window move costing the fault cost, invalidations with their wait, the window moves, the MSI
// handlers. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/platform/builtin_devices.h"
#include "models/platform/camera_chain.h"
#include "models/platform/platform.h"
#include "tests/unit/platform/camera_chain_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

struct Slice {
  std::string name;
  char phase = 'X';
  double ts = 0, dur = 0;  // us
  std::string detail;
};

/// The trace's events by track name (thread_name metadata), in file order.
std::map<std::string, std::vector<Slice>> byTrack(const std::string& json) {
  const nlohmann::json j = nlohmann::json::parse(json);  // throws on invalid JSON
  std::map<int, std::string> names;
  for (const auto& e : j.at("traceEvents"))
    if (e.at("ph") == "M" && e.at("name") == "thread_name") names[e.at("tid").get<int>()] = e["args"]["name"];
  std::map<std::string, std::vector<Slice>> tracks;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") == "M") continue;
    Slice s;
    s.name = e.at("name");
    s.phase = e.at("ph").get<std::string>()[0];
    s.ts = e.at("ts");
    if (e.contains("dur")) s.dur = e["dur"];
    if (e.contains("args")) s.detail = e["args"].value("detail", "");
    tracks[names.at(e.at("tid").get<int>())].push_back(s);
  }
  return tracks;
}

std::vector<Slice> named(const std::vector<Slice>& v, const std::string& prefix) {
  std::vector<Slice> out;
  for (const Slice& s : v)
    if (s.name.rfind(prefix, 0) == 0) out.push_back(s);
  return out;
}

}  // namespace

TEST_CASE("a traced platform records link occupancy, bursts, faults, invalidations and BAR moves") {
  TraceSink trace;
  trace.enable("all");
  Platform p("m", smallChainDesc(), builtinDevices(), &trace);
  CameraChainParams c;
  c.frames = 3;
  c.transform = *colourTransformPreset("vivid");
  c.revokeEveryPs = 2'000'000'000;  // 2 ms: the frames take 12.5 ms
  c.revokeKind = CameraChainRevoke::Move;
  CameraChain chain(p, c);
  chain.setTrace(&trace);
  chain.start();
  sc_core::sc_start();
  chain.finish();
  REQUIRE(chain.done());
  REQUIRE(p.violations().ok());
  p.flushTrace();
  const auto tracks = byTrack(trace.toJson());
  for (const char* t : {"link.cam0.up", "link.colour0.down", "device.cam0.dma", "device.cam0.faults",
                        "device.cam0.invalidations", "device.colour0.bar", "cpu.driver0"}) {
    INFO(t);
    CHECK(tracks.count(t) == 1);
  }
  REQUIRE(tracks.count("link.cam0.up") == 1);

  {  // each link direction's slices carry exactly the TLPs and bytes its counters saw
    const StatsGroup& g = p.fabric().uplink("cam0").stats();
    const std::regex rx("([0-9]+) TLPs, ([0-9]+) wire bytes");
    std::uint64_t tlps = 0, bytes = 0;
    double last = -1;
    for (const Slice& s : tracks.at("link.cam0.up")) {
      std::smatch m;
      REQUIRE(std::regex_match(s.detail, m, rx));
      tlps += std::stoull(m[1]);
      bytes += std::stoull(m[2]);
      CHECK(s.ts >= last);  // no overlap: each run starts after the previous one ended
      last = s.ts + s.dur;
    }
    CHECK(tlps == g.counterValue("up_tlps"));
    CHECK(bytes == g.counterValue("up_wire_bytes"));
    // Per-TLP fidelity (the default): a line's three back-to-back TLPs are one slice, so there
    // are no more slices than the camera's bursts, and fewer than half the TLPs.
    CHECK(tracks.at("link.cam0.up").size() <= tracks.at("device.cam0.dma").size());
    CHECK(tracks.at("link.cam0.up").size() * 2 < tlps);
  }
  {  // a camera burst takes at least its serialization on the camera's link
    LinkDirection& up = p.fabric().uplink("cam0").up();
    const std::vector<Slice> writes = named(tracks.at("device.cam0.dma"), "DMA write");
    REQUIRE(writes.size() > 10);
    const std::regex rx("([0-9]+) B at 0x[0-9a-f]+");
    for (const Slice& s : writes) {
      std::smatch m;
      REQUIRE(std::regex_match(s.detail, m, rx));
      CHECK(s.dur * 1e6 >= double(up.serializationPs(std::stoull(m[1]))));
      CHECK(s.dur < 100);  // us: a line's burst, not a frame
    }
  }
  {  // window moves revoke the camera, which re-faults, each fault costing the fault cost and
     // the walk and p2p map of the pages it mapped (a special vma: no handle_mm_fault)
    const std::vector<Slice> moves = named(tracks.at("device.colour0.bar"), "move window");
    REQUIRE(moves.size() >= 3);
    CHECK_FALSE(named(tracks.at("device.colour0.bar"), "revoke (moved)").empty());
    const std::vector<Slice> inval = named(tracks.at("device.cam0.invalidations"), "invalidate clear");
    REQUIRE(inval.size() >= 3);
    CHECK(inval.front().ts >= moves.front().ts);
    CHECK(inval.front().ts + inval.front().dur <= moves.front().ts + moves.front().dur + 1e-6);
    const std::vector<Slice> faults = named(tracks.at("device.cam0.faults"), "device fault");
    const double faultUs = double(ImporterDmaParams{}.faultPs) / 1e6;
    const ImporterMirrorParams m;
    const std::regex mapped(".*mapped \\[0x([0-9a-f]+), 0x([0-9a-f]+)\\).*");
    bool afterMove = false;
    for (const Slice& f : faults) {
      std::smatch x;
      REQUIRE(std::regex_match(f.detail, x, mapped));
      const std::uint64_t pages =
          (std::stoull(x[2], nullptr, 16) - std::stoull(x[1], nullptr, 16)) >> kPageShift;
      CHECK(f.dur == Approx(faultUs + double(pages * (m.walkPagePs + m.mapPagePs)) / 1e6));
      afterMove = afterMove || f.ts > moves.front().ts;
    }
    CHECK(afterMove);
  }
  {  // every interrupt handler is a slice after its MSI
    const std::vector<Slice>& cpu = tracks.at("cpu.driver0");
    const std::vector<Slice> msis = named(cpu, "MSI ");
    CHECK(msis.size() == 2 * c.frames);  // the camera's and the engine's completion per frame
    CHECK(named(cpu, "cam0.").size() == c.frames);
  }
}
