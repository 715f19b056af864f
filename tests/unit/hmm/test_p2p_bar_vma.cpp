// P2pBarManager behind a special vma (RFC 3/5): an exporter driver whose device-file mmap makes a
// VM_IO|VM_PFNMAP vma with p2pMap/p2pUnmap, BarVmaRevoker as its revoke hook, and importers that
// are real MmuIntervalNotifiers on the mm: they record every invalidation and obey it by calling
// p2pUnmap for exactly the pages they mapped in the range, as the RFC demands.

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "hmm/p2p_bar_vma_revoker.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/device.h"
#include "tests/unit/hmm/p2p_bar_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

/// An exporting driver: device-file mmap -> special vma whose p2pMap/p2pUnmap use the BAR manager.
class BarExporter final : public FileOperations, public VmOperations {
 public:
  explicit BarExporter(const P2pBarParams& p) : bar(p, &revoker, "test.gpu0.bar1") {}

  Errno mmap(File&, Vma& vma) override {
    vma.vmOps = this;
    vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
    revoker.track(vma);
    return Errno::Ok;
  }
  void open(Vma& vma) override { revoker.track(vma); }
  void close(Vma& vma) override { revoker.untrack(vma); }
  bool hasFault() const override { return false; }  // the CPU never maps it
  bool hasP2p() const override { return true; }
  Errno p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool /*write*/) override {
    const std::uint64_t n = (end - start) >> kPageShift;
    scratch.resize(n);
    const BarMapResult r = bar.map(importer, revoker.devPageOf(vma, start), n, scratch.data());
    if (!r.ok()) return r.err();
    for (std::uint64_t i = 0; i < n; ++i) pa[i] = DmaAddr(scratch[i].value());
    return Errno::Ok;
  }
  Errno p2pUnmap(Vma& vma, Device& importer, Va start, Va end, const DmaAddr* /*pa*/) override {
    const BarUnmapStatus s = bar.unmap(importer, revoker.devPageOf(vma, start), (end - start) >> kPageShift);
    return s == BarUnmapStatus::Unmapped ? Errno::Ok : Errno::Inval;
  }
  const char* name() const override { return "bar_exporter"; }

  BarVmaRevoker revoker;
  P2pBarManager bar;
  std::vector<Pa> scratch;
};

struct Inval {
  MmuNotifierEvent event;
  Va start, end;
};

/// An importer: an interval notifier over one range of the mm; its "device page table" is
/// va -> address per page; an invalidation unmaps (p2pUnmap) every mapped run inside it.
class Importer final : public MmuIntervalNotifierOps {
 public:
  Importer(const std::string& name, Mm& mm, Va start, std::uint64_t len) : dev(name), mm_(mm) {
    REQUIRE(mmuIntervalNotifierInsert(sub, mm, start, len, *this) == Errno::Ok);
  }
  ~Importer() {
    if (sub.inserted()) sub.remove();
  }
  Errno map(Va start, std::uint64_t npages) {
    Vma* vma = mm_.vmaLookup(start);
    REQUIRE(vma);
    std::vector<DmaAddr> pa(npages);
    const Errno r = vma->vmOps->p2pMap(*vma, dev, start, start + (npages << kPageShift), pa.data(), true);
    if (r == Errno::Ok)
      for (std::uint64_t i = 0; i < npages; ++i) pt[start + (i << kPageShift)] = pa[i];
    return r;
  }
  bool invalidate(MmuIntervalNotifier& s, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    invals.push_back({range.event, range.start, range.end});
    s.setSeq(curSeq);
    // Unmap each maximal run of mapped pages in the range with one p2pUnmap (no lock held).
    auto it = pt.lower_bound(range.start);
    while (it != pt.end() && it->first < range.end) {
      const Va runStart = it->first;
      Va runEnd = runStart + kPageSize;
      auto next = std::next(it);
      while (next != pt.end() && next->first == runEnd && runEnd < range.end) {
        runEnd += kPageSize;
        ++next;
      }
      Vma* vma = mm_.vmaLookup(runStart);
      REQUIRE(vma);
      CHECK(vma->vmOps->p2pUnmap(*vma, dev, runStart, runEnd, &it->second) == Errno::Ok);
      ++unmaps;
      it = pt.erase(it, next);
    }
    return true;
  }
  std::size_t count(MmuNotifierEvent e) const {
    std::size_t n = 0;
    for (const Inval& i : invals) n += i.event == e;
    return n;
  }

  Device dev;
  MmuIntervalNotifier sub;
  std::map<Va, DmaAddr> pt;
  std::vector<Inval> invals;
  int unmaps = 0;

 private:
  Mm& mm_;
};

PhysMemParams ram() {
  PhysMemParams p;
  p.ramSize = 64ull << 20;
  return p;
}

