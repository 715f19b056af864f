#pragma once
// get_user_pages / pin_user_pages (mm/gup.c): take references or DMA pins on the pages behind a
// user address range, faulting them in as needed.
//
// Models: the FOLL_* flags, check_vma_flags, follow_page + faultin_page loop (a non-present,
// device-private, migration or device-exclusive entry, or a read-only entry for FOLL_WRITE, is
// faulted through handleMmFault and the walk repeats), FOLL_FORCE writes to read-only private
// mappings (COW), the COW-unshare for read-only pins of shared anonymous pages
// (gup_must_unshare -> FAULT_FLAG_UNSHARE), FOLL_LONGTERM's refusal of pages that may not be long-term
// pinned (folio_is_longterm_pinnable): device-coherent pages are migrated to system RAM first
// (check_and_migrate_movable_pages -> migrate_device_coherent_folio), fs-dax vmas are refused;
// device-private pages are never returned (they are not present: GUP faults and migrateToRam
// brings them back), PCI p2pdma pages only with FOLL_PCI_P2PDMA; the zero page is neither
// referenced nor pinned by FOLL_PIN (pin_user_pages has not pinned ZERO_PAGE since 6.5).
// The fast variants walk without faulting and fall back to the slow path for the rest.
//
// Reference model: FOLL_GET adds 1 to the folio's refcount; FOLL_PIN adds
// GUP_PIN_COUNTING_BIAS (1024) to it, the kernel's rule for small folios, and
// folio_maybe_dma_pinned() is refcount >= 1024. hmmsim uses that rule for large folios too
// (the kernel keeps a separate _pincount there, which Frame's 64-byte budget has no room for);
// the only difference is a false "maybe pinned" with more than 1023 plain references, which
// no hmmsim workload reaches. unpin subtracts the bias.
// Leaves out: FOLL_NOFAULT/uffd, hugetlb gigantic-page pin accounting, memcg, MMF_HAS_PINNED
// is implied by any pinned page (fork checks folioMaybeDmaPinned per page).
// Timing: none here; callers charge time.

#include <cstddef>
#include <cstdint>

#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

// ---- FOLL_* (enum in include/linux/mm_types.h, internal ones from mm/internal.h) ----
inline constexpr unsigned kFollWrite = 1u << 0;  ///< FOLL_WRITE: need a writable mapping
inline constexpr unsigned kFollGet = 1u
                                     << 1;  ///< FOLL_GET: take a reference (internal; getUserPages sets it)
inline constexpr unsigned kFollDump = 1u << 2;   ///< FOLL_DUMP: core dump: zero/special pages -> skipped
inline constexpr unsigned kFollForce = 1u << 3;  ///< FOLL_FORCE: ignore vma protection (ptrace); COW on write
inline constexpr unsigned kFollNowait = 1u << 4;  ///< FOLL_NOWAIT: do not wait on a migration entry (Again)
inline constexpr unsigned kFollNofault = 1u
                                         << 5;  ///< FOLL_NOFAULT: never fault; stop at the first missing page
inline constexpr unsigned kFollHwpoison =
    1u << 6;  ///< FOLL_HWPOISON: report poisoned pages as EHWPOISON (folded into Fault)
inline constexpr unsigned kFollAnon = 1u << 7;      ///< FOLL_ANON: only anonymous vmas (else Fault)
inline constexpr unsigned kFollLongterm = 1u << 8;  ///< FOLL_LONGTERM: pin for an unbounded time (RDMA, VFIO)
inline constexpr unsigned kFollSplitPmd =
    1u << 9;  ///< FOLL_SPLIT_PMD: split a huge PMD before returning its pages
inline constexpr unsigned kFollPciP2pdma = 1u << 10;  ///< FOLL_PCI_P2PDMA: PCI p2pdma pages may be returned
inline constexpr unsigned kFollInterruptible = 1u << 11;  ///< FOLL_INTERRUPTIBLE
inline constexpr unsigned kFollPin = 1u << 16;     ///< FOLL_PIN: DMA pin (internal; pinUserPages sets it)
inline constexpr unsigned kFollRemote = 1u << 17;  ///< FOLL_REMOTE: mm is not current's

/// The outcome of a GUP call, the kernel's `long` return split in two: `nrPages` pages were
/// taken (pages[0..nrPages) are valid and hold a reference/pin each); `err` is set only when no
/// page was taken (nrPages == 0) and says why. As in the kernel, an error after the first page
/// ends the walk early and reports the pages taken so far, without an error.
struct GupResult {
  std::size_t nrPages = 0;
  Errno err = Errno::Ok;
  bool ok() const { return err == Errno::Ok; }
};

