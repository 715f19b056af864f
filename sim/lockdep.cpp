// The lock validator. See lockdep.h.
#include "sim/lockdep.h"

#include <algorithm>
#include <sstream>

#include "sim/assert.h"
#include "sim/checker.h"

namespace hmmsim {

const char* lockdepErrorName(LockdepError e) {
  switch (e) {
    case LockdepError::OutOfOrder:
      return "out-of-order";
    case LockdepError::Recursive:
      return "recursive";
    case LockdepError::ReleaseNotHeld:
      return "release-not-held";
    case LockdepError::SleepInAtomic:
      return "sleep-in-atomic";
    case LockdepError::SleepInNonblockable:
      return "sleep-in-nonblockable";
    case LockdepError::HeldAtUserReturn:
      return "held-at-user-return";
  }
  return "?";
}

void Lockdep::setChecker(InvariantChecker* checker, std::function<std::uint64_t()> nowPs) {
  checker_ = checker;
  nowPs_ = std::move(nowPs);
}

std::uint64_t Lockdep::total() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : counts_) n += c;
  return n;
}

void Lockdep::report(LockdepError e, const std::string& context, const std::string& text) {
  ++counts_[static_cast<unsigned>(e)];
  HMMSIM_ASSERT(checker_ != nullptr, "lockdep: " << lockdepErrorName(e) << " in context " << context << ": "
                                                 << text
                                                 << " (no InvariantChecker attached: a locking bug is a "
                                                    "simulator bug)");
  Violation v;
  v.rule = CheckRule::Locking;
  v.timePs = nowPs_ ? nowPs_() : 0;
  v.device = context;
  v.cause = std::string(lockdepErrorName(e)) + ": " + text;
  checker_->report(std::move(v));
}

Lockdep& defaultLockdep() {
  static Lockdep l;
  return l;
}

std::string formatLockSite(const LockSite& s) {
  std::ostringstream os;
  os << s.file << ':' << s.line << ' ' << s.function;
  return os.str();
}

namespace {
const char* modeName(LockMode m) {
  return m == LockMode::Read ? "read" : "write";
}

std::string describe(const HeldLock& h) {
  std::ostringstream os;
  os << h.cls->name;
  if (h.subclass) os << '/' << h.subclass;
  os << " (" << modeName(h.mode) << (h.trylock ? ", trylock" : "") << ") acquired at "
     << formatLockSite(h.site);
  return os.str();
}
}  // namespace

ExecContext::ExecContext(std::string name, Lockdep& lockdep) : name_(std::move(name)), lockdep_(&lockdep) {}

std::string ExecContext::describeHeld() const {
  if (held_.empty()) return "none";
  std::ostringstream os;
  for (std::size_t i = 0; i < held_.size(); ++i) os << (i ? "; " : "") << describe(held_[i]);
  return os.str();
}

void ExecContext::report(LockdepError e, const std::string& what) const {
  lockdep_->report(e, name_, what + "; held: " + describeHeld());
}

const HeldLock* ExecContext::find(const void* lock) const {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it)
    if (it->lock == lock) return &*it;
  return nullptr;
}

void ExecContext::mightSleep(const char* what, LockSite site) {
  if (spin_ > 0) {
    report(LockdepError::SleepInAtomic,
           std::string("'") + what + "' may sleep but a spinning lock is held, at " + formatLockSite(site));
  } else if (nonBlock_ > 0) {
    report(
        LockdepError::SleepInNonblockable,
        std::string("'") + what + "' may sleep inside a non-blockable section, at " + formatLockSite(site));
  }
}

void ExecContext::acquire(const void* lock, const LockClass& cls, LockMode mode, unsigned subclass,
                          bool trylock, LockSite site) {
  HeldLock h{lock, &cls, mode, subclass, trylock, site};
  if (!trylock) {
    if (cls.kind == LockKind::Sleeping) mightSleep(cls.name, site);
    if (const HeldLock* same = find(lock)) {
      report(LockdepError::Recursive, "taking " + describe(h) + " again; first " + describe(*same));
    } else {
      // The innermost held lock with the highest (order, subclass) decides (check_prev_add on
      // every held lock reduces to it with a static order).
      const HeldLock* worst = nullptr;
      for (const HeldLock& x : held_)
        if (!worst ||
            std::make_pair(x.cls->order, x.subclass) >= std::make_pair(worst->cls->order, worst->subclass))
          worst = &x;
      if (worst && std::make_pair(cls.order, subclass) <= std::make_pair(worst->cls->order, worst->subclass))
        report(LockdepError::OutOfOrder, "taking " + describe(h) + " while holding " + describe(*worst) +
                                             " (order " + std::to_string(cls.order) +
                                             " must be taken before order " +
                                             std::to_string(worst->cls->order) + ")");
    }
  }
  if (cls.kind == LockKind::Spinning) ++spin_;
  held_.push_back(h);
}

void ExecContext::release(const void* lock, LockSite site) {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
    if (it->lock != lock) continue;
    if (it->cls->kind == LockKind::Spinning) --spin_;
    held_.erase(std::next(it).base());
    return;
  }
  std::ostringstream os;
  os << "releasing a lock at " << lock << " that this context does not hold, at " << formatLockSite(site);
  report(LockdepError::ReleaseNotHeld, os.str());
}

void ExecContext::downgrade(const void* lock, LockSite site) {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
    if (it->lock != lock) continue;
    it->mode = LockMode::Read;
    return;
  }
  std::ostringstream os;
  os << "downgrading a lock at " << lock << " that this context does not hold, at " << formatLockSite(site);
  report(LockdepError::ReleaseNotHeld, os.str());
}

void ExecContext::sysExit(LockSite site) {
  if (held_.empty()) return;
  report(LockdepError::HeldAtUserReturn, "returning to user space with " + std::to_string(held_.size()) +
                                             " lock(s) held, at " + formatLockSite(site));
}

void ExecContext::nonBlockEnd() {
  HMMSIM_ASSERT(nonBlock_ > 0, "context " << name_ << ": non_block_end without non_block_start");
  --nonBlock_;
}

void SpinLock::lock(ExecContext& ctx, LockSite site) {
  ctx.acquire(this, *cls_, LockMode::Write, 0, false, site);
  HMMSIM_ASSERT(owner_ == nullptr, "spin_lock(" << cls_->name << ") by " << ctx.name() << " at "
                                                << formatLockSite(site) << " while " << owner_->name()
                                                << " holds it: its holder slept (a cooperative simulation "
                                                   "cannot spin)");
  owner_ = &ctx;
}

void SpinLock::unlock(ExecContext& ctx, LockSite site) {
  ctx.release(this, site);
  if (owner_ == &ctx) owner_ = nullptr;
}

}  // namespace hmmsim
