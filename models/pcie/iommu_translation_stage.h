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
// Leaves out: splitting a burst whose pages are not physically contiguous (the stage returns
// one output address): such a burst is aborted with Completer Abort and counted in
// "noncontiguous_bursts" — the DMA API here maps only physically contiguous ranges, so it only
// happens when a driver maps pages one by one into adjacent IOVAs and then bursts across them.
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

  /// Stats: requests, pages, aborted, noncontiguous_bursts.
  const StatsGroup& stats() const { return stats_; }

 private:
  Iommu& iommu_;
  DmaMapping* dma_;
  StatsGroup stats_;
  Counter& requests_;
  Counter& pages_;
  Counter& aborted_;
  Counter& noncontiguous_;
};

}  // namespace hmmsim
