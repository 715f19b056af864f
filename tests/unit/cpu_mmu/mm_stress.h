#pragma once
// Randomized stress of the address-space operations across a fork family: seeded random mmap
// (private, THP-eligible, shared, hugetlb, MAP_GROWSDOWN) /
// munmap / mprotect / madvise / mremap / fork / exit / load / store / pin steps (and, through a
// hook, device operations), checked by the caller with the whole-system audit (mm_audit.h),
// and a shadow of the bytes written to private anonymous memory (fork copies it: COW must keep
// each process's view; loads compare against it).

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/task_mmu.h"
#include "models/cpu_mmu/vma.h"
#include "sim/rng.h"
#include "tests/unit/cpu_mmu/mm_audit.h"

namespace hmmsim::test {

constexpr std::uint64_t kArena = 64ull << 20;  // every mapping lands in [base, base + 64 MiB)
const Va kBase(0x7e0000000000ull);

struct Proc {
  std::unique_ptr<Mm> mm;
  std::map<std::uint64_t, std::uint8_t> shadow;  // va -> byte, private anonymous memory only
  std::vector<Pfn> pins;
  std::vector<std::shared_ptr<File>> files;  // opened by the onSpawn hook; closed before exit
};

/// Device-side extensions of the stress (the dmirror stress uses them).
struct StressHooks {
  /// A new process (the first one, and every fork child): open device files, register, ...
  std::function<void(Proc&)> onSpawn;
  /// A device operation on [a, a + n) of `p`'s address space (called for 1 in 8 steps when set).
  std::function<void(Proc& p, Va a, std::uint64_t n, Rng& rng)> deviceOp;
};

class Stress {
 public:
  /// `pm` must outlive the Stress (device models built on it may hold its frames).
  Stress(PhysMem& pm, std::uint64_t seed, StressHooks hooks = {})
      : pm_(pm), rng_(seed), hooks_(std::move(hooks)) {
    MmParams p;
    p.hugetlbPages = 8;
    p.thp.enabled = ThpPolicy::Madvise;
    procs_.push_back(Proc{std::make_unique<Mm>(pm_, "p0", p), {}, {}, {}});
    if (hooks_.onSpawn) hooks_.onSpawn(procs_.back());
  }
  ~Stress() {
    for (Proc& pr : procs_) exitProc(pr);
  }
  static PhysMemParams ram() {
    PhysMemParams p;
    p.ramSize = 512ull << 20;
    return p;
  }

