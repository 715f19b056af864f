#include "models/cpu_mmu/vm_fault.h"

namespace hmmsim {

Errno vmFaultToErrno(VmFaultResult r) {
  // vm_fault_to_errno(): OOM -> -ENOMEM; SIGBUS/SIGSEGV -> -EFAULT; HWPOISON -> -EHWPOISON
  // (hmmsim has no EHWPOISON in sim/errno.h and folds it into EFAULT).
  if (hasAny(r, VmFaultResult::Oom)) return Errno::NoMem;
  if (hasAny(r, VmFaultResult::Hwpoison | VmFaultResult::HwpoisonLarge)) return Errno::Fault;
  if (hasAny(r, VmFaultResult::Sigbus | VmFaultResult::Sigsegv)) return Errno::Fault;
  return Errno::Ok;
}

VmEventCounters::VmEventCounters(StatsGroup& g)
    : pgfault(g.counter("pgfault", "faults", "handle_mm_fault calls (PGFAULT)")),
      pgmajfault(
          g.counter("pgmajfault", "faults", "faults that read the page into the page cache (PGMAJFAULT)")),
      zeroPageMap(
          g.counter("zero_page_map", "pages", "anonymous read faults that mapped the shared zero page")),
      anonFaultAlloc(g.counter("anon_fault_alloc", "pages", "anonymous pages allocated by write faults")),
      cowFault(
          g.counter("cow_fault", "pages", "COW copies made by wp_page_copy (incl. zero page -> private)")),
      cowReuse(g.counter("cow_reuse", "faults", "write faults that reused an exclusively owned page")),
      thpFaultAlloc(g.counter("thp_fault_alloc", "folios",
                              "2 MiB anonymous folios allocated at fault (THP_FAULT_ALLOC)")),
      thpFaultFallback(g.counter("thp_fault_fallback", "faults",
                                 "THP-eligible faults that fell back to 4 KiB (THP_FAULT_FALLBACK)")),
      thpZeroPageAlloc(
          g.counter("thp_zero_page_alloc", "folios", "huge zero page allocations (THP_ZERO_PAGE_ALLOC)")),
      thpSplitPmd(
          g.counter("thp_split_pmd", "splits", "PMD mappings split into PTE mappings (THP_SPLIT_PMD)")),
      thpCollapseAlloc(g.counter("thp_collapse_alloc", "folios",
                                 "2 MiB folios allocated by collapse (THP_COLLAPSE_ALLOC)")),
      hugetlbFault(g.counter("hugetlb_fault", "pages", "hugetlb faults that mapped a huge page")),
      devicePrivateFault(g.counter("device_private_fault", "faults",
                                   "faults on device-private entries handed to migrate_to_ram")),
      deviceExclusiveRestore(g.counter("device_exclusive_restore", "faults",
                                       "device-exclusive entries restored by a CPU fault")),
      migrationEntryWait(
          g.counter("migration_entry_wait", "faults", "faults that waited on a migration entry")),
      gupPages(
          g.counter("gup_pages", "pages", "pages returned with a reference by get_user_pages (FOLL_GET)")),
      gupPins(g.counter("gup_pins", "pages", "pages pinned by pin_user_pages (FOLL_PIN)")),
      gupUnpins(g.counter("gup_unpins", "pages", "pages unpinned (unpin_user_page)")),
      gupLongtermMigrate(
          g.counter("gup_longterm_migrate", "pages", "pages migrated away for FOLL_LONGTERM pins")) {}

}  // namespace hmmsim
