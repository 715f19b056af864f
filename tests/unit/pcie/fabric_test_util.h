#pragma once
// Shared helpers for the SystemC fabric tests: a driver thread streaming DMA bursts through a
// PcieDmaEngine, recording completion times (asserted after sc_start returns), and a thread that
// runs a test's body once.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/pcie/dma_engine.h"
#include "models/pcie/pcie_fabric.h"

namespace hmmsim::test {

/// Runs `body` once in its own SC_THREAD with its own quantum keeper (reset before, synced after).
class QkThread : public sc_core::sc_module {
 public:
  using Body = std::function<void(tlm_utils::tlm_quantumkeeper&)>;
  SC_HAS_PROCESS(QkThread);
  QkThread(sc_core::sc_module_name name, Body body) : sc_module(name), body_(std::move(body)) {
    SC_THREAD(run);
  }

 private:
  void run() {
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    body_(qk);
    qk.sync();
  }
  Body body_;
};

enum class StreamOp { Write, Read, WriteThenRead };

/// Streams `count` bursts of `size` bytes at base, base + stride, ... from its own SC_THREAD.
class StreamDriver : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(StreamDriver);
  StreamDriver(sc_core::sc_module_name name, PcieDmaEngine& engine, StreamOp op, std::uint64_t base,
               std::uint64_t size, std::uint64_t stride, std::uint32_t count, std::uint64_t startPs = 0)
      : sc_module(name),
        engine_(engine),
        op_(op),
        base_(base),
        size_(size),
        stride_(stride),
        count_(count),
        startPs_(startPs) {
    SC_THREAD(run);
  }

  std::vector<std::uint64_t> writeDone, readDone;  ///< absolute ps per burst
  CplStatus worst = CplStatus::SuccessfulCompletion;
  std::uint64_t firstIssuePs = 0;

  /// Steady-state throughput in Gb/s between the first and the last completion.
  static double gbps(const std::vector<std::uint64_t>& done, std::uint64_t size) {
    if (done.size() < 2) return 0;
    const auto [lo, hi] = std::minmax_element(done.begin(), done.end());
    return double(done.size() - 1) * double(size) * 8.0 * 1000.0 / double(*hi - *lo);
  }
  double writeGbps() const { return gbps(writeDone, size_); }
  double readGbps() const { return gbps(readDone, size_); }

 private:
  void note(const DmaIssue& r, std::vector<std::uint64_t>& v) {
    v.push_back(r.donePs);
    if (r.status != CplStatus::SuccessfulCompletion) worst = r.status;
  }
  void run() {
    if (startPs_ > 0) wait(sc_core::sc_time::from_value(startPs_));
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    firstIssuePs = sc_core::sc_time_stamp().value();
    for (std::uint32_t i = 0; i < count_; ++i) {
      const std::uint64_t a = base_ + i * stride_;
      if (op_ == StreamOp::Write || op_ == StreamOp::WriteThenRead)
        note(engine_.issueWrite(a, size_, nullptr, qk), writeDone);
      if (op_ == StreamOp::Read || op_ == StreamOp::WriteThenRead)
        note(engine_.issueRead(a, size_, nullptr, qk), readDone);
    }
    qk.sync();
  }

  PcieDmaEngine& engine_;
  StreamOp op_;
  std::uint64_t base_, size_, stride_;
  std::uint32_t count_;
  std::uint64_t startPs_;
};

inline PcieMemoryTargetParams hostMemory(std::uint64_t latencyPs = 80'000) {
  PcieMemoryTargetParams m;
  m.baseAddr = 0;
  m.sizeBytes = 1ull << 32;
  m.latencyPs = latencyPs;
  m.bandwidthGbps = 4000.0;  // never the bottleneck in these tests
  m.storeData = false;
  return m;
}

inline Bdf bdf(std::uint8_t bus) {
  return Bdf{0, bus, 0, 0};
}

/// Relative difference |a - b| / b.
inline double relErr(double a, double b) {
  return std::abs(a - b) / b;
}

}  // namespace hmmsim::test
