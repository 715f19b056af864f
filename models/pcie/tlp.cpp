#include "models/pcie/tlp.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

const char* tlpKindName(TlpKind kind) {
  switch (kind) {
    case TlpKind::MWr:
      return "MWr";
    case TlpKind::MRd:
      return "MRd";
    case TlpKind::CplD:
      return "CplD";
    case TlpKind::Cpl:
      return "Cpl";
  }
  return "?";
}

RequestSplitter::RequestSplitter(std::uint64_t addr, std::uint64_t len, std::uint32_t maxBytes)
    : addr_(addr), end_(addr + len), max_(maxBytes) {
  HMMSIM_ASSERT(maxBytes > 0, "zero request size");
}

bool RequestSplitter::next(TlpSegment& out) {
  if (addr_ >= end_) return false;
  const std::uint64_t toBoundary = kTlpBoundaryBytes - (addr_ % kTlpBoundaryBytes);
  const std::uint64_t n = std::min<std::uint64_t>({end_ - addr_, max_, toBoundary});
  out.addr = addr_;
  out.bytes = static_cast<std::uint32_t>(n);
  addr_ += n;
  return true;
}

std::uint64_t RequestSplitter::count(std::uint64_t addr, std::uint64_t len, std::uint32_t maxBytes) {
  RequestSplitter s(addr, len, maxBytes);
  TlpSegment seg;
  std::uint64_t n = 0;
  while (s.next(seg)) ++n;
  return n;
}

CompletionSplitter::CompletionSplitter(std::uint64_t addr, std::uint32_t len, std::uint32_t mpsBytes,
                                       std::uint32_t rcbBytes, bool rcbChunks)
    : addr_(addr),
      end_(addr + len),
      mps_(mpsBytes),
      rcb_(std::min(rcbBytes, mpsBytes)),
      rcbChunks_(rcbChunks) {
  HMMSIM_ASSERT(mpsBytes > 0 && rcbBytes > 0, "zero MPS or RCB");
}

bool CompletionSplitter::next(TlpSegment& out) {
  if (addr_ >= end_) return false;
  const std::uint64_t remaining = end_ - addr_;
  std::uint64_t n;
  if (rcbChunks_) {
    n = std::min<std::uint64_t>(remaining, rcb_ - (addr_ % rcb_));
  } else if (remaining <= mps_) {
    n = remaining;
  } else {
    // Split: this completion must end on an RCB boundary (rcb_ <= MPS, so there is one).
    n = (addr_ + mps_) / rcb_ * rcb_ - addr_;
  }
  out.addr = addr_;
  out.bytes = static_cast<std::uint32_t>(n);
  addr_ += n;
  return true;
}

BurstWire writeBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len) {
  // Per 4 KiB page rather than per TLP: within a page RequestSplitter cuts every MPS bytes.
  BurstWire w;
  const std::uint64_t hdr = mwrWireBytes(cfg, 0);
  for (std::uint64_t a = addr, end = addr + len; a < end;) {
    const std::uint64_t chunk = std::min(end - a, kTlpBoundaryBytes - a % kTlpBoundaryBytes);
    const std::uint64_t n = (chunk + cfg.mpsBytes - 1) / cfg.mpsBytes;
    w.reqTlps += n;
    w.reqWireBytes += n * hdr + chunk;
    a += chunk;
  }
  return w;
}

std::uint64_t completionCount(std::uint64_t addr, std::uint32_t len, std::uint32_t mpsBytes,
                              std::uint32_t rcbBytes, bool rcbChunks) {
  if (len == 0) return 0;
  rcbBytes = std::min(rcbBytes, mpsBytes);  // as CompletionSplitter
  if (rcbChunks) {
    // One completion per RCB-aligned block the request touches.
    const std::uint64_t first = addr / rcbBytes, last = (addr + len - 1) / rcbBytes;
    return last - first + 1;
  }
  if (len <= mpsBytes) return 1;
  // The first completion ends on an RCB boundary; the following ones are MPS-sized.
  const std::uint64_t first = (addr + mpsBytes) / rcbBytes * rcbBytes - addr;
  return 1 + (len - first + mpsBytes - 1) / mpsBytes;
}

BurstWire readRequestCompletionWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint32_t len) {
  BurstWire w;
  w.cplTlps = completionCount(addr, len, cfg.mpsBytes, cfg.rcbBytes, cfg.rcbChunks);
  w.cplWireBytes = w.cplTlps * cplDWireBytes(cfg, 0) + len;
  return w;
}

BurstWire readBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len) {
  BurstWire w;
  RequestSplitter s(addr, len, cfg.mrrsBytes);
  TlpSegment seg;
  while (s.next(seg)) {
    ++w.reqTlps;
    w.reqWireBytes += mrdWireBytes(cfg);
    const BurstWire c = readRequestCompletionWire(cfg, seg.addr, seg.bytes);
    w.cplTlps += c.cplTlps;
    w.cplWireBytes += c.cplWireBytes;
  }
  return w;
}

}  // namespace hmmsim
