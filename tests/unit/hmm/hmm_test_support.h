#pragma once
// Shared fixture of the hmm tests: a small machine, one Mm, a device memory with a dmirror-like
// migrate_to_ram, and dmirror-like migration helpers built only on the public hmm/ API (the way
// the dmirror device will use it).

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "hmm/hmm.h"
#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"

namespace hmmsim::test {

struct Event {
  MmuNotifierEvent event;
  Va start, end;
  const void* owner;
};

/// Records every invalidation (with its owner) and obeys the seq protocol.
class RecordingNotifier : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    events.push_back(Event{range.event, range.start, range.end, range.owner});
    sub.setSeq(curSeq);
    return true;
  }
  std::size_t count(MmuNotifierEvent e) const {
    std::size_t n = 0;
    for (const Event& ev : events) n += ev.event == e;
    return n;
  }
  std::vector<Event> events;
};

inline PhysMemParams machine(std::uint64_t bytes) {
  PhysMemParams p;
  p.ramSize = bytes;
  return p;
}

struct HmmFixture {
  static inline const int kDev0 = 0;  // owner cookies: addresses of these
  static inline const int kDev1 = 0;

  static DeviceMemoryParams devParams(MemoryType devType) {
    DeviceMemoryParams dp;
    dp.type = devType;
    dp.chunkBytes = 16ull << 20;
    dp.capacityBytes = 64ull << 20;
    return dp;
  }

  explicit HmmFixture(std::uint64_t ramBytes = 512ull << 20, MmParams params = {},
                      MemoryType devType = MemoryType::DevicePrivate)
      : pm(machine(ramBytes)),
        copier(pm),
        dev(std::make_unique<DeviceMemory>(pm, devParams(devType), &kDev0, "dev0")),
        mm(std::make_unique<Mm>(pm, "mm", params)) {
    dev->setMigrateToRam([this](VmFault& vmf) { return migrateToRam(vmf); });
    REQUIRE(mmuIntervalNotifierInsert(sub, *mm, Va(0), ~0ull & ~(kPageSize - 1), rec) == Errno::Ok);
  }
  ~HmmFixture() {
    if (sub.inserted()) sub.remove();
  }

  const void* owner() const { return &kDev0; }

