#pragma once
// The invariant checker core: where every layer reports a breach of the RFC's contract.
//
// The rules (docs/architecture.md, "The checker"):
//   1. no device access through a translation after the invalidation covering it returned;
//   2. no access to a frame after it was freed or migrated away (frame generation counters);
//   3. no peer access outside a live BAR window of the exporter;
//   4. no DMA that reaches memory through an unmapped IOVA;
//   5. data integrity where a scenario defines it;
//   6. locking: the kernel's lock rules (order, recursion, balance, no sleep in atomic or
//      non-blockable context, nothing held on return to user), checked by sim/lockdep.h;
//   7. no peer-to-peer request that a root complex answers with Unsupported Request: software
//      that honours the p2pdma map type never sends one (NOT_SUPPORTED is declined, not mapped).
// The layers that own the state do the checking; this class only records, counts and decides
// whether the run fails. It holds no model knowledge.

#include <cstdint>
#include <string>
#include <vector>

namespace hmmsim {

enum class CheckRule {
  StaleTranslation,    ///< rule 1: access through a translation already invalidated
  FreedFrame,          ///< rule 2: access to a freed or migrated-away frame
  OutsideBarWindow,    ///< rule 3: peer access outside a live BAR window
  UnmappedIova,        ///< rule 4: DMA through an IOVA with no mapping
  DataIntegrity,       ///< rule 5: bytes differ from what the scenario expects
  Locking,             ///< rule 6: a lockdep report (sim/lockdep.h); device = the execution context
  UnsupportedRequest,  ///< rule 7: a p2p request a root complex answered with Unsupported Request
};

const char* checkRuleName(CheckRule r);

struct Violation {
  CheckRule rule = CheckRule::StaleTranslation;
  std::uint64_t timePs = 0;   ///< simulated time of the offending access
  std::string device;         ///< who accessed ("top.nic0")
  std::uint64_t address = 0;  ///< the address used, in the accessor's address space
  std::string cause;          ///< the event that made it illegal ("UNMAP invalidation at 12.5us")
};

class InvariantChecker {
 public:
  void report(Violation v);
  const std::vector<Violation>& violations() const { return violations_; }
  std::size_t count(CheckRule r) const;
  bool ok() const { return violations_.empty(); }
  /// "12.5us top.nic0 0x7f0000001000 stale-translation: UNMAP invalidation at 12.0us"
  static std::string format(const Violation& v);

 private:
  std::vector<Violation> violations_;
};

}  // namespace hmmsim
