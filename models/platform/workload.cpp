// Shared by the workloads. See workload.h.
#include "models/platform/workload.h"

#include <algorithm>

#include "models/platform/platform.h"
#include "sim/config.h"

namespace hmmsim {

std::uint64_t percentile(std::vector<std::uint64_t> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t rank = std::size_t(q * double(samples.size()) + 0.999999);
  return samples[std::min(samples.size(), std::max<std::size_t>(rank, 1)) - 1];
}

std::optional<Va> placedRegion(const Platform& p, const std::string& process, const WorkloadPlacement& place,
                               const std::string& region, std::uint64_t bytes) {
  auto it = place.find(region);
  if (it == place.end()) return std::nullopt;
  const ProcessMapping* m = p.mapping(process, it->second);
  if (!m)
    throw ConfigError("<workload>", 0, 0, "place",
                      "process \"" + process + "\" has no mapping \"" + it->second + "\" for " + region);
  if (bytes > m->bytes)
    throw ConfigError("<workload>", 0, 0, "place",
                      region + " needs " + std::to_string(bytes) + " bytes; mapping \"" + it->second +
                          "\" has " + std::to_string(m->bytes));
  return m->start;
}

}  // namespace hmmsim
