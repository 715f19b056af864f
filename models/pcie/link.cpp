#include "models/pcie/link.h"

#include "sim/assert.h"

namespace hmmsim {

LinkDirection::LinkDirection(double tlpGbps, std::uint64_t latencyPs)
    : gbps_(tlpGbps), psPerByte_(8000.0 / tlpGbps), latencyPs_(latencyPs) {
  HMMSIM_ASSERT(tlpGbps > 0.0, "link bandwidth must be positive, got " << tlpGbps);
}

}  // namespace hmmsim