struct Platform {
  explicit Platform(const P2pBarParams& p) : pm(ram()), mm(std::make_unique<Mm>(pm, "mm")), exporter(p) {
    file = openDeviceFile(pm, exporter, FMODE_READ | FMODE_WRITE, "gpu0");
  }
  Va mapDevice(std::uint64_t bytes, std::uint64_t offset = 0) {
    const VaResult r = mm->mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file, offset);
    REQUIRE(r.ok());
    return r.addr;
  }
  PhysMem pm;
  std::unique_ptr<Mm> mm;
  BarExporter exporter;
  std::shared_ptr<File> file;
};

}  // namespace

TEST_CASE(
    "p2p bar vma: reclaim raises MMU_NOTIFY_CLEAR over exactly the importer's pages, with no CPU pte, and "
    "p2pUnmap gives them back") {
  Platform f(smallBar(1, 4));
  const Va va = f.mapDevice(4 * (2ull << 20));
  Importer a("nic0", *f.mm, va, 4 * (2ull << 20));
  Importer b("nvme0", *f.mm, va, 4 * (2ull << 20));
  REQUIRE(a.map(va + 3 * kPageSize, 2) == Errno::Ok);  // device pages 3, 4 (chunk 0)
  const DmaAddr aFirst = a.pt.begin()->second;
  CHECK(aFirst.value() == f.exporter.bar.params().barPa.value() + 3 * kPageSize);
  CHECK(f.mm->pageTable().lookup(va + 3 * kPageSize).level == PtLevel::None);  // no CPU mapping

  REQUIRE(b.map(va + (2ull << 20) + kPageSize, 1) == Errno::Ok);  // chunk 1: reclaims the only window
  REQUIRE(a.invals.size() == 1);
  CHECK(a.invals[0].event == MmuNotifierEvent::Clear);
  CHECK(a.invals[0].start == va + 3 * kPageSize);
  CHECK(a.invals[0].end == va + 5 * kPageSize);
  CHECK(a.pt.empty());
  CHECK(a.unmaps == 1);
  CHECK(b.invals.size() == 1);  // b watches the same range: it sees the round, holds nothing there
  CHECK(f.exporter.bar.heldPages(a.dev) == 0);
  CHECK(f.exporter.bar.heldPages(b.dev) == 1);
  CHECK(f.exporter.revoker.clearRounds() == 1);
  CHECK(f.mm->notifierSubscriptions().stats().counterValue("invalidate_start_clear") == 1);
  // b got the same window, so a's old address now reaches another device page.
  const DevPage p3(3);
  const BarAccessCheck stale = f.exporter.bar.checkAccess(Pa(aFirst.value()), kPageSize, &p3);
  CHECK_FALSE(stale.legal);
  CHECK(stale.cause == BarEvent::Reclaimed);
  f.mm->exitMmap();
}

TEST_CASE(
    "p2p bar vma: after its window was reclaimed the importer maps the range again (predictability under "
    "LRU)") {
  Platform f(smallBar(1, 4));
  const Va va = f.mapDevice(4 * (2ull << 20));
  Importer a("nic0", *f.mm, va, 4 * (2ull << 20));
  Importer b("nvme0", *f.mm, va, 4 * (2ull << 20));
  REQUIRE(a.map(va, 4) == Errno::Ok);
  REQUIRE(b.map(va + 2 * (2ull << 20), 4) == Errno::Ok);
  CHECK(a.pt.empty());
  CHECK(a.map(va, 4) == Errno::Ok);  // maps again; b is revoked in turn
  CHECK(b.pt.empty());
  CHECK(b.count(MmuNotifierEvent::Clear) == 2);
  CHECK(f.exporter.bar.heldPages(a.dev) == 4);
  f.mm->exitMmap();
}

TEST_CASE("p2p bar vma: refuse-when-busy makes p2pMap return -ENOSPC and nobody is invalidated") {
  Platform f(smallBar(1, 4, BarPolicy::RefuseWhenBusy));
  const Va va = f.mapDevice(4 * (2ull << 20));
  Importer a("nic0", *f.mm, va, 4 * (2ull << 20));
  Importer b("nvme0", *f.mm, va, 4 * (2ull << 20));
  REQUIRE(a.map(va, 1) == Errno::Ok);
  CHECK(b.map(va + (2ull << 20), 1) == Errno::NoSpc);
  CHECK(a.invals.empty());
  CHECK(a.pt.size() == 1);
  f.mm->exitMmap();
}

TEST_CASE("p2p bar vma: a device page mapped by two vmas is revoked in both virtual ranges") {
  Platform f(smallBar(1, 4));
  const Va v1 = f.mapDevice(2ull << 20);
  const Va v2 = f.mapDevice(2ull << 20);  // same file offset 0: same device pages
  Importer a("nic0", *f.mm, v1, 2ull << 20);
  Importer b("nvme0", *f.mm, v2, 2ull << 20);
  REQUIRE(a.map(v1 + 8 * kPageSize, 1) == Errno::Ok);
  REQUIRE(b.map(v2 + 8 * kPageSize, 1) == Errno::Ok);
  CHECK(a.pt.begin()->second == b.pt.begin()->second);
  const BarRevokeResult r = f.exporter.bar.revokeRange(DevPage(8), 1);
  CHECK(r.pagesRevoked == 1);
  CHECK(r.pagesPinned == 0);
  REQUIRE(a.invals.size() == 1);
  REQUIRE(b.invals.size() == 1);
  CHECK(a.invals[0].start == v1 + 8 * kPageSize);
  CHECK(b.invals[0].start == v2 + 8 * kPageSize);
  CHECK(f.exporter.bar.heldPages() == 0);
  f.mm->exitMmap();
}