/// get_user_pages_remote()/get_user_pages(): take a reference (FOLL_GET) on each of the
/// `nrPages` pages from `start` (page aligned) in `mm`, faulting as needed, and store their pfns in
/// `pages` (may be null: then pages are only faulted in and no reference is taken, like
/// populate). `gupFlags`: kFollWrite, kFollForce, kFollNowait, kFollNofault, kFollAnon,
/// kFollDump, kFollSplitPmd, kFollPciP2pdma, kFollLongterm (then pages must be non-null).
/// Errors (only when nothing was taken):
///   Fault  no vma at the address; VM_IO/VM_PFNMAP vma; access not allowed by the vma
///          (write without VM_WRITE and no FOLL_FORCE, read without VM_READ and no FOLL_FORCE,
///          FOLL_FORCE write without VM_MAYWRITE, FOLL_FORCE write to a shared vma); the fault
///          returned Sigsegv/Sigbus/Hwpoison; a special pte (pfn with no page) in a MIXEDMAP vma;
///          a PCI p2pdma page without kFollPciP2pdma; FOLL_ANON on a non-anonymous vma;
///          FOLL_NOFAULT on a missing page,
///   NoMem  the fault returned Oom,
///   Again  FOLL_NOWAIT and a migration entry was found,
///   OpNotSupp FOLL_LONGTERM on an fs-dax vma,
///   Busy   FOLL_LONGTERM could not migrate a device-coherent page away (another pin or
///          driver reference holds it, or it is a compound folio),
///   Inval  kFollPin passed to getUserPages, FOLL_LONGTERM with null `pages`, `start` not page
///          aligned (the kernel rounds it down; hmmsim asks callers to say what they mean).
/// nrPages == 0 returns {0, Ok} and touches nothing, as the kernel returns 0.
/// Locking: takes the mmap read lock unless the caller already holds the mmap lock (either mode).
GupResult getUserPages(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages);
/// pin_user_pages_remote()/pin_user_pages(): like getUserPages with FOLL_PIN instead of FOLL_GET
/// (pages must be non-null; the caller must not pass kFollGet). A read-only pin of an anonymous
/// page that is not exclusively owned (mapped by a parent and a child after fork) first unshares
/// it (FAULT_FLAG_UNSHARE) so the pinned page is the one this mm keeps seeing. Release with
/// unpinUserPage(s). Same errors, plus Inval for kFollGet or null `pages`.
GupResult pinUserPages(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages);
/// get_user_pages_fast(): lockless walk of present, sufficiently permitted entries with no
/// fault; from the first entry that would need one, falls back to getUserPages for the rest.
/// Same results. (FOLL_FAST_ONLY is not offered.)
GupResult getUserPagesFast(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages);
/// pin_user_pages_fast(): the fast walk for pins, falling back to pinUserPages.
GupResult pinUserPagesFast(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages);

/// put_page() for a FOLL_GET reference: drop one reference (frees at zero; ZONE_DEVICE frames go
/// to pgmap->ops->folioFree).
void putUserPage(Mm& mm, Pfn pfn);
/// unpin_user_page(): release one FOLL_PIN pin (refcount -= GUP_PIN_COUNTING_BIAS). The zero page is
/// ignored (never pinned). Unpinning a page that is not pinned is a simulator bug (assert).
void unpinUserPage(Mm& mm, Pfn pfn);
/// unpin_user_pages().
void unpinUserPages(Mm& mm, const Pfn* pages, std::size_t nrPages);
/// unpin_user_pages_dirty_lock(): mark each page dirty if `makeDirty`, then unpin it.
void unpinUserPagesDirtyLock(Mm& mm, const Pfn* pages, std::size_t nrPages, bool makeDirty);

/// GUP_PIN_COUNTING_BIAS.
inline constexpr std::int32_t kGupPinCountingBias = 1024;

/// folio_maybe_dma_pinned(): refcount of the frame's folio >= GUP_PIN_COUNTING_BIAS.
bool folioMaybeDmaPinned(Mm& mm, Pfn pfn);

/// populate_vma_page_range() (MAP_POPULATE, mlock): fault in [start, end) of `vma` without taking
/// references: write faults for private writable vmas (so COW is broken in advance), read faults
/// otherwise, with FOLL_FORCE semantics for readability like the kernel. Returns the number of
/// pages populated, or the error (Fault/NoMem) of the first page that failed when none was.
GupResult populateVmaPageRange(Vma& vma, Va start, Va end);
/// faultin_page_range() (MADV_POPULATE_READ/WRITE): fault in [start, end) of `mm` for read or
/// write, without FOLL_FORCE. Returns Ok, NoMem (Oom), Fault (a hole or a Sigsegv/Sigbus fault:
/// the kernel's madvise then returns ENOMEM for a hole and EFAULT otherwise; the caller
/// maps it), Inval (VM_PFNMAP/VM_IO vma).
Errno faultinPageRange(Mm& mm, Va start, Va end, bool write);
/// fixup_user_fault(): resolve one fault at `address` as the kernel does for futexes and KVM:
/// finds the vma, checks it like GUP (check_vma_flags with the access from `faultFlags`), calls
/// handleMmFault. Returns Ok, Fault (no vma, not permitted, Sigsegv/Sigbus), NoMem (Oom).
Errno fixupUserFault(Mm& mm, Va address, unsigned faultFlags);

}  // namespace hmmsim