  void step(int i) {
    Proc& pr = procs_[rng_.below(procs_.size())];
    Mm& mm = *pr.mm;
    const Va a = kBase + rng_.below(kArena / kPageSize) * kPageSize;
    const std::uint64_t len = (1 + rng_.below(rng_.below(8) == 0 ? 1024 : 64)) * kPageSize;
    const std::uint64_t end = std::min(a.value() + len, kBase.value() + kArena);
    const std::uint64_t n = end - a.value();
    if (hooks_.deviceOp && rng_.below(8) == 0) {
      hooks_.deviceOp(pr, a, n, rng_);
      return;
    }
    switch (rng_.below(16)) {
      case 0:
      case 1: {  // mmap, fixed in the arena: private anon (sometimes THP-eligible), shared, hugetlb
        const unsigned kind = unsigned(rng_.below(8));
        int flags = MAP_FIXED | MAP_ANONYMOUS | (kind == 6 ? MAP_SHARED : MAP_PRIVATE);
        if (kind == 5) flags |= MAP_GROWSDOWN;  // a stack: stores below it grow it
        Va at = a;
        std::uint64_t l = n;
        if (kind == 7) {
          flags |= MAP_HUGETLB;
          at = a.alignDown(kPmdSize);
          l = kPmdSize;
        }
        const VaResult r = mm.mmap(at, l, PROT_READ | PROT_WRITE, flags);
        forget(pr, at.value(), at.value() + l);
        if (r.ok() && kind < 3) (void)mm.madvise(at, l, MADV_HUGEPAGE);
        break;
      }
      case 2:
        if (mm.munmap(a, n) == Errno::Ok) forget(pr, a.value(), end);
        break;
      case 3: {
        static const int prots[] = {PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE};
        (void)mm.mprotect(a, n, prots[rng_.below(3)]);
        break;
      }
      case 4: {
        static const int advice[] = {MADV_DONTNEED, MADV_FREE, MADV_COLLAPSE, MADV_HUGEPAGE, MADV_WIPEONFORK};
        const int adv = advice[rng_.below(5)];
        const Errno e = mm.madvise(a, n, adv);
        if (e == Errno::Ok && (adv == MADV_DONTNEED || adv == MADV_FREE)) forget(pr, a.value(), end);
        break;
      }
      case 5: {  // mremap MAYMOVE|FIXED to another place in the arena
        const Va to = kBase + rng_.below(kArena / kPageSize) * kPageSize;
        if (to.value() + n > kBase.value() + kArena) break;
        const VaResult r = mm.mremap(a, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, to);
        if (r.ok()) {
          forget(pr, a.value(), end);
          forget(pr, to.value(), to.value() + n);
        }
        break;
      }
      case 6:
        if (procs_.size() < 4) {
          ForkResult f = mm.fork("p" + std::to_string(i));
          if (f.ok()) {
            ++forks;
            Proc child{std::move(f.child), pr.shadow, {}, {}};
            for (const Vma& v : mm.vmas())  // the child's copy of these starts empty
              if (v.vmFlags & VM_WIPEONFORK) forget(child, v.vmStart.value(), v.vmEnd.value());
            procs_.push_back(std::move(child));
            if (hooks_.onSpawn) hooks_.onSpawn(procs_.back());
          }
        }
        break;
      case 7:
        if (procs_.size() > 1 && &pr != &procs_[0]) {
          exitProc(pr);
          procs_.erase(procs_.begin() + (&pr - procs_.data()));
          return;
        }
        break;
      case 8: {  // pin or unpin a page
        if (!pr.pins.empty() && rng_.below(2)) {
          unpinUserPage(mm, pr.pins.back());
          pr.pins.pop_back();
        } else {
          Pfn p;
          if (pinUserPages(mm, a, 1, rng_.below(2) ? kFollWrite : 0u, &p).nrPages == 1) pr.pins.push_back(p);
        }
        break;
      }
      case 10: {  // mlock / mlock2(ONFAULT) / munlock
        const unsigned k = unsigned(rng_.below(3));
        if (k == 0) (void)mm.mlock(a, n);
        if (k == 1) (void)mm.mlock2(a, n, MLOCK_ONFAULT);
        if (k == 2) (void)mm.munlock(a, n);
        break;
      }
      case 11:
        (void)clearRefs(mm, 1 + int(rng_.below(4)));  // accessed bits or soft-dirty (write-protects)
        break;
      case 9:
        // Only lazyfree pages go, and MADV_FREE already dropped their bytes from the shadow (a
        // byte written since makes its page dirty, which reclaim keeps).
        mm.reclaimLazyfree();
        break;
      default: {  // a load or store of a few bytes
        std::uint64_t at = a.value() + rng_.below(kPageSize - 8);
        if (!pr.shadow.empty() && rng_.below(2)) {  // often revisit written bytes
          auto it = pr.shadow.lower_bound(at);
          if (it == pr.shadow.end()) it = pr.shadow.begin();
          at = it->first;
        }
        std::uint8_t buf[8];
        if (rng_.below(2)) {
          for (auto& b : buf) b = std::uint8_t(rng_.next());
          if (copyToUser(mm, Va(at), buf, 8) == Errno::Ok) {
            const bool priv = isPrivateAnon(mm, Va(at));
            for (unsigned k = 0; k < 8; ++k) {
              if (priv)
                pr.shadow[at + k] = buf[k];
              else
                pr.shadow.erase(at + k);
            }
          }
        } else if (copyFromUser(mm, buf, Va(at), 8) == Errno::Ok) {
          for (unsigned k = 0; k < 8; ++k) {
            auto it = pr.shadow.find(at + k);
            if (it == pr.shadow.end()) continue;
            ++verifiedBytes;
            if (it->second != buf[k]) {
              INFO("step " << i << " " << mm.name() << " byte at " << Va(at + k));
              CHECK(int(buf[k]) == int(it->second));
              pr.shadow.erase(it);
            }
          }
        }
      }
    }
  }

  std::vector<std::string> audit() {
    std::vector<Mm*> mms;
    for (Proc& p : procs_) mms.push_back(p.mm.get());
    return test::auditMms(pm_, mms);
  }
  std::size_t procs() const { return procs_.size(); }
  std::uint64_t verifiedBytes = 0;  ///< loaded bytes compared with the shadow
  std::uint64_t forks = 0;

 private:
  void exitProc(Proc& pr) {
    for (Pfn p : pr.pins) unpinUserPage(*pr.mm, p);
    pr.pins.clear();
    pr.files.clear();  // close(): a driver's notifiers go before the mm
    pr.mm->exitMmap();
  }
  static bool isPrivateAnon(Mm& mm, Va a) {
    const Vma* v = mm.vmaLookup(a);
    return v && v->isAnonymous() && !v->isShared();
  }
  void forget(Proc& pr, std::uint64_t s, std::uint64_t e) {
    pr.shadow.erase(pr.shadow.lower_bound(s), pr.shadow.lower_bound(e));
  }

  PhysMem& pm_;
  Rng rng_;
  StressHooks hooks_;
  std::vector<Proc> procs_;
};

/// `steps` steps of `s` with the audit after each: a failed audit fails the test case, naming
/// the seed, the step and the problems.
inline void runAudited(Stress& s, std::uint64_t seed, int steps) {
  for (int i = 0; i < steps; ++i) {
    s.step(i);
    const auto problems = s.audit();
    if (!problems.empty()) {
      std::string all;
      for (const auto& p : problems) all += p + "\n";
      INFO("seed " << seed << " step " << i << "\n" << all);
      REQUIRE(problems.empty());
    }
  }
}

}  // namespace hmmsim::test
