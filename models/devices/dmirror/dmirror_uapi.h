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

}  // namespace hmmsim
