#pragma once
// Runs a platform scenario's `script:` (platform_script.h) on the Platform while its workload
// runs: the process operations on a CPU core per process ("script_<process>", programs built
// here, each operation started at its time), the injected events in one SystemC thread
// ("platform_script"), in time order. Construct after the workload (its regions must exist) and
// before sc_start(); start() once; after the simulation, check() and addStats().
//
// Stats ("script.*"): occurrences run, and what the events did: revokes, revoked_pages,
// window_moves, pressure_windows, resets, invalidations, misbehave_switches, migrations,
// migrated_pages, migrate_ps (the simulated time the migrations took: the event thread waits for
// the driver's copies, on the GPU's copy engine or at dmirror's copy rate); and failed
// expectations.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "models/cpu_mmu/file.h"
#include "models/platform/exporter_events.h"
#include "models/platform/platform.h"
#include "models/platform/workload.h"
#include "scenarios/platform_script.h"
#include "sim/stats.h"
#include "sim/stats_registry.h"
#include "sim/trace.h"

namespace hmmsim::scenario {

class PlatformScriptRunner {
 public:
  /// Resolves every region (the workload's, by name; the script's mmaps, by the core's slots)
  /// and starts the CPU cores with their programs. `ops` must come from parsePlatformScript on
  /// the same platform and workload kind (asserted). `ops`, `p` and `w` outlive the runner.
  PlatformScriptRunner(Platform& p, PlatformWorkload* w, const std::vector<PlatformOp>& ops);
  ~PlatformScriptRunner();
  PlatformScriptRunner(const PlatformScriptRunner&) = delete;
  PlatformScriptRunner& operator=(const PlatformScriptRunner&) = delete;

  /// Spawns the event thread (before or at the start of the simulation).
  void start();
  /// Each event as an instant on track "script" (category Script). `t` may be null.
  void setTrace(TraceSink* t) { trace_ = t; }
  /// After the simulation: checks the CPU cores' results against the operations' expectations
  /// and counts what ran. Once, before check() and addStats().
  void finish();
  /// One message per occurrence whose result differs from its `expect:` (or whose read data
  /// differ, or that did not run), each "file:line:column: op at TIME: what".
  void check(std::vector<std::string>& failures) const;
  /// "script" and each script core ("cpu.script_<process>").
  void addStats(StatsRegistry& r);
  StatsGroup& stats() { return stats_; }

 private:
  struct Region {
    std::string process;
    Va start;       ///< workload regions
    int slot = -1;  ///< script regions: the core's slot holding the address
    std::uint64_t bytes = 0;
  };
  /// One process op in a core's program: which result to check.
  struct CpuStep {
    PlatformStep step;
    std::string cpu;
    std::size_t index = 0;  ///< position in the program (and in results())
  };

  void buildPrograms();
  CpuOp cpuOp(const PlatformOp& op, const Region& r) const;
  /// The mremap of op.region where `cur` says it is; moves it in `cur` to the result's slot.
  CpuOp mremapOp(const PlatformOp& op, std::map<std::string, Region>& cur);
  /// The device's driver migrates the region to its memory or back (migrate_vma).
  Errno migrate(const PlatformOp& op);
  void run();
  void runEvent(const PlatformOp& op, std::uint64_t atPs);
  Errno exporterEvent(const PlatformOp& op);
  Errno storm(const PlatformOp& op);
  Errno misbehave(const PlatformOp& op);
  void checkCpuStep(const CpuStep& s);
  std::string label(const PlatformOp& op, std::uint64_t atPs) const;

  Platform& p_;
  PlatformWorkload* w_;
  const std::vector<PlatformOp>& ops_;
  std::vector<PlatformStep> events_;
  std::vector<CpuStep> cpuSteps_;
  std::map<std::string, Region> regions_;  ///< where each region starts (before any mremap)
  int slots_ = 0;                          ///< CPU slots handed out (script mmaps, moved regions)
  std::map<std::string, CpuCore*> cores_;
  std::vector<std::unique_ptr<BarPressure>> pressure_;
  std::vector<std::string> failures_;
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
  Counter& run_;
  Counter& revokes_;
  Counter& revokedPages_;
  Counter& windowMoves_;
  Counter& pressureWindows_;
  Counter& resets_;
  Counter& invalidations_;
  Counter& misbehaveSwitches_;
  Counter& migrations_;
  Counter& migratedPages_;
  Counter& migratePs_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<File>> dmirrorFiles_;  // (device, process)
  Counter& expectFailed_;
};

}  // namespace hmmsim::scenario
