#pragma once
// The dmirror user interface (lib/test_hmm_uapi.h): the ioctl argument structure, the command
// numbers (the kernel's _IOWR('H', nr, struct hmm_dmirror_cmd); hmmsim passes the bare nr), the
// snapshot byte encoding and the FLAGS bits. Values are the kernel's.

#include <cstdint>

namespace hmmsim {

/// struct hmm_dmirror_cmd. `addr`: first byte of the mirrored range (page aligned); `ptr`: user
/// buffer (an address in the same Mm) that READ/EXCLUSIVE/MIGRATE_TO_DEV fill, WRITE reads and
/// SNAPSHOT fills with one byte per page; `npages`: pages in the range; `cpages`: out, pages
/// processed; `faults`: out, device faults taken (dmirror_fault calls that succeeded).
struct HmmDmirrorCmd {
  std::uint64_t addr = 0;
  std::uint64_t ptr = 0;
  std::uint64_t npages = 0;
  std::uint64_t cpages = 0;
  std::uint64_t faults = 0;
};

/// Command numbers (the `nr` of the kernel's _IOWR('H', nr, ...)).
inline constexpr unsigned HMM_DMIRROR_READ = 0x00;
inline constexpr unsigned HMM_DMIRROR_WRITE = 0x01;
inline constexpr unsigned HMM_DMIRROR_MIGRATE_TO_DEV = 0x02;
inline constexpr unsigned HMM_DMIRROR_MIGRATE_TO_SYS = 0x03;
inline constexpr unsigned HMM_DMIRROR_SNAPSHOT = 0x04;
inline constexpr unsigned HMM_DMIRROR_EXCLUSIVE = 0x05;
inline constexpr unsigned HMM_DMIRROR_CHECK_EXCLUSIVE = 0x06;
inline constexpr unsigned HMM_DMIRROR_RELEASE = 0x07;
inline constexpr unsigned HMM_DMIRROR_FLAGS = 0x08;

/// HMM_DMIRROR_FLAGS bit, one shot. MIGRATE_TO_DEV: the next device allocation fails (a THP then
/// falls back to 4 KiB device pages; a 4 KiB page stays in system memory). MIGRATE_TO_SYS: the next THP
/// system allocation fails and the folio comes back as 4 KiB pages (CPU-fault migrate_to_ram
/// does not consult the flag: it has no handle).
inline constexpr std::uint64_t HMM_DMIRROR_FLAG_FAIL_ALLOC = 1ull << 0;

/// hmmsim extension (RFC p2p, models/devices/dmirror/dmirror_p2p.h): mmap of the device file at a
/// byte offset of HMM_DMIRROR_P2P_MMAP_OFFSET + p * 4096 exports device page p onwards as a special
/// vma (VM_IO | VM_PFNMAP, no CPU mapping) that importers reach only through its vm_ops p2pMap.
/// Errors of that mmap: EINVAL (the device is not attached to a p2p fabric, or a page is not in a
/// registered device-memory chunk); ENODEV (the device was hot-unplugged). An importer's p2pMap of
/// it fails with EPERM (write into a vma without PROT_WRITE), EOPNOTSUPP (the exporter declines
/// p2p, or the p2pdma map type between the two functions is NOT_SUPPORTED), ENOSPC (no BAR window
/// under the exporter's policy, or over the importer's cap), EBUSY (a window is being revoked), EIO
/// (the exporter is in reset), ENODEV (unplugged); READ/WRITE/SNAPSHOT over it then return EFAULT.
/// Offsets below it keep the kernel's meaning (vm_insert_page of zeroed pages).
inline constexpr std::uint64_t HMM_DMIRROR_P2P_MMAP_OFFSET = 1ull << 40;

/// Snapshot bytes (enum in test_hmm_uapi.h).
inline constexpr std::uint8_t HMM_DMIRROR_PROT_ERROR = 0xFF;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_NONE = 0x00;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_READ = 0x01;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_WRITE = 0x02;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_PMD = 0x04;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_PUD = 0x08;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_ZERO = 0x10;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
inline constexpr std::uint8_t HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;
/// hmmsim extension, only from a device attached to a p2p fabric: another device's private page
/// that its exporter maps for this device through its BAR (devmem p2pMap accepted). A page it
/// declines stays HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE (SNAPSHOT never migrates).
inline constexpr std::uint8_t HMM_DMIRROR_PROT_DEV_PRIVATE_P2P = 0x60;
/// hmmsim extension: a page of a special vma (HMM_DMIRROR_P2P_MMAP_OFFSET) its p2pMap mapped.
inline constexpr std::uint8_t HMM_DMIRROR_PROT_SPECIAL_P2P = 0x70;

}  // namespace hmmsim
