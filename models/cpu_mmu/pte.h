#pragma once
// Pte: one 64-bit page-table entry in an x86-64-like format, at any level (PTE, PMD, PUD, PGD).
//
// Models the entry kinds the kernel distinguishes (arch/x86/include/asm/pgtable*.h,
// include/linux/swapops.h):
//  - none (all zero, pte_none);
//  - present leaf: pfn + hardware bits P, RW, US, A, D, PS (huge, PMD/PUD level only), NX and
//    software bits SPECIAL (pte_special: pfnmap/zero-page style, no struct page use), SOFT_DIRTY,
//    DEVMAP (pte_devmap), UFFD_WP; PROT_NONE entries (P clear, PROTNONE set) are pte_present()
//    but not hardware-valid, as on x86;
//  - table pointer (non-leaf PGD/PUD/PMD entry): present, PS clear; its address field holds the
//    next table (see PageTable);
//  - non-present swap-style entries: a 5-bit type and a 46-bit offset (a pfn for the special
//    types). Types 0..kMaxSwapfiles-1 are swap devices; the special types sit at the top of the
//    type space like the kernel's MAX_SWAPFILES trick: device-private read/write, device-exclusive
//    read/write, migration read / read-exclusive / write, hwpoison, pte marker.
// Device-exclusive choice: two types (read and write), as kernels v5.14..v6.13 had
// (SWP_DEVICE_EXCLUSIVE_READ/WRITE); newer kernels changed the representation, the semantics
// hmmsim needs (writable or not, pfn, restore on CPU access) are the same.
// Encoding (documented so traces can be read):
//   present:  bit0 P, 1 RW, 2 US, 5 A, 6 D, 7 PS, 8 PROTNONE (x86 reuses G), 9 SPECIAL,
//             10 UFFD_WP, 11 SOFT_DIRTY, 12..51 pfn, 58 DEVMAP, 63 NX.
//   swap:     bit0 = 0, bit8 = 0, 1 SWP_EXCLUSIVE, 2 SWP_UFFD_WP, 3 = 1 (marks non-none),
//             7 SWP_SOFT_DIRTY, 12..57 offset, 59..63 type. As on x86, the swap bits sit where
//             the present bits RW/USER/PSE are and the type in the top bits, so a present-entry
//             modifier applied to a swap entry by mistake (the kernel's bug as much as ours)
//             cannot turn it into another type or into none, except mkNoExec (bit 63).
// Timing: none.

#include <cstdint>

#include "sim/strong_types.h"

namespace hmmsim {

/// Level of a page-table entry; values are the number of levels above the page (None = no leaf).
enum class PtLevel : std::uint8_t {
  None = 0,  ///< no entry / a hole
  Pte = 1,   ///< 4 KiB leaf level
  Pmd = 2,   ///< 2 MiB leaf or PTE-table pointer
  Pud = 3,   ///< 1 GiB leaf or PMD-table pointer
  Pgd = 4,   ///< PUD-table pointer (top level; 4-level paging, no P4D)
};

/// Bytes mapped by one entry at `level` (4 KiB, 2 MiB, 1 GiB, 512 GiB).
constexpr std::uint64_t ptLevelSize(PtLevel level) {
  return 1ull << (kPageShift + 9u * (static_cast<unsigned>(level) - 1u));
}

class Pte {
 public:
  // Hardware and software bits of present entries.
  static constexpr std::uint64_t kPresent = 1ull << 0;
  static constexpr std::uint64_t kRw = 1ull << 1;
  static constexpr std::uint64_t kUser = 1ull << 2;
  static constexpr std::uint64_t kAccessed = 1ull << 5;
  static constexpr std::uint64_t kDirty = 1ull << 6;
  static constexpr std::uint64_t kPse = 1ull << 7;
  static constexpr std::uint64_t kProtNone = 1ull << 8;
  static constexpr std::uint64_t kSpecial = 1ull << 9;
  static constexpr std::uint64_t kUffdWp = 1ull << 10;
  static constexpr std::uint64_t kSoftDirty = 1ull << 11;
  static constexpr std::uint64_t kDevmap = 1ull << 58;
  static constexpr std::uint64_t kNx = 1ull << 63;
  static constexpr unsigned kPfnShift = 12;
  static constexpr std::uint64_t kPfnMask = ((1ull << 40) - 1) << kPfnShift;  // bits 12..51
  // Swap-entry fields.
  static constexpr std::uint64_t kSwpExclusive = 1ull << 1;
  static constexpr std::uint64_t kSwpUffdWp = 1ull << 2;
  static constexpr std::uint64_t kSwpMarker = 1ull << 3;
  static constexpr std::uint64_t kSwpSoftDirty = 1ull << 7;
  static constexpr unsigned kSwpTypeShift = 59;
  static constexpr std::uint64_t kSwpTypeMask = 0x1full << kSwpTypeShift;
  static constexpr unsigned kSwpOffsetShift = 12;
  static constexpr std::uint64_t kSwpOffsetMask = ((1ull << 46) - 1) << kSwpOffsetShift;

