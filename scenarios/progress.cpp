// The progress line. See progress.h.
#include "scenarios/progress.h"

#include <cstdio>

#include <systemc>

namespace hmmsim::scenario {

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), start_(std::chrono::steady_clock::now()) {
  last_ = start_;
}

ProgressLine::~ProgressLine() {
  if (printed_) std::fprintf(stderr, "\r\033[K");
}

void ProgressLine::run() {
  const sc_core::sc_time slice(1, sc_core::SC_MS);
  do {
    // Exit on starvation: time stops at the last event instead of running on to the slice's end.
    sc_core::sc_start(slice, sc_core::SC_EXIT_ON_STARVATION);
    update();
  } while (sc_core::sc_pending_activity() && sc_core::sc_get_status() != sc_core::SC_STOPPED);
}

void ProgressLine::update() {
  using Seconds = std::chrono::duration<double>;
  const auto now = std::chrono::steady_clock::now();
  const double wall = Seconds(now - start_).count();
  if (wall < 1.0 || Seconds(now - last_).count() < 0.25) return;
  last_ = now;
  printed_ = true;
  std::fprintf(stderr, "\r\033[K  %s: %.1f ms simulated, %.1f s wall, %.0f delta cycles/s", label_.c_str(),
               double(sc_core::sc_time_stamp().value()) / 1e9, wall,
               double(sc_core::sc_delta_count()) / wall);
}

}  // namespace hmmsim::scenario
