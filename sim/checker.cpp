#include "sim/checker.h"

#include "sim/units.h"

#include <algorithm>
#include <sstream>

namespace hmmsim {

const char* checkRuleName(CheckRule r) {
  switch (r) {
    case CheckRule::StaleTranslation:
      return "stale-translation";
    case CheckRule::FreedFrame:
      return "freed-frame";
    case CheckRule::OutsideBarWindow:
      return "outside-bar-window";
    case CheckRule::UnmappedIova:
      return "unmapped-iova";
    case CheckRule::DataIntegrity:
      return "data-integrity";
    case CheckRule::Locking:
      return "locking";
    case CheckRule::UnsupportedRequest:
      return "unsupported-request";
  }
  return "?";
}

void InvariantChecker::report(Violation v) {
  violations_.push_back(std::move(v));
}

std::size_t InvariantChecker::count(CheckRule r) const {
  return static_cast<std::size_t>(
      std::count_if(violations_.begin(), violations_.end(), [r](const Violation& v) { return v.rule == r; }));
}

std::string InvariantChecker::format(const Violation& v) {
  std::ostringstream os;
  os << formatDurationPs(v.timePs) << ' ' << v.device << " 0x" << std::hex << v.address << std::dec << ' '
     << checkRuleName(v.rule) << ": " << v.cause;
  return os.str();
}

}  // namespace hmmsim
