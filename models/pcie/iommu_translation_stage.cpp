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
      noncontiguous_(stats_.counter("noncontiguous_bursts", "count",
                                    "bursts whose pages are not physically contiguous (aborted)")) {}

UpstreamTranslation IommuTranslationStage::translateUpstream(Bdf requester, std::uint64_t busAddr,
                                                             std::uint64_t len, bool isWrite,
                                                             bool addressTranslated, std::uint64_t nowPs) {
  ++requests_;
  if (dma_) dma_->tick(nowPs);
  UpstreamTranslation out;
  const std::uint64_t last = busAddr + (len ? len - 1 : 0);
  Pa expect{};
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
    if (a == busAddr) {
      out.addr = t.pa.value();
    } else if (t.pa != expect) {
      ++noncontiguous_;
      out.status = CplStatus::CompleterAbort;
      return out;
    }
    expect = t.pa + (page + kPageSize - a);
  }
  return out;
}

}  // namespace hmmsim
