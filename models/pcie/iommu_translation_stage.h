#pragma once
// IommuTranslationStage: plugs the Iommu into the root complex's upstream path
// (PcieRootComplexModule::setTranslationStage, see translation_stage.h).
//
// Models: every upstream request from a root port is translated by Iommu::translate (or, for
// ATS-translated requests, checked by Iommu::translatedRequest). A request or burst that spans
// several 4 KiB pages is translated page by page, as the per-TLP fabric would present it; the
// pages' lookups overlap in the IOMMU, so the charged latency is the largest per-page latency
// (page-walker contention between them is already in the Iommu's walker pool). Any fault aborts
// the whole request with Unsupported Request. When a DmaMapping is given, its flush-queue clock
// is advanced to the request's time first, so a lazy-mode stale window closes on time.
//
// A burst whose pages are not physically contiguous (pages linked one by one into an IOVA range,
// dma_iova_link) is returned as its physically contiguous pieces (UpstreamTranslation::pieces),
// which the root complex forwards one by one; counted in "scattered_bursts" and "pieces".
// Timing: pure; the root complex adds latencyPs to its annotated delay.

#include <string>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/translation_stage.h"
#include "sim/stats.h"

namespace hmmsim {

class IommuTranslationStage final : public PcieTranslationStage {
 public:
  /// `iommu` (and `dma`, optional) must outlive the stage. `name` names the stats group.
  IommuTranslationStage(std::string name, Iommu& iommu, DmaMapping* dma = nullptr);

  UpstreamTranslation translateUpstream(Bdf requester, std::uint64_t busAddr, std::uint64_t len, bool isWrite,
                                        bool addressTranslated, std::uint64_t nowPs) override;

  /// Stats: requests, pages, aborted, scattered_bursts, pieces.
  const StatsGroup& stats() const { return stats_; }

 private:
  Iommu& iommu_;
  DmaMapping* dma_;
  StatsGroup stats_;
  Counter& requests_;
  Counter& pages_;
  Counter& aborted_;
  Counter& scattered_;
  Counter& pieceCount_;
  std::vector<UpstreamPiece> pieces_;  // the last scattered request's pieces
};

}  // namespace hmmsim
