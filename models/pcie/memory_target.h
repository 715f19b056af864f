#pragma once
// A memory behind the PCIe fabric as a bandwidth/latency target: host DRAM behind a root complex
// (until the cpu_mmu DRAM model is bound there instead) or an endpoint's BAR-backed device memory.
//
// What it models: a fixed access latency, `channels` interleaved channels (every
// `interleaveBytes` of address space goes to the next channel), each a bandwidth with interval
// booking (interval_book.h) — a burst books on every channel the bytes it holds there, O(channels)
// per burst — and sparse byte storage (a 4 KiB page gets bytes when first written; reads of
// untouched bytes return zeros). Writes complete when their last byte is stored; a read's
// completion data starts `latencyPs` after the request arrived, at the memory's bandwidth.
// Addresses outside [baseAddr, baseAddr + sizeBytes) complete with Unsupported Request.
// Defaults and their sources: host DRAM is DDR4-3200 (JEDEC JESD79-4: 3200 MT/s x 8 B =
// 25.6 GB/s = 204.8 Gb/s peak per channel), 4 channels, 256 B interleave; so two Gen4 x16
// devices streaming at once already approach it. Device (BAR) memory: the same default per
// device — an accelerator card with DDR4 behind its BAR — set it per device for HBM/GDDR parts.
// Leaves out: banks, refresh, row-buffer locality, read/write turnaround, caches and coherence.

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <systemc>
#include <tlm>

#include "models/pcie/link.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"

namespace hmmsim {

struct PcieMemoryTargetParams {
  std::uint64_t baseAddr = 0;            ///< first address claimed (bus/physical)
  std::uint64_t sizeBytes = 1ull << 34;  ///< bytes claimed; default 16 GiB
  std::uint64_t latencyPs = 80'000;      ///< access latency, ps; default 80 ns
  double bandwidthGbps = 204.8;          ///< data bandwidth per channel, Gb/s; default 204.8 (DDR4-3200)
  std::uint32_t channels = 4;            ///< interleaved channels (>= 1); default 4
  std::uint64_t interleaveBytes = 256;   ///< bytes per channel before the next, power of two; default 256
  bool storeData = true;                 ///< keep bytes (false: pure timing)
};

class PcieMemoryTarget : public sc_core::sc_module {
  void bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

 public:
  PcieTargetSocket<PcieMemoryTarget, &PcieMemoryTarget::bTransport> in{"in", this};

  PcieMemoryTarget(sc_core::sc_module_name name, const PcieMemoryTargetParams& params);

  /// Backdoor access (no time): copies `len` bytes; addresses must be inside the target.
  void peek(std::uint64_t addr, std::uint8_t* out, std::uint64_t len) const;
  void poke(std::uint64_t addr, const std::uint8_t* data, std::uint64_t len);

  bool claims(std::uint64_t addr, std::uint64_t len) const {
    return addr >= params_.baseAddr && len <= params_.sizeBytes &&
           addr - params_.baseAddr <= params_.sizeBytes - len;
  }
  const PcieMemoryTargetParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }

 private:
  std::uint8_t* page(std::uint64_t pageIndex, bool create);

  PcieMemoryTargetParams params_;
  /// Bytes of [addr, addr + len) that fall on channel c.
  std::uint64_t channelBytes(std::uint64_t addr, std::uint64_t len, std::uint32_t c) const;

  std::vector<BandwidthResource> channels_;
  // Sparse store keyed by page index; lookups only, never iterated (deterministic).
  std::unordered_map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> pages_;
  StatsGroup stats_;
  Counter& bytesWritten_;
  Counter& bytesRead_;
  Counter& unsupported_;
};

}  // namespace hmmsim
