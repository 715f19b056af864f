#include "models/pcie/iommu_translation_stage.h"

#include <algorithm>

namespace hmmsim {

IommuTranslationStage::IommuTranslationStage(std::string name, Iommu& iommu, DmaMapping* dma)
    : iommu_(iommu),
      dma_(dma),
      stats_(std::move(name)),
      requests_(stats_.counter("requests", "count", "upstream requests or bursts translated")),
      pages_(stats_.counter("pages", "count", "4 KiB pages looked up for them")),
      aborted_(stats_.counter("aborted", "count", "requests aborted by a translation fault")),
      scattered_(stats_.counter("scattered_bursts", "count",
                                "bursts whose pages are not physically contiguous (forwarded in pieces)")),
      pieceCount_(stats_.counter("pieces", "count", "physically contiguous pieces of the scattered bursts")) {
}

UpstreamTranslation IommuTranslationStage::translateUpstream(Bdf requester, std::uint64_t busAddr,
                                                             std::uint64_t len, bool isWrite,
                                                             bool addressTranslated, std::uint64_t nowPs) {
  ++requests_;
  if (dma_) dma_->tick(nowPs);
  UpstreamTranslation out;
  const std::uint64_t last = busAddr + (len ? len - 1 : 0);
  Pa expect{};
  bool scattered = false;
  for (std::uint64_t page = busAddr & ~(kPageSize - 1); page <= last; page += kPageSize) {
    ++pages_;
    const std::uint64_t a = std::max(page, busAddr);
    const IommuTranslation t = addressTranslated ? iommu_.translatedRequest(requester, Pa(a), isWrite, nowPs)
                                                 : iommu_.translate(requester, Iova(a), isWrite, nowPs);
    out.latencyPs = std::max(out.latencyPs, t.latencyPs);
    if (!t.ok) {
      ++aborted_;
      out.status = CplStatus::UnsupportedRequest;
      return out;
    }
    const std::uint64_t n = std::min(last + 1, page + kPageSize) - a;
    if (a == busAddr) {
      out.addr = t.pa.value();
      pieces_.assign(1, UpstreamPiece{0, t.pa.value(), n});
    } else if (t.pa != expect) {
      scattered = true;
      pieces_.push_back(UpstreamPiece{a - busAddr, t.pa.value(), n});
    } else {
      pieces_.back().len += n;
    }
    expect = t.pa + n;
  }
  if (scattered) {
    ++scattered_;
    pieceCount_ += pieces_.size();
    out.pieces = &pieces_;
  }
  return out;
}

}  // namespace hmmsim
