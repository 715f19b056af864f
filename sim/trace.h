#pragma once
// Timeline tracing in the Chrome/Perfetto JSON format: one track per device and per link;
// DMA bursts, faults, invalidations, migrations and BAR window moves as slices.
//
// Tracing is by category ("hmm.notifier", "pcie.route", "iommu.walk"). A disabled category
// costs one bit test: callers write `if (trace.on(cat)) trace.slice(...)`.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hmmsim {

enum class TraceCategory : unsigned {
  HmmNotifier,
  HmmFault,
  HmmMigrate,
  HmmP2p,
  CpuFault,
  PcieRoute,
  PcieLink,
  IommuWalk,
  Dma,
  Script,  ///< a scenario's script operations (scenarios/scenario_run.*)
  Irq,     ///< MSIs and the driver threads' interrupt handlers (models/platform/interrupts.*)
  kCount
};

const char* traceCategoryName(TraceCategory c);

class TraceSink {
 public:
  /// Enables categories by name ("hmm.notifier", or "all"); returns false for an unknown name.
  bool enable(const std::string& name);
  void enable(TraceCategory c) { mask_ |= 1u << static_cast<unsigned>(c); }
  bool on(TraceCategory c) const { return (mask_ >> static_cast<unsigned>(c)) & 1u; }

  /// A complete slice on `track` from startPs lasting durPs.
  void slice(TraceCategory c, const std::string& track, const std::string& name, std::uint64_t startPs,
             std::uint64_t durPs, const std::string& args = "");
  /// An instant event.
  void instant(TraceCategory c, const std::string& track, const std::string& name, std::uint64_t atPs,
               const std::string& args = "");

  std::size_t eventCount() const { return events_.size(); }
  /// The whole trace as Chrome trace-event JSON (loads in ui.perfetto.dev).
  std::string toJson() const;

 private:
  struct Event {
    char phase;
    TraceCategory cat;
    unsigned track;
    std::string name, args;
    std::uint64_t startPs, durPs;
  };
  unsigned trackId(const std::string& track);

  unsigned mask_ = 0;
  std::map<std::string, unsigned> tracks_;
  std::vector<Event> events_;
};

}  // namespace hmmsim
