// Shared by the workloads. See workload.h.
#include "models/platform/workload.h"

#include <algorithm>

namespace hmmsim {

std::uint64_t percentile(std::vector<std::uint64_t> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t rank = std::size_t(q * double(samples.size()) + 0.999999);
  return samples[std::min(samples.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace hmmsim