  Va mapAnon(std::uint64_t len, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    VaResult r = mm->mmap(Va(0), len, prot, flags);
    REQUIRE(r.ok());
    return r.addr;
  }
  void store(Va va, std::uint64_t v) { REQUIRE(copyToUser(*mm, va, &v, sizeof v) == Errno::Ok); }
  std::uint64_t load(Va va) {
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(*mm, &v, va, sizeof v) == Errno::Ok);
    return v;
  }
  static std::uint64_t loadIn(Mm& m, Va va) {
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(m, &v, va, sizeof v) == Errno::Ok);
    return v;
  }
  void fillPattern(Va start, std::uint64_t pages, std::uint64_t base = 0) {
    for (std::uint64_t i = 0; i < pages; ++i) store(start + (i << kPageShift), base + i);
  }
  Pte pteAt(Va va) { return mm->pageTable().lookup(va).pte; }
  PtLevel levelAt(Va va) { return mm->pageTable().lookup(va).level; }
  /// First 8 bytes of frame `pfn` (device frames hold real bytes).
  std::uint64_t frameWord(Pfn pfn) {
    std::uint64_t v = 0;
    pm.read(paOf(pfn), &v, sizeof v);
    return v;
  }

  /// hmmRangeFault over [start, end) with the given default flags, under the mmap read lock.
  HmmStatus rangeFault(Va start, Va end, std::vector<unsigned long>& pfns, unsigned long defaultFlags,
                       const void* devOwner = nullptr, HmmStats* stats = nullptr) {
    pfns.assign((end - start) >> kPageShift, 0);
    HmmRange r;
    r.notifier = &sub;
    r.notifierSeq = sub.readBegin();
    r.start = start;
    r.end = end;
    r.hmmPfns = pfns.data();
    r.defaultFlags = defaultFlags;
    r.devPrivateOwner = devOwner;
    MmapReadLock l(*mm);
    return hmmRangeFault(r, stats);
  }

  /// dmirror_migrate_to_device: SELECT_SYSTEM [| COMPOUND], copy, pages, finalize.
  /// Returns the src array after migrate_vma_pages (MIGRATE = migrated).
  std::vector<unsigned long> migrateToDevice(Va start, Va end, bool compound = false,
                                             Errno* setupErr = nullptr) {
    const std::uint64_t n = (end - start) >> kPageShift;
    std::vector<unsigned long> src(n), dst(n);
    MmapReadLock l(*mm);
    MigrateVma a;
    a.vma = mm->vmaLookup(start);
    a.src = src.data();
    a.dst = dst.data();
    a.start = start;
    a.end = end;
    a.pgmapOwner = owner();
    a.flags = MIGRATE_VMA_SELECT_SYSTEM | (compound ? MIGRATE_VMA_SELECT_COMPOUND : 0);
    const Errno err = migrateVmaSetup(a);
    if (setupErr) *setupErr = err;
    if (err != Errno::Ok) return src;
    lastCpages = a.cpages;
    allocAndCopy(a, src, dst, /*toDevice=*/true);
    migrateVmaPages(a);
    migrateVmaFinalize(a);
    return src;
  }

  /// dmirror_migrate_to_system: SELECT_DEVICE_PRIVATE (or COHERENT) | COMPOUND.
  std::vector<unsigned long> migrateToSystem(Va start, Va end) {
    const std::uint64_t n = (end - start) >> kPageShift;
    std::vector<unsigned long> src(n), dst(n);
    MmapReadLock l(*mm);
    MigrateVma a;
    a.vma = mm->vmaLookup(start);
    a.src = src.data();
    a.dst = dst.data();
    a.start = start;
    a.end = end;
    a.pgmapOwner = owner();
    a.flags = (dev->type() == MemoryType::DevicePrivate ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE
                                                        : MIGRATE_VMA_SELECT_DEVICE_COHERENT) |
              MIGRATE_VMA_SELECT_COMPOUND;
    REQUIRE(migrateVmaSetup(a) == Errno::Ok);
    allocAndCopy(a, src, dst, /*toDevice=*/false);
    migrateVmaPages(a);
    migrateVmaFinalize(a);
    return src;
  }

  void allocAndCopy(MigrateVma& a, std::vector<unsigned long>& src, std::vector<unsigned long>& dst,
                    bool toDevice) {
    for (unsigned long i = 0; i < a.npages; ++i) {
      if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
      const auto spfn = migratePfnToPfn(src[i]);
      const bool compound = (src[i] & MIGRATE_PFN_COMPOUND) != 0;
      const unsigned order = compound ? PhysMem::kPmdOrder : 0;
      std::optional<Pfn> d;
      if (toDevice) {
        d = compound && !failCompound ? dev->allocFolio() : std::nullopt;
        if (compound && !d) {
          // dmirror's fallback: 4 KiB pages for every subpage.
          for (unsigned long j = 0; j < kPagesPerPmd; ++j) {
            auto p = dev->allocPage();
            REQUIRE(p);
            if (spfn)
              copier.copyFolio(*p, *spfn + j);
            else
              copier.clearFolio(*p);
            dst[i + j] = migratePfn(*p);
          }
          i += kPagesPerPmd - 1;
          continue;
        }
        if (!d) d = dev->allocPage();
      } else {
        if (compound && failCompound) {
          // dmirror's fallback when no system THP is free: 4 KiB pages for every subpage.
          for (unsigned long j = 0; j < kPagesPerPmd; ++j) {
            auto p = migrateAllocSystemFolio(pm, 0);
            REQUIRE(p);
            copier.copyFolio(*p, *spfn + j);
            dst[i + j] = migratePfn(*p);
          }
          i += kPagesPerPmd - 1;
          continue;
        }
        d = migrateAllocSystemFolio(pm, order);
      }
      REQUIRE(d);
      if (spfn)
        copier.copyFolio(*d, *spfn, order);
      else
        copier.clearFolio(*d, order);
      dst[i] = migratePfn(*d) | (compound ? MIGRATE_PFN_COMPOUND : 0);
    }
  }

  /// dmirror_devmem_fault: migrate the faulting page (or its PMD) back to system memory.
  VmFaultResult migrateToRam(VmFault& vmf) {
    ++migrateToRamCalls;
    const Pfn page = *vmf.page;
    const bool pmdMapped = pm.folioOrder(page) == PhysMem::kPmdOrder && levelAt(vmf.address) == PtLevel::Pmd;
    const Va start = pmdMapped ? vmf.address.alignDown(kPmdSize) : vmf.address;
    const Va end = pmdMapped ? start + kPmdSize : start + kPageSize;
    const std::uint64_t n = (end - start) >> kPageShift;
    std::vector<unsigned long> src(n), dst(n);
    MigrateVma a;
    a.vma = vmf.vma;
    a.src = src.data();
    a.dst = dst.data();
    a.start = start;
    a.end = end;
    a.pgmapOwner = owner();
    a.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_COMPOUND;
    a.faultPage = page;
    if (migrateVmaSetup(a) != Errno::Ok) return VmFaultResult::Sigbus;
    allocAndCopy(a, src, dst, /*toDevice=*/false);
    migrateVmaPages(a);
    migrateVmaFinalize(a);
    return VmFaultResult::None;
  }

  PhysMem pm;
  MigrateCopier copier;
  std::unique_ptr<DeviceMemory> dev;  // before mm: the mm's teardown frees device pages into it
  std::unique_ptr<Mm> mm;
  RecordingNotifier rec;
  MmuIntervalNotifier sub;
  unsigned migrateToRamCalls = 0;
  unsigned long lastCpages = 0;
  bool failCompound = false;
};

}  // namespace hmmsim::test
