#pragma once
// A device-private memory test driver for the fault-path and GUP tests.

#include <cstdint>
#include <vector>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"

namespace hmmsim::faulttest {

/// A device-private memory test driver: one pgmap of a few frames; migrateToRam copies the
/// device page back into a new system page and switches the pte, like dmirror's
/// dmirror_devmem_fault does through migrate_vma (reduced to the one page).
class TestDevice : public DevPagemapOps {
 public:
  TestDevice(PhysMem& pm, const void* owner, std::uint64_t pages = 16,
             MemoryType type = MemoryType::DevicePrivate)
      : pm_(pm) {
    pgmap.type = type;
    pgmap.ops = this;
    pgmap.owner = owner;
    pgmap.nrPages = pages;
    pgmap.pfnFirst = pm.addDeviceRange(&pgmap, pages, this);
  }

  /// Put `value` at offset 0 of a fresh device page and install a device-private entry for it
  /// at `va` of `mm` (what migrate_vma_pages would leave behind), holding a ref and a mapcount.
  Pfn install(Mm& mm, Va va, std::uint64_t value, bool writable) {
    const Pfn dpfn = pgmap.pfnFirst + next_++;
    pm_.zoneDevicePageInit(dpfn);
    Frame& f = pm_.frame(dpfn);
    f.clear(kFrameLocked);
    f.set(kFrameAnon);
    f.mapcount = 1;
    pm_.write(paOf(dpfn), &value, sizeof value);
    Vma* vma = mm.vmaLookup(va);
    REQUIRE(vma);
    f.mapping = &mm.anonVmaPrepare(*vma);  // migrated anonymous memory has an anon_vma
    f.index = vma->linearPageIndex(va);
    Pte* slot = mm.pageTable().ptePtr(va, true);
    REQUIRE(slot);
    REQUIRE(slot->isNone());
    *slot = Pte::mkDevicePrivate(dpfn, writable);
    mm.addMmCounter(MmCounter::AnonPages, 1);
    return dpfn;
  }

  /// For a DeviceCoherent pgmap: a present, CPU-accessible pte of a fresh device page holding
  /// `value` (what migrating anonymous memory to coherent device memory leaves).
  Pfn installPresent(Mm& mm, Va va, std::uint64_t value, bool writable) {
    const Pfn dpfn = pgmap.pfnFirst + next_++;
    pm_.zoneDevicePageInit(dpfn);
    Frame& f = pm_.frame(dpfn);
    f.clear(kFrameLocked);
    f.set(kFrameAnon);
    f.set(kFrameAnonExclusive);
    f.mapcount = 1;
    pm_.write(paOf(dpfn), &value, sizeof value);
    Vma* vma = mm.vmaLookup(va);
    REQUIRE(vma);
    f.mapping = &mm.anonVmaPrepare(*vma);  // folio_add_new_anon_rmap: owner and index
    f.index = vma->linearPageIndex(va);
    Pte* slot = mm.pageTable().ptePtr(va, true);
    REQUIRE(slot);
    REQUIRE(slot->isNone());
    *slot = Pte::mkPresent(dpfn, writable).mkNoExec();
    mm.addMmCounter(MmCounter::AnonPages, 1);
    return dpfn;
  }

  VmFaultResult migrateToRam(VmFault& vmf) override {
    calls.push_back(*vmf.page);
    sawLocked = pm_.frame(*vmf.page).isLocked();
    sawOrigPte = (vmf.flags & kFaultFlagOrigPteValid) && vmf.origPte.isDevicePrivateEntry();
    Mm& mm = *vmf.vma->vmMm;
    const auto rpfn = pm_.allocFrame(0);
    if (!rpfn) return VmFaultResult::Oom;
    pm_.copyFrame(*rpfn, *vmf.page);
    Frame& rf = pm_.frame(*rpfn);
    rf.set(kFrameAnon);
    rf.set(kFrameAnonExclusive);
    rf.mapcount = 1;
    Pte* slot = mm.pageTable().ptePtr(vmf.address, false);
    const bool w = slot->isWritableDevicePrivateEntry();
    *slot = Pte::mkPresent(*rpfn, w).mkNoExec();
    Frame& df = pm_.frame(*vmf.page);
    --df.mapcount;
    pm_.putPage(*vmf.page);  // the entry's reference; the fault path still holds one
    return VmFaultResult::None;
  }

  void folioFree(Pfn pfn) override { freed.push_back(pfn); }

  DevPagemap pgmap;
  std::vector<Pfn> calls;
  std::vector<Pfn> freed;
  bool sawLocked = false;
  bool sawOrigPte = false;

 private:
  PhysMem& pm_;
  std::uint64_t next_ = 0;
};

}  // namespace hmmsim::faulttest
