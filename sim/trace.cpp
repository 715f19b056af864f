#include "sim/trace.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace hmmsim {

const char* traceCategoryName(TraceCategory c) {
  switch (c) {
    case TraceCategory::HmmNotifier:
      return "hmm.notifier";
    case TraceCategory::HmmFault:
      return "hmm.fault";
    case TraceCategory::HmmMigrate:
      return "hmm.migrate";
    case TraceCategory::HmmP2p:
      return "hmm.p2p";
    case TraceCategory::CpuFault:
      return "cpu.fault";
    case TraceCategory::PcieRoute:
      return "pcie.route";
    case TraceCategory::PcieLink:
      return "pcie.link";
    case TraceCategory::IommuWalk:
      return "iommu.walk";
    case TraceCategory::Dma:
      return "dma";
    case TraceCategory::Script:
      return "scenario.op";
    case TraceCategory::Irq:
      return "irq";
    case TraceCategory::kCount:
      break;
  }
  return "?";
}

bool TraceSink::enable(const std::string& name) {
  if (name == "all") {
    mask_ = (1u << static_cast<unsigned>(TraceCategory::kCount)) - 1;
    return true;
  }
  for (unsigned i = 0; i < static_cast<unsigned>(TraceCategory::kCount); ++i) {
    if (name == traceCategoryName(static_cast<TraceCategory>(i))) {
      mask_ |= 1u << i;
      return true;
    }
  }
  return false;
}

unsigned TraceSink::trackId(const std::string& track) {
  auto [it, inserted] = tracks_.emplace(track, static_cast<unsigned>(tracks_.size() + 1));
  return it->second;
}

void TraceSink::slice(TraceCategory c, const std::string& track, const std::string& name,
                      std::uint64_t startPs, std::uint64_t durPs, const std::string& args) {
  events_.push_back({'X', c, trackId(track), name, args, startPs, durPs});
}

void TraceSink::instant(TraceCategory c, const std::string& track, const std::string& name,
                        std::uint64_t atPs, const std::string& args) {
  events_.push_back({'i', c, trackId(track), name, args, atPs, 0});
}

std::string TraceSink::toJson() const {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& [name, id] : tracks_) {
    events.push_back(
        {{"ph", "M"}, {"name", "thread_name"}, {"pid", 1}, {"tid", id}, {"args", {{"name", name}}}});
  }
  // In time order, a slice before the slices it encloses (longer first at the same start), so a
  // viewer nests slices of one track however they were recorded (an enclosing slice is recorded
  // when it ends, after the ones inside it).
  std::vector<const Event*> order;
  order.reserve(events_.size());
  for (const auto& e : events_) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Event* a, const Event* b) {
    return a->startPs != b->startPs ? a->startPs < b->startPs : a->durPs > b->durPs;
  });
  for (const Event* ep : order) {
    const Event& e = *ep;
    nlohmann::json j = {{"ph", std::string(1, e.phase)},
                        {"cat", traceCategoryName(e.cat)},
                        {"name", e.name},
                        {"pid", 1},
                        {"tid", e.track},
                        {"ts", double(e.startPs) / 1e6}};  // Chrome wants microseconds
    if (e.phase == 'X') j["dur"] = double(e.durPs) / 1e6;
    if (e.phase == 'i') j["s"] = "t";
    if (!e.args.empty()) j["args"] = {{"detail", e.args}};
    events.push_back(std::move(j));
  }
  return nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ns"}}.dump();
}

}  // namespace hmmsim