  /// Swap types (the 5-bit type field). 0..kMaxSwapfiles-1 are swap devices.
  static constexpr unsigned kMaxSwapfiles = 22;
  static constexpr unsigned kSwpDeviceWrite = 22;             ///< SWP_DEVICE_WRITE
  static constexpr unsigned kSwpDeviceRead = 23;              ///< SWP_DEVICE_READ
  static constexpr unsigned kSwpDeviceExclusiveWrite = 24;    ///< SWP_DEVICE_EXCLUSIVE_WRITE
  static constexpr unsigned kSwpDeviceExclusiveRead = 25;     ///< SWP_DEVICE_EXCLUSIVE_READ
  static constexpr unsigned kSwpMigrationRead = 26;           ///< SWP_MIGRATION_READ
  static constexpr unsigned kSwpMigrationReadExclusive = 27;  ///< SWP_MIGRATION_READ_EXCLUSIVE
  static constexpr unsigned kSwpMigrationWrite = 28;          ///< SWP_MIGRATION_WRITE
  static constexpr unsigned kSwpHwPoison = 29;                ///< SWP_HWPOISON
  static constexpr unsigned kSwpPteMarker = 30;               ///< SWP_PTE_MARKER

  constexpr Pte() = default;
  constexpr explicit Pte(std::uint64_t raw) : v_(raw) {}
  constexpr std::uint64_t raw() const { return v_; }
  constexpr bool operator==(Pte o) const { return v_ == o.v_; }
  constexpr bool operator!=(Pte o) const { return v_ != o.v_; }

  // ---- constructors ----

  /// pfn_pte(pfn, prot) with prot = present [| RW] [| USER]: a 4 KiB leaf. Use mkHuge() for a
  /// PMD/PUD leaf (pfn must then be 512- or 262144-aligned; PageTable asserts it).
  static constexpr Pte mkPresent(Pfn pfn, bool writable, bool user = true) {
    return Pte(kPresent | (writable ? kRw : 0) | (user ? kUser : 0) |
               ((pfn.value() << kPfnShift) & kPfnMask));
  }
  /// swp_entry(type, offset) as a non-present entry.
  static constexpr Pte mkSwap(unsigned type, std::uint64_t offset) {
    return Pte(kSwpMarker | ((std::uint64_t(type) << kSwpTypeShift) & kSwpTypeMask) |
               ((offset << kSwpOffsetShift) & kSwpOffsetMask));
  }
  /// make_{readable,writable}_device_private_entry(pfn).
  static constexpr Pte mkDevicePrivate(Pfn pfn, bool write) {
    return mkSwap(write ? kSwpDeviceWrite : kSwpDeviceRead, pfn.value());
  }
  /// make_{readable,writable}_migration_entry(pfn); readExclusive selects
  /// make_readable_exclusive_migration_entry (anon-exclusive page, read-only mapping).
  static constexpr Pte mkMigration(Pfn pfn, bool write, bool readExclusive = false) {
    return mkSwap(
        write ? kSwpMigrationWrite : (readExclusive ? kSwpMigrationReadExclusive : kSwpMigrationRead),
        pfn.value());
  }
  /// make_{readable,writable}_device_exclusive_entry(pfn).
  static constexpr Pte mkDeviceExclusive(Pfn pfn, bool write) {
    return mkSwap(write ? kSwpDeviceExclusiveWrite : kSwpDeviceExclusiveRead, pfn.value());
  }
  /// make_hwpoison_entry(pfn).
  static constexpr Pte mkHwPoison(Pfn pfn) { return mkSwap(kSwpHwPoison, pfn.value()); }

