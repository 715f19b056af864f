#include "models/pcie/link.h"

#include <algorithm>
#include <cmath>

#include "sim/assert.h"

namespace hmmsim {

LinkDirection::LinkDirection(double tlpGbps, std::uint64_t latencyPs)
    : gbps_(tlpGbps), psPerByte_(8000.0 / tlpGbps), latencyPs_(latencyPs) {
  HMMSIM_ASSERT(tlpGbps > 0.0, "link bandwidth must be positive, got " << tlpGbps);
}

std::uint64_t LinkDirection::serializationPs(std::uint64_t wireBytes) const {
  return static_cast<std::uint64_t>(double(wireBytes) * psPerByte_ + 0.5);
}

HeadTail LinkDirection::transmit(HeadTail in, std::uint64_t wireBytes, std::uint64_t tlps,
                                 std::uint64_t* waitPs) {
  const std::uint64_t start = std::max(in.headPs, busyUntil_);
  const std::uint64_t ser = serializationPs(wireBytes);
  const std::uint64_t end = std::max(start + ser, in.tailPs);
  waitPs_ += start - in.headPs;
  if (waitPs) *waitPs = start - in.headPs;
  busyPs_ += ser;
  wireBytes_ += wireBytes;
  tlps_ += tlps;
  busyUntil_ = end;
  return HeadTail{start + latencyPs_, end + latencyPs_};
}

}  // namespace hmmsim
