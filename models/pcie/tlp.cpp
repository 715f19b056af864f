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
  // Closed form of RequestSplitter: within each 4 KiB page it cuts every MPS bytes, and every
  // full page holds 4096 / MPS TLPs (MPS <= 4096 is a power of two).
  BurstWire w;
  const std::uint64_t mps = cfg.mpsBytes;
  const std::uint64_t first = std::min(len, kTlpBoundaryBytes - addr % kTlpBoundaryBytes);
  const std::uint64_t rest = len - first;
  w.reqTlps = (first + mps - 1) / mps + rest / kTlpBoundaryBytes * (kTlpBoundaryBytes / mps) +
              (rest % kTlpBoundaryBytes + mps - 1) / mps;
  w.reqWireBytes = w.reqTlps * mwrWireBytes(cfg, 0) + len;
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

namespace {
// Wire totals of the read requests RequestSplitter makes for [addr, addr + len) inside one page.
BurstWire readChunkWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len) {
  BurstWire w;
  for (std::uint64_t a = addr, end = addr + len; a < end;) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(end - a, cfg.mrrsBytes));
    ++w.reqTlps;
    w.reqWireBytes += mrdWireBytes(cfg);
    const BurstWire c = readRequestCompletionWire(cfg, a, n);
    w.cplTlps += c.cplTlps;
    w.cplWireBytes += c.cplWireBytes;
    a += n;
  }
  return w;
}
void add(BurstWire& to, const BurstWire& w, std::uint64_t times) {
  to.reqTlps += w.reqTlps * times;
  to.reqWireBytes += w.reqWireBytes * times;
  to.cplTlps += w.cplTlps * times;
  to.cplWireBytes += w.cplWireBytes * times;
}
}  // namespace

BurstWire readBurstWire(const PcieLinkConfig& cfg, std::uint64_t addr, std::uint64_t len) {
  // Requests never cross a 4 KiB page, so every full page is split (and completed) alike: the
  // first and last partial pages are summed request by request, full pages once. At most
  // 2 x 4096 / MRRS + 4096 / MRRS requests are visited whatever the burst length.
  BurstWire w;
  const std::uint64_t first = std::min(len, kTlpBoundaryBytes - addr % kTlpBoundaryBytes);
  add(w, readChunkWire(cfg, addr, first), 1);
  const std::uint64_t rest = len - first;
  const std::uint64_t pages = rest / kTlpBoundaryBytes;
  if (pages > 0) add(w, readChunkWire(cfg, addr + first, kTlpBoundaryBytes), pages);
  if (rest % kTlpBoundaryBytes != 0)
    add(w, readChunkWire(cfg, addr + first + pages * kTlpBoundaryBytes, rest % kTlpBoundaryBytes), 1);
  return w;
}

}  // namespace hmmsim
