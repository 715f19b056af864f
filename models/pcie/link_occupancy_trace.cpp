#include "models/pcie/link_occupancy_trace.h"

namespace hmmsim {

void LinkOccupancyTrace::flush() {
  if (!open_) return;
  open_ = false;
  sink_.slice(TraceCategory::PcieLink, track_, "busy", startPs_, endPs_ - startPs_,
              std::to_string(tlps_) + " TLPs, " + std::to_string(bytes_) + " wire bytes");
}

}  // namespace hmmsim
