// The progress line. See progress.h.
#include "scenarios/progress.h"

#include <cstdio>

namespace hmmsim::scenario {

ProgressLine::ProgressLine(sc_core::sc_module_name name, std::string label, std::function<bool()> done)
    : sc_module(name),
      label_(std::move(label)),
      done_(std::move(done)),
      start_(std::chrono::steady_clock::now()) {
  last_ = start_;
  SC_THREAD(run);
}

ProgressLine::~ProgressLine() {
  if (printed_) std::fprintf(stderr, "\r\033[K");
}

void ProgressLine::run() {
  using Seconds = std::chrono::duration<double>;
  while (!done_()) {
    wait(sc_core::sc_time(1, sc_core::SC_MS));
    const auto now = std::chrono::steady_clock::now();
    const double wall = Seconds(now - start_).count();
    if (wall < 1.0 || Seconds(now - last_).count() < 0.25) continue;
    last_ = now;
    printed_ = true;
    std::fprintf(stderr, "\r\033[K  %s: %.1f ms simulated, %.1f s wall, %.0f delta cycles/s", label_.c_str(),
                 double(sc_core::sc_time_stamp().value()) / 1e9, wall,
                 double(sc_core::sc_delta_count()) / wall);
  }
}

}  // namespace hmmsim::scenario