  // ---- kind predicates ----

  /// pte_none.
  constexpr bool isNone() const { return v_ == 0; }
  /// pte_present: P or PROTNONE (a PROT_NONE entry is present to the kernel).
  constexpr bool isPresent() const { return (v_ & (kPresent | kProtNone)) != 0; }
  /// The hardware P bit: the MMU may use the entry.
  constexpr bool isHwPresent() const { return (v_ & kPresent) != 0; }
  /// is_swap_pte: neither none nor present (any swap-style entry, special types included).
  constexpr bool isSwap() const { return !isNone() && !isPresent(); }
  /// A PMD/PUD entry whose PS bit is set (pmd_trans_huge / pud_trans_huge / pmd_leaf on a
  /// present entry). Non-present PMD leaves (is_swap_pmd) are told apart by isSwap().
  constexpr bool isHuge() const { return isPresent() && (v_ & kPse) != 0; }
  /// A non-leaf (table pointer) entry at PGD/PUD/PMD level: P set, PS and PROTNONE clear.
  constexpr bool isTable() const { return (v_ & (kPresent | kPse | kProtNone)) == kPresent; }

  /// swp_type (only meaningful if isSwap()).
  constexpr unsigned swpType() const { return unsigned((v_ & kSwpTypeMask) >> kSwpTypeShift); }
  /// swp_offset (only meaningful if isSwap()).
  constexpr std::uint64_t swpOffset() const { return (v_ & kSwpOffsetMask) >> kSwpOffsetShift; }
  /// non_swap_entry: a special type (device, migration, hwpoison, marker), not a swap slot.
  constexpr bool isNonSwapEntry() const { return isSwap() && swpType() >= kMaxSwapfiles; }
  /// A regular swap slot entry (type < kMaxSwapfiles).
  constexpr bool isSwapSlot() const { return isSwap() && swpType() < kMaxSwapfiles; }
  constexpr bool isDevicePrivateEntry() const {
    return isSwap() && (swpType() == kSwpDeviceWrite || swpType() == kSwpDeviceRead);
  }
  constexpr bool isWritableDevicePrivateEntry() const { return isSwap() && swpType() == kSwpDeviceWrite; }
  constexpr bool isMigrationEntry() const {
    return isSwap() && swpType() >= kSwpMigrationRead && swpType() <= kSwpMigrationWrite;
  }
  constexpr bool isWritableMigrationEntry() const { return isSwap() && swpType() == kSwpMigrationWrite; }
  constexpr bool isReadableExclusiveMigrationEntry() const {
    return isSwap() && swpType() == kSwpMigrationReadExclusive;
  }
  constexpr bool isDeviceExclusiveEntry() const {
    return isSwap() && (swpType() == kSwpDeviceExclusiveWrite || swpType() == kSwpDeviceExclusiveRead);
  }
  constexpr bool isWritableDeviceExclusiveEntry() const {
    return isSwap() && swpType() == kSwpDeviceExclusiveWrite;
  }
  constexpr bool isHwPoisonEntry() const { return isSwap() && swpType() == kSwpHwPoison; }
  constexpr bool isPteMarker() const { return isSwap() && swpType() == kSwpPteMarker; }
  /// is_pfn_swap_entry: the offset is a pfn (device-private, device-exclusive, migration,
  /// hwpoison).
  constexpr bool isPfnSwapEntry() const {
    return isSwap() && swpType() >= kSwpDeviceWrite && swpType() <= kSwpHwPoison;
  }
  /// swp_offset_pfn / pfn_swap_entry_to_page's pfn (only for isPfnSwapEntry()).
  constexpr Pfn swpPfn() const { return Pfn(swpOffset()); }
  /// A pfn-swap entry that grants write (device-private write, migration write, device-exclusive
  /// write): what the entry restores to on the CPU side.
  constexpr bool isWritableSwapEntry() const {
    return isWritableDevicePrivateEntry() || isWritableMigrationEntry() || isWritableDeviceExclusiveEntry();
  }

