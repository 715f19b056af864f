#include "scenarios/demo.h"

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/units.h"

#include <nlohmann/json.hpp>

#include "sim/output_file.h"

#include <array>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <vector>

namespace hmmsim {
namespace {

/// Counts the invalidations an HMM mirror would see, per event.
class EventCounter : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    sub.setSeq(curSeq);
    ++counts[static_cast<unsigned>(range.event)];
    pages += (range.end - range.start) / kPageSize;
    return true;
  }
  std::array<std::uint64_t, kMmuNotifierEventCount> counts{};  ///< indexed by MmuNotifierEvent
  std::uint64_t pages = 0;
};

bool fill(Mm& mm, Va base, std::uint64_t bytes, std::uint32_t salt) {
  std::vector<std::uint32_t> page(kPageSize / 4);
  for (std::uint64_t off = 0; off < bytes; off += kPageSize) {
    for (std::size_t i = 0; i < page.size(); ++i) page[i] = std::uint32_t(off / 4 + i) ^ salt;
    if (copyToUser(mm, base + off, page.data(), kPageSize) != Errno::Ok) return false;
  }
  return true;
}

bool check(Mm& mm, Va base, std::uint64_t bytes, std::uint32_t salt) {
  std::vector<std::uint32_t> page(kPageSize / 4);
  for (std::uint64_t off = 0; off < bytes; off += kPageSize) {
    if (copyFromUser(mm, page.data(), base + off, kPageSize) != Errno::Ok) return false;
    for (std::size_t i = 0; i < page.size(); ++i) {
      if (page[i] != (std::uint32_t(off / 4 + i) ^ salt)) return false;
    }
  }
  return true;
}

}  // namespace

int runDemo(const DemoOptions& opt, std::ostream& out) {
  PhysMemParams pp;
  pp.ramSize = opt.ramBytes;
  PhysMem phys(pp, "top.phys_mem");
  Mm parent(phys, "top.proc0.mm");

  EventCounter events;
  MmuIntervalNotifier mirror;
  HMMSIM_ASSERT(
      mmuIntervalNotifierInsert(mirror, parent, Va(0), parent.params().taskSize.value(), events) == Errno::Ok,
      "demo: notifier insert");

  bool ok = true;
  const std::uint64_t half = opt.mapBytes / 2;
  auto small = parent.mmap(Va(0), half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  auto huge = parent.mmap(Va(0), half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HMMSIM_ASSERT(small.ok() && huge.ok(), "demo: mmap failed");
  parent.madvise(huge.addr, half, MADV_HUGEPAGE);

  ok &= fill(parent, small.addr, half, 0x1111);
  ok &= fill(parent, huge.addr, half, 0x2222);

  auto forked = parent.fork("top.proc1.mm");
  HMMSIM_ASSERT(forked.ok(), "demo: fork failed");
  Mm& child = *forked.child;
  ok &= check(child, small.addr, half, 0x1111);     // the child sees the parent's data
  ok &= fill(child, small.addr, half / 2, 0x3333);  // ... and its writes copy on write
  ok &= check(parent, small.addr, half, 0x1111);    // the parent keeps its data
  ok &= check(child, small.addr, half / 2, 0x3333);

  // Unmap the upper half of the first THP: the PMD is split, the lower half stays mapped.
  ok &= parent.munmap(huge.addr + kPmdSize / 2, kPmdSize / 2) == Errno::Ok;
  ok &= check(parent, huge.addr, kPmdSize / 2, 0x2222);

  const std::uint64_t rssBeforeExit = static_cast<std::uint64_t>(parent.rss());
  const std::uint64_t childRss = static_cast<std::uint64_t>(child.rss());
  const std::uint64_t dataPages = phys.dataPages();
  auto& pe = parent.vmEvents();
  auto& ce = child.vmEvents();
  const std::uint64_t faults = pe.pgfault.value() + ce.pgfault.value();
  const std::uint64_t zeroMaps = pe.zeroPageMap.value() + ce.zeroPageMap.value();
  const std::uint64_t anonAlloc = pe.anonFaultAlloc.value() + ce.anonFaultAlloc.value();
  const std::uint64_t thpAlloc = pe.thpFaultAlloc.value() + ce.thpFaultAlloc.value();
  const std::uint64_t cow = pe.cowFault.value() + ce.cowFault.value();
  const std::uint64_t splits = pe.thpSplitPmd.value() + ce.thpSplitPmd.value();
  child.exitMmap();
  mirror.remove();
  parent.exitMmap();

  out << "hmmsim demo: one process on " << formatBytes(opt.ramBytes) << " of RAM maps "
      << formatBytes(opt.mapBytes) << " (half THP), touches it, forks, writes in the child, "
      << "unmaps half a THP, exits\n";
  out << std::left;
  auto row = [&](const std::string& k, std::uint64_t v) { out << "  " << std::setw(34) << k << v << '\n'; };
  row("page faults (parent + child)", faults);
  row("zero-page maps", zeroMaps);
  row("anonymous 4 KiB pages allocated", anonAlloc);
  row("THP faults (2 MiB allocated)", thpAlloc);
  row("copy-on-write copies", cow);
  row("THP PMD splits", splits);
  row("parent rss before exit (pages)", rssBeforeExit);
  row("child rss before exit (pages)", childRss);
  row("RAM pages holding data", dataPages);
  row("RAM pages after exit", phys.dataPages());
  out << "  mirror notifier invalidations:\n";
  for (unsigned e = 0; e < kMmuNotifierEventCount; ++e) {
    if (events.counts[e] == 0) continue;
    out << "    " << std::setw(32) << mmuNotifierEventName(static_cast<MmuNotifierEvent>(e))
        << events.counts[e] << '\n';
  }
  out << "  data checks: " << (ok ? "passed" : "FAILED") << '\n';

  if (!opt.statsJson.empty()) {
    nlohmann::json root;
    parent.stats().mergeInto(root);
    child.stats().mergeInto(root);
    phys.stats().mergeInto(root);
    if (const std::string err = writeFileAtomically(opt.statsJson, root.dump(2) + "\n"); !err.empty()) {
      out << "  stats NOT written: " << err << '\n';
      return 1;
    }
    out << "  stats written to " << opt.statsJson << '\n';
  }
  return ok ? 0 : 1;
}

}  // namespace hmmsim