TEST_CASE("p2p bar vma: the vma's file offset selects the device pages that are revoked") {
  Platform f(smallBar(2, 4));
  const Va va = f.mapDevice(2ull << 20, 2ull << 20);  // offset 2 MiB: device pages 512..1023
  Importer a("nic0", *f.mm, va, 2ull << 20);
  REQUIRE(a.map(va + kPageSize, 2) == Errno::Ok);
  BarWindowIdx w;
  CHECK(f.exporter.bar.windowOf(DevPage(kWinPages + 1), &w));
  f.exporter.bar.revokeRange(DevPage(kWinPages + 2), 1);
  REQUIRE(a.invals.size() == 1);
  CHECK(a.invals[0].start == va + 2 * kPageSize);
  CHECK(a.invals[0].end == va + 3 * kPageSize);
  CHECK(a.pt.size() == 1);
  f.mm->exitMmap();
}

TEST_CASE("p2p bar vma: hot-unplug invalidates every importer and later p2pMap returns -ENODEV") {
  Platform f(smallBar(2, 4));
  const Va va = f.mapDevice(4 * (2ull << 20));
  Importer a("nic0", *f.mm, va, 4 * (2ull << 20));
  REQUIRE(a.map(va, 2) == Errno::Ok);
  REQUIRE(a.map(va + (2ull << 20), 2) == Errno::Ok);
  const BarRevokeResult r = f.exporter.bar.unplug();
  CHECK(r.hookCalls == 2);
  CHECK(r.pagesPinned == 0);
  CHECK(a.count(MmuNotifierEvent::Clear) == 2);
  CHECK(a.pt.empty());
  CHECK(a.map(va, 1) == Errno::NoDev);
  f.mm->exitMmap();
}

TEST_CASE(
    "p2p bar vma: a device reset invalidates importers, p2pMap returns -EIO during it and works after") {
  Platform f(smallBar(2, 4));
  const Va va = f.mapDevice(4 * (2ull << 20));
  Importer a("nic0", *f.mm, va, 4 * (2ull << 20));
  REQUIRE(a.map(va, 2) == Errno::Ok);
  f.exporter.bar.resetBegin();
  CHECK(a.pt.empty());
  CHECK(a.map(va, 1) == Errno::Io);
  f.exporter.bar.resetEnd();
  CHECK(a.map(va, 1) == Errno::Ok);
  f.mm->exitMmap();
}

TEST_CASE("p2p bar vma: munmap of the special vma makes the importer give back its pages") {
  Platform f(smallBar(2, 4));
  const Va va = f.mapDevice(2ull << 20);
  Importer a("nic0", *f.mm, va, 2ull << 20);
  REQUIRE(a.map(va, 3) == Errno::Ok);
  REQUIRE(f.mm->munmap(va, 2ull << 20) == Errno::Ok);
  CHECK(a.count(MmuNotifierEvent::Unmap) == 1);
  CHECK(f.exporter.bar.heldPages() == 0);
  CHECK(f.exporter.revoker.trackedCount() == 0);  // close() untracked it
  f.mm->exitMmap();
}

TEST_CASE(
    "p2p bar vma: zap_page_range_single raises a CLEAR round clamped to the vma, also on a VM_MIXEDMAP vma") {
  Platform f(smallBar(2, 4));
  const Va va = f.mapDevice(2ull << 20);
  Importer a("nic0", *f.mm, va, 4ull << 20);
  Vma* vma = f.mm->vmaLookup(va);
  REQUIRE(vma);
  zapPageRangeSingle(*vma, va + (1ull << 20), 2ull << 20);  // runs past the vma's end: clamped
  REQUIRE(a.invals.size() == 1);
  CHECK(a.invals[0].event == MmuNotifierEvent::Clear);
  CHECK(a.invals[0].start == va + (1ull << 20));
  CHECK(a.invals[0].end == va + (2ull << 20));
  zapPageRangeSingle(*vma, va + (2ull << 20), kPageSize);  // wholly outside: nothing
  CHECK(a.invals.size() == 1);
  vma->vmFlags = (vma->vmFlags & ~(VM_IO | VM_PFNMAP)) | VM_MIXEDMAP;
  zapPageRangeSingle(*vma, va, kPageSize);
  CHECK(a.invals.size() == 2);
  f.mm->exitMmap();
}