  // ---- present-entry accessors ----

  /// pte_pfn / pmd_pfn / pud_pfn (present entries).
  constexpr Pfn pfn() const { return Pfn((v_ & kPfnMask) >> kPfnShift); }
  /// The pfn of a present entry or of a pfn-swap entry; Pfn(0) otherwise.
  constexpr Pfn anyPfn() const { return isPresent() ? pfn() : (isPfnSwapEntry() ? swpPfn() : Pfn(0)); }
  constexpr bool isWrite() const { return (v_ & kRw) != 0; }  ///< pte_write
  constexpr bool isUser() const { return (v_ & kUser) != 0; }
  constexpr bool isYoung() const { return (v_ & kAccessed) != 0; }                  ///< pte_young
  constexpr bool isDirty() const { return (v_ & kDirty) != 0; }                     ///< pte_dirty
  constexpr bool isSpecial() const { return isPresent() && (v_ & kSpecial) != 0; }  ///< pte_special
  constexpr bool isDevmap() const { return isPresent() && (v_ & kDevmap) != 0; }    ///< pte_devmap
  constexpr bool isProtNone() const { return (v_ & (kPresent | kProtNone)) == kProtNone; }
  constexpr bool isExec() const { return (v_ & kNx) == 0; }
  /// pte_soft_dirty on present entries, pte_swp_soft_dirty on swap entries.
  constexpr bool isSoftDirty() const {
    return isPresent() ? (v_ & kSoftDirty) != 0 : (isSwap() && (v_ & kSwpSoftDirty) != 0);
  }
  /// pte_uffd_wp / pte_swp_uffd_wp.
  constexpr bool isUffdWp() const {
    return isPresent() ? (v_ & kUffdWp) != 0 : (isSwap() && (v_ & kSwpUffdWp) != 0);
  }
  /// pte_swp_exclusive (swap entries of anon-exclusive pages).
  constexpr bool isSwpExclusive() const { return isSwap() && (v_ & kSwpExclusive) != 0; }

  // ---- modifiers (return a new value; present entries unless stated) ----

