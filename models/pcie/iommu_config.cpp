#include "models/pcie/iommu_config.h"

#include <string>

namespace hmmsim {

namespace {
constexpr std::int64_t kMaxEntries = 1 << 16;

void loadIotlb(const ConfigNode& n, IotlbParams& p) {
  n.requireKeys({"entries_4k", "ways_4k", "entries_2m", "ways_2m"});
  if (auto v = n.optInt("entries_4k", 1, kMaxEntries)) p.entries4k = unsigned(*v);
  if (auto v = n.optInt("ways_4k", 1, kMaxEntries)) p.ways4k = unsigned(*v);
  if (auto v = n.optInt("entries_2m", 1, kMaxEntries)) p.entries2m = unsigned(*v);
  if (auto v = n.optInt("ways_2m", 1, kMaxEntries)) p.ways2m = unsigned(*v);
  if (p.entries4k % p.ways4k != 0)
    n.fail("ways_4k (" + std::to_string(p.ways4k) + ") must divide entries_4k (" +
           std::to_string(p.entries4k) + ")");
  if (p.entries2m % p.ways2m != 0)
    n.fail("ways_2m (" + std::to_string(p.ways2m) + ") must divide entries_2m (" +
           std::to_string(p.entries2m) + ")");
}
}  // namespace

IommuConfig loadIommuConfig(const ConfigNode& node) {
  node.requireKeys({"mode", "invalidation", "large_pages", "iotlb", "iotlb_hit_latency",
                    "walk_access_latency", "page_walkers", "fault_records", "iotlb_invalidation_latency",
                    "ats_invalidation_latency", "report_lazy_window", "skip_iotlb_invalidation",
                    "flush_queue_size", "flush_queue_timeout", "force_dac"});
  IommuConfig c;
  IommuParams& p = c.iommu;
  if (auto m = node.find("mode")) {
    const std::string v = m->asChoice({"off", "passthrough", "translate"});
    p.mode = v == "off" ? IommuMode::Off : v == "passthrough" ? IommuMode::Passthrough : IommuMode::Translate;
  }
  if (auto m = node.find("invalidation"))
    p.invalidation =
        m->asChoice({"strict", "lazy"}) == "lazy" ? IommuInvalidation::Lazy : IommuInvalidation::Strict;
  if (auto v = node.optBool("large_pages")) p.largePages = *v;
  if (auto n = node.find("iotlb")) loadIotlb(*n, p.iotlb);
  if (auto v = node.optDurationPs("iotlb_hit_latency")) p.iotlbHitLatencyPs = *v;
  if (auto v = node.optDurationPs("walk_access_latency")) p.walkAccessLatencyPs = *v;
  if (auto v = node.optInt("page_walkers", 1, 1024)) p.pageWalkers = unsigned(*v);
  if (auto v = node.optInt("fault_records", 0, 1 << 20)) p.faultRecords = std::size_t(*v);
  if (auto v = node.optDurationPs("iotlb_invalidation_latency")) p.iotlbInvalidationLatencyPs = *v;
  if (auto v = node.optDurationPs("ats_invalidation_latency")) p.atsInvalidationLatencyPs = *v;
  if (auto v = node.optBool("report_lazy_window")) p.reportLazyWindow = *v;
  if (auto v = node.optBool("skip_iotlb_invalidation")) p.skipIotlbInvalidation = *v;
  if (auto v = node.optInt("flush_queue_size", 1, 1 << 20)) c.dma.flushQueueSize = std::size_t(*v);
  if (auto v = node.optDurationPs("flush_queue_timeout")) c.dma.flushQueueTimeoutPs = *v;
  if (auto v = node.optBool("force_dac")) c.dma.forceDac = *v;
  return c;
}

}  // namespace hmmsim
