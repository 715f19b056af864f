#include "models/pcie/tlp.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

const char* tlpKindName(TlpKind kind) {
  switch (kind) {
    case TlpKind::MWr: return "MWr";
    case TlpKind::MRd: return "MRd";
    case TlpKind::CplD: return "CplD";
    case TlpKind::Cpl: return "Cpl";
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

CompletionSplitter::CompletionSplitter(std::uint64_t addr, std::uint32_t len,
                                       std::uint32_t mpsBytes, std::uint32_t rcbBytes,
                                       bool rcbChunks)
    : addr_(addr), end_(addr + len), mps_(mpsBytes), rcb_(rcbBytes), rcbChunks_(rcbChunks) {
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
    // Split: this completion must end on an RCB boundary.
    const std::uint64_t end = (addr_ + mps_) / rcb_ * rcb_;
    n = end > addr_ ? end - addr_ : mps_;  // MPS < RCB cannot end on RCB: send MPS bytes
  }
  out.addr = addr_;
  out.bytes = static_cast<std::uint32_t>(n);
  addr_ += n;
  return true;
}

BurstWire writeBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len) {
  BurstWire w;
  RequestSplitter s(addr, len, cfg.mpsBytes);
  TlpSegment seg;
  while (s.next(seg)) {
    ++w.reqTlps;
    w.reqWireBytes += mwrWireBytes(cfg, seg.bytes);
  }
  return w;
}

BurstWire readRequestCompletionWire(const PcieLinkConfig& cfg, std::uint64_t addr,
                                    std::uint32_t len) {
  BurstWire w;
  CompletionSplitter c(addr, len, cfg.mpsBytes, cfg.rcbBytes, cfg.rcbChunks);
  TlpSegment seg;
  while (c.next(seg)) {
    ++w.cplTlps;
    w.cplWireBytes += cplDWireBytes(cfg, seg.bytes);
  }
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
