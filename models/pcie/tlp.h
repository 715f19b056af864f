#pragma once
// Transaction-layer packets of DMA traffic: kinds, and the segmentation of a DMA burst into TLPs.
//
// What it models: a DMA write becomes MWr TLPs of at most MPS payload bytes; a DMA read becomes
// MRd TLPs of at most MRRS bytes, each answered by CplD TLPs of at most MPS bytes whose split
// points fall on the Read Completion Boundary (or, on completers that chop at every RCB, one CplD
// per RCB-aligned block). No request and no completion crosses a 4 KiB boundary (PCIe Base Spec
// 2.2.7: a request must not cross a 4 KiB address boundary).
//
// Interaction with the bandwidth model (link_timing.h): the model counts ceil(size/MPS) MWr,
// ceil(size/MRRS) MRd and ceil(size/MPS) (or ceil(size/RCB)) CplD, i.e. it assumes every transfer
// starts on an MPS/MRRS/RCB-aligned address. For aligned transfers this segmentation produces
// exactly those counts (the calibration uses aligned transfers). An unaligned transfer may need one
// more TLP than the model counts: a 256 B write at 0x...0F80 with MPS 256 becomes 128 + 128 B (the
// 4 KiB boundary), and a 512 B read at offset 32 returns 224 + 256 + 32 B of completions (RCB 64),
// so simulated bandwidth for unaligned streams is slightly below the model's figure — as on real
// hardware.
//
// What it leaves out: Cpl without data except as a status (UR/CA), zero-length reads, TLP
// prefixes, byte enables (payloads are whole bytes), relaxed ordering and ID-based ordering.
// Pure: no SystemC; the splitters do not allocate.

#include <cstdint>

#include "models/pcie/link_timing.h"

namespace hmmsim {

enum class TlpKind : std::uint8_t {
  MWr,   ///< memory write request (posted, carries payload)
  MRd,   ///< memory read request (non-posted, no payload)
  CplD,  ///< completion with data (answers an MRd)
  Cpl,   ///< completion without data (an error status such as UR or CA)
};
const char* tlpKindName(TlpKind kind);

/// Completion status field of a Cpl/CplD (PCIe Base Spec 2.2.9).
enum class CplStatus : std::uint8_t {
  SuccessfulCompletion,  ///< SC
  UnsupportedRequest,    ///< UR: no target claimed the address, or a translation fault
  CompleterAbort,        ///< CA: the completer refused the request
};

constexpr std::uint64_t kTlpBoundaryBytes = 4096;  ///< requests never cross this boundary

/// One TLP's address range.
struct TlpSegment {
  std::uint64_t addr = 0;
  std::uint32_t bytes = 0;
};

/// Splits [addr, addr + len) into request TLPs of at most `maxBytes` (MPS for MWr, MRRS for MRd)
/// that never cross a 4 KiB boundary. Usage: `while (s.next(seg)) ...`.
class RequestSplitter {
 public:
  RequestSplitter(std::uint64_t addr, std::uint64_t len, std::uint32_t maxBytes);
  /// Fills `out` with the next TLP; returns false when the range is exhausted.
  bool next(TlpSegment& out);
  /// Number of TLPs the splitter will produce.
  static std::uint64_t count(std::uint64_t addr, std::uint64_t len, std::uint32_t maxBytes);

 private:
  std::uint64_t addr_, end_;
  std::uint32_t max_;
};

/// Splits the data of one read request [addr, addr + len) into completions: each CplD carries at
/// most MPS bytes and, when the completion is split, every CplD but the last ends on an
/// RCB-aligned address. With `rcbChunks` the completer returns one CplD per RCB-aligned block.
/// An RCB larger than MPS is treated as RCB = MPS (no CplD may exceed MPS); the bandwidth model's
/// RCB-chunk count (link_timing.h modelCompletionCount) does not clamp, so the two differ only
/// for that configuration.
class CompletionSplitter {
 public:
  CompletionSplitter(std::uint64_t addr, std::uint32_t len, std::uint32_t mpsBytes, std::uint32_t rcbBytes,
                     bool rcbChunks);
  bool next(TlpSegment& out);

 private:
  std::uint64_t addr_, end_;
  std::uint32_t mps_, rcb_;
  bool rcbChunks_;
};

/// Per-direction TLP totals of one DMA burst, as the per-burst fidelity level charges them.
struct BurstWire {
  std::uint64_t reqTlps = 0;       ///< MWr or MRd TLPs (initiator -> completer direction)
  std::uint64_t reqWireBytes = 0;  ///< their bytes on the wire (headers, framing, payload)
  std::uint64_t cplTlps = 0;       ///< CplD TLPs (completer -> initiator); 0 for writes
  std::uint64_t cplWireBytes = 0;  ///< their bytes on the wire
};

/// Wire totals of a DMA write of `len` bytes at `addr`, segmented as RequestSplitter does with MPS.
BurstWire writeBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len);
/// Wire totals of a DMA read of `len` bytes at `addr`: MRRS requests, each answered as
/// CompletionSplitter does.
BurstWire readBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len);
/// Number of completions CompletionSplitter produces for one read request (closed form).
std::uint64_t completionCount(std::uint64_t addr, std::uint32_t len, std::uint32_t mpsBytes,
                              std::uint32_t rcbBytes, bool rcbChunks);
/// Completion totals (cpl* fields only) of a single read request.
BurstWire readRequestCompletionWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint32_t len);

}  // namespace hmmsim