  constexpr Pte mkWrite() const { return Pte(v_ | kRw); }     ///< pte_mkwrite
  constexpr Pte wrprotect() const { return Pte(v_ & ~kRw); }  ///< pte_wrprotect
  constexpr Pte mkDirty() const {
    return Pte(v_ | kDirty | kSoftDirty);
  }  ///< pte_mkdirty (x86 also sets soft-dirty)
  /// What the MMU does on a write through a writable entry: set Dirty only (soft-dirty is a
  /// software bit the hardware never sets; a page is soft-dirtied by the write fault that
  /// follows clear_refs' write-protection).
  constexpr Pte mkHwDirty() const { return Pte(v_ | kDirty); }
  constexpr Pte mkClean() const { return Pte(v_ & ~kDirty); }     ///< pte_mkclean
  constexpr Pte mkYoung() const { return Pte(v_ | kAccessed); }   ///< pte_mkyoung
  constexpr Pte mkOld() const { return Pte(v_ & ~kAccessed); }    ///< pte_mkold
  constexpr Pte mkSpecial() const { return Pte(v_ | kSpecial); }  ///< pte_mkspecial
  constexpr Pte mkDevmap() const { return Pte(v_ | kDevmap); }    ///< pte_mkdevmap
  constexpr Pte mkHuge() const { return Pte(v_ | kPse); }         ///< pmd_mkhuge / pud_mkhuge
  constexpr Pte clearHuge() const { return Pte(v_ & ~kPse); }
  constexpr Pte mkExec() const { return Pte(v_ & ~kNx); }
  constexpr Pte mkNoExec() const { return Pte(v_ | kNx); }
  /// pte_modify(pte, PAGE_NONE) as x86 does it: P cleared, PROTNONE set.
  constexpr Pte mkProtNone() const { return Pte((v_ & ~kPresent) | kProtNone); }
  /// Undo mkProtNone (pte_modify back to an accessible protection).
  constexpr Pte clearProtNone() const { return Pte((v_ & ~kProtNone) | kPresent); }
  /// pte_mksoft_dirty / pte_swp_mksoft_dirty.
  constexpr Pte mkSoftDirty() const { return Pte(v_ | (isSwap() ? kSwpSoftDirty : kSoftDirty)); }
  /// pte_clear_soft_dirty / pte_swp_clear_soft_dirty.
  constexpr Pte clearSoftDirty() const { return Pte(v_ & ~(isSwap() ? kSwpSoftDirty : kSoftDirty)); }
  /// pte_mkuffd_wp / pte_swp_mkuffd_wp.
  constexpr Pte mkUffdWp() const { return Pte(v_ | (isSwap() ? kSwpUffdWp : kUffdWp)); }
  constexpr Pte clearUffdWp() const { return Pte(v_ & ~(isSwap() ? kSwpUffdWp : kUffdWp)); }
  /// pte_swp_mkexclusive / pte_swp_clear_exclusive (swap entries).
  constexpr Pte mkSwpExclusive() const { return Pte(v_ | kSwpExclusive); }
  constexpr Pte clearSwpExclusive() const { return Pte(v_ & ~kSwpExclusive); }
  /// make_readable_{migration,device_private,device_exclusive}_entry of this entry's pfn, with
  /// its soft-dirty/uffd-wp bits kept (what fork does to a writable or read-exclusive pfn-swap
  /// entry of a COW mapping). Other entries are returned unchanged.
  constexpr Pte mkSwpReadable() const {
    if (!isSwap()) return *this;
    const std::uint64_t keep = v_ & ~kSwpTypeMask;
    switch (swpType()) {
      case kSwpMigrationWrite:
      case kSwpMigrationReadExclusive:
        return Pte(keep | (std::uint64_t(kSwpMigrationRead) << kSwpTypeShift));
      case kSwpDeviceWrite:
        return Pte(keep | (std::uint64_t(kSwpDeviceRead) << kSwpTypeShift));
      case kSwpDeviceExclusiveWrite:
        return Pte(keep | (std::uint64_t(kSwpDeviceExclusiveRead) << kSwpTypeShift));
      default:
        return *this;
    }
  }
  /// Same entry (flags kept) for another pfn; present or pfn-swap entries.
  constexpr Pte withPfn(Pfn p) const {
    return isPresent() ? Pte((v_ & ~kPfnMask) | ((p.value() << kPfnShift) & kPfnMask))
                       : Pte((v_ & ~kSwpOffsetMask) | ((p.value() << kSwpOffsetShift) & kSwpOffsetMask));
  }
  /// Same entry with its pfn (present) or offset (swap) advanced by `n`: used when a huge
  /// leaf is split into smaller entries.
  constexpr Pte plusPfn(std::uint64_t n) const {
    return isPresent() ? withPfn(pfn() + n) : withPfn(Pfn(swpOffset() + n));
  }

 private:
  std::uint64_t v_ = 0;
};

static_assert(sizeof(Pte) == 8, "Pte is one 64-bit word");

}  // namespace hmmsim
