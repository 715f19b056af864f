#pragma once
// The parts of the NVMe base specification (2.0, section 3 registers, section 4 queues) that the
// controller model and every queue writer (the NVMe driver half, a NIC writing into the CMB)
// share: register offsets, the 64-byte submission queue entry, the 16-byte completion queue entry,
// opcodes and status codes, in the specification's little-endian byte layout. Pure C++.
//
// Leaves out: SGLs (PRPs only), fused operations, metadata, namespaces other than NSID 1,
// end-to-end protection information, the admin commands besides Create/Delete I/O queues.

#include <array>
#include <cstdint>

namespace hmmsim {
namespace nvme {

// ---- controller registers (BAR0, spec 3.1) --------------------------------------------------
constexpr std::uint64_t kRegCap = 0x00;     ///< controller capabilities (8 bytes)
constexpr std::uint64_t kRegVs = 0x08;      ///< version
constexpr std::uint64_t kRegIntms = 0x0C;   ///< interrupt mask set (pin-based/MSI only; ignored)
constexpr std::uint64_t kRegIntmc = 0x10;   ///< interrupt mask clear (ignored)
constexpr std::uint64_t kRegCc = 0x14;      ///< controller configuration
constexpr std::uint64_t kRegCsts = 0x1C;    ///< controller status
constexpr std::uint64_t kRegAqa = 0x24;     ///< admin queue attributes
constexpr std::uint64_t kRegAsq = 0x28;     ///< admin submission queue base (8 bytes)
constexpr std::uint64_t kRegAcq = 0x30;     ///< admin completion queue base (8 bytes)
constexpr std::uint64_t kRegCmbloc = 0x38;  ///< controller memory buffer location
constexpr std::uint64_t kRegCmbsz = 0x3C;   ///< controller memory buffer size
constexpr std::uint64_t kDoorbellBase = 0x1000;
constexpr std::uint64_t kRegisterBytes = 0x2000;  ///< registers + doorbells (CAP.DSTRD = 0)
/// MSI-X table (BIR 0): 16 bytes per vector {address lo, address hi, data, vector control}.
constexpr std::uint64_t kMsixTable = 0x2000;
constexpr std::uint64_t kMsixEntryBytes = 16;

/// Offset of submission queue `qid`'s tail doorbell (4-byte stride, CAP.DSTRD = 0).
constexpr std::uint64_t sqTailDoorbell(std::uint16_t qid) {
  return kDoorbellBase + 8ull * qid;
}
/// Offset of completion queue `qid`'s head doorbell.
constexpr std::uint64_t cqHeadDoorbell(std::uint16_t qid) {
  return kDoorbellBase + 8ull * qid + 4;
}

constexpr std::uint32_t kSqeBytes = 64;
constexpr std::uint32_t kCqeBytes = 16;

/// NVM command set opcodes (I/O queues).
enum class IoOpcode : std::uint8_t {
  Flush = 0x00,  ///< flush (completes at once: the model has no volatile write cache)
  Write = 0x01,  ///< write NLB+1 blocks from PRP1/PRP2 to SLBA
  Read = 0x02,   ///< read NLB+1 blocks at SLBA into PRP1/PRP2
};

/// Admin command set opcodes (queue 0).
enum class AdminOpcode : std::uint8_t {
  DeleteIoSq = 0x00,  ///< delete I/O submission queue CDW10.QID
  CreateIoSq = 0x01,  ///< create I/O submission queue (PRP1 base, CDW10 QID/QSIZE, CDW11 PC/CQID)
  DeleteIoCq = 0x04,  ///< delete I/O completion queue CDW10.QID
  CreateIoCq = 0x05,  ///< create I/O completion queue (PRP1 base, CDW10 QID/QSIZE, CDW11 PC/IEN/IV)
};

/// Status (SCT << 8 | SC), spec 4.6.1.2.
enum class Status : std::uint16_t {
  Success = 0x000,                 ///< generic: successful completion
  InvalidOpcode = 0x001,           ///< generic: invalid command opcode
  InvalidField = 0x002,            ///< generic: invalid field in command
  DataTransferError = 0x004,       ///< generic: a DMA of the data failed (unroutable, UR, CA)
  LbaOutOfRange = 0x080,           ///< generic: LBA out of range
  InvalidPrpOffset = 0x013,        ///< generic: PRP offset invalid
  CompletionQueueInvalid = 0x100,  ///< command specific: completion queue invalid
  InvalidQueueId = 0x101,          ///< command specific: invalid queue identifier
  InvalidQueueSize = 0x102,        ///< command specific: invalid queue size
};

/// A submission queue entry, decoded (spec 4.2, NVM read/write 3.3.3.x).
struct Sqe {
  std::uint8_t opcode = 0;  ///< CDW0 bits 7:0
  std::uint16_t cid = 0;    ///< CDW0 bits 31:16: command identifier
  std::uint32_t nsid = 1;   ///< namespace identifier
  std::uint64_t prp1 = 0;   ///< data pointer: first page (may carry an offset)
  std::uint64_t prp2 = 0;   ///< second page, or a PRP list pointer
  std::uint32_t cdw10 = 0;  ///< read/write: SLBA low; admin: QID | (QSIZE-1) << 16
  std::uint32_t cdw11 =
      0;  ///< read/write: SLBA high; create CQ: PC | IEN << 1 | IV << 16; create SQ: PC | CQID << 16
  std::uint32_t cdw12 = 0;  ///< read/write: NLB (0-based) in bits 15:0
  std::uint32_t cdw13 = 0;
  std::uint32_t cdw14 = 0;
  std::uint32_t cdw15 = 0;

  std::uint64_t slba() const { return static_cast<std::uint64_t>(cdw11) << 32 | cdw10; }
  std::uint32_t blocks() const { return (cdw12 & 0xffffu) + 1; }

  /// A read or write of `blocks` (1..65536) blocks at `slba`, data at prp1/prp2.
  static Sqe readWrite(bool write, std::uint16_t cid, std::uint64_t slba, std::uint32_t blocks,
                       std::uint64_t prp1, std::uint64_t prp2);
  std::array<std::uint8_t, kSqeBytes> encode() const;
  static Sqe decode(const std::uint8_t* b);
};

/// A completion queue entry, decoded (spec 4.6).
struct Cqe {
  std::uint32_t dw0 = 0;     ///< command specific
  std::uint16_t sqHead = 0;  ///< SQ head pointer after the controller consumed the command
  std::uint16_t sqId = 0;    ///< submission queue the command came from
  std::uint16_t cid = 0;     ///< command identifier
  bool phase = false;        ///< phase tag: flips each time the controller wraps the queue
  std::uint16_t status = 0;  ///< SCT << 8 | SC (Status), DNR/M bits not used

  std::array<std::uint8_t, kCqeBytes> encode() const;
  static Cqe decode(const std::uint8_t* b);
};

}  // namespace nvme
}  // namespace hmmsim
