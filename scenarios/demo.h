#pragma once
// The built-in demo that `make run` shows until scenario files exist: one process address
// space on a 64 GiB machine maps anonymous memory (4 KiB and THP), touches it, forks, lets
// the child write (copy-on-write), checks both sides' data, unmaps half a THP (split), and
// exits — with a device-style interval notifier watching the whole address space, as an HMM
// mirror would. It prints the mm's counters and the notifier events it saw.

#include <cstdint>
#include <iosfwd>
#include <string>

namespace hmmsim {

struct DemoOptions {
  std::uint64_t ramBytes = 64ull << 30;  ///< simulated RAM (bytes); only touched pages cost memory
  std::uint64_t mapBytes = 64ull << 20;  ///< bytes mapped and touched by the parent
  std::string statsJson;                 ///< write stats.json here when non-empty
};

/// Runs the demo, printing its summary to `out`. Returns 0 on success, 1 when a data check
/// failed or the stats file could not be written (an older file there is kept).
int runDemo(const DemoOptions& opt, std::ostream& out);

}  // namespace hmmsim
