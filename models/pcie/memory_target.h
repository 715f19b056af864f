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
// Device memory behind a BAR (setBacking): the bytes live in a ByteStore (PhysMem's device frames
// in a platform), not in the target, so bytes written over PCIe are the bytes the CPU and HMM
// see. The BAR aperture is a window onto a device memory that may be larger than it: aperture
// offset o reaches device-memory offset window(o), identity until mapWindow() moves a part of the
// aperture (what an exporter's BAR manager does when it retargets a window).
// MMIO registers (registerMmio): an aperture range whose accesses call a device callback
// (doorbells, control registers) instead of touching memory; they cost `latencyPs` and no
// memory bandwidth.
// Leaves out: banks, refresh, row-buffer locality, read/write turnaround, caches and coherence.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <systemc>
#include <tlm>

#include "models/pcie/link.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/byte_store.h"
#include "sim/errno.h"
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

/// One access to an MMIO register range (registerMmio). `offset` is relative to the range's
/// first byte; a read's handler fills `data[0, len)`; a write's reads it. `timePs` is the
/// absolute simulated time the access reaches the register.
struct MmioAccess {
  bool isWrite = false;
  std::uint64_t offset = 0;
  std::uint8_t* data = nullptr;  ///< may be null in pure-timing runs
  std::uint64_t len = 0;
  std::uint64_t timePs = 0;
};
/// One memory access as it reaches the target (setAccessObserver): the requester, the address
/// the target decoded (bus/physical, after any IOMMU translation), the bytes, the direction and
/// the absolute time of its first byte.
struct PcieTargetAccess {
  Bdf requester;
  std::uint64_t addr = 0;
  std::uint64_t len = 0;
  bool isWrite = false;
  std::uint64_t timePs = 0;
};
/// Sees every memory (not MMIO) access the target accepts; runs inside the requester's
/// b_transport and must not wait. What checker rule 3 hooks for an exporter's BAR.
using PcieAccessObserver = std::function<void(const PcieTargetAccess&)>;

/// A device's register callback. Runs inside the requester's b_transport (loosely timed): it
/// must not wait; a device thread that reacts later is notified from here.
using MmioHandler = std::function<void(const MmioAccess&)>;

class PcieMemoryTarget : public sc_core::sc_module {
  void bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay);

 public:
  PcieTlpTargetSocket<PcieMemoryTarget, &PcieMemoryTarget::bTransport> in{"in", this};

  PcieMemoryTarget(sc_core::sc_module_name name, const PcieMemoryTargetParams& params);

  /// Keep the bytes in `store` instead of the target's own pages: aperture offset o (of
  /// [baseAddr, baseAddr + sizeBytes)) is device-memory offset window(o), stored at store
  /// address `storeBase` + that offset; the device memory has `deviceBytes` (>= sizeBytes: the
  /// aperture may be smaller than the memory). Call before any access; the store must outlive
  /// the target. A device memory smaller than the aperture is a caller bug (asserted).
  void setBacking(ByteStore* store, std::uint64_t storeBase, std::uint64_t deviceBytes);
  /// Re-time the memory behind the target: latency, per-channel bandwidth, channel count and
  /// interleave from `timing` (its base, size and storeData are ignored: the BAR stays where
  /// enumeration put it). For a device model whose memory is not the fabric's default BAR memory
  /// (a GPU's VRAM): the fabric creates every BAR target with one set of parameters, the device
  /// gives its own before anything uses the target (asserted: no access was booked yet).
  void setTiming(const PcieMemoryTargetParams& timing);
  /// Point aperture offsets [barOffset, barOffset + bytes) at device-memory offsets
  /// [deviceOffset, ...): the window's mapping as the exporter drives it. Needs a backing.
  /// Returns Ok; Inval when bytes == 0, a bound is not 4 KiB aligned, the aperture range is
  /// outside the BAR or the device range outside the device memory (nothing changes then).
  Errno mapWindow(std::uint64_t barOffset, std::uint64_t deviceOffset, std::uint64_t bytes);
  /// Device-memory offset that aperture offset `barOffset` reaches (identity until mapWindow).
  std::uint64_t windowOffset(std::uint64_t barOffset) const;
  /// Routes accesses to aperture offsets [barOffset, barOffset + bytes) to `handler` (MMIO
  /// registers, doorbells) instead of memory. An access must fall inside one register range
  /// (one that straddles a range's edge completes with Unsupported Request). Returns Ok; Inval
  /// when bytes == 0, the range leaves the aperture, overlaps another register range, or the
  /// handler is empty.
  Errno registerMmio(std::uint64_t barOffset, std::uint64_t bytes, MmioHandler handler, std::string name);

  /// Calls `observer` for every memory access the target accepts (one per transaction: a burst
  /// at per-burst fidelity, a TLP at per-TLP fidelity), before the bytes move. Empty: none.
  void setAccessObserver(PcieAccessObserver observer) { observer_ = std::move(observer); }
  /// A device-local access to the memory behind the target, by the device's own engines (a GPU's
  /// compute or copy engine) rather than over PCIe: books `len` bytes at memory offset
  /// `memOffset` on the channels (same interleave as fabric accesses, by memory offset), the
  /// first byte ready at absolute time `readyPs`; `nowPs` is the caller's SystemC time (no later
  /// booking starts before it). Returns when the first and the last byte are done (latency
  /// included). No bytes move: the device works on its memory directly. Counted in
  /// "local_bytes". Peer accesses through the BAR and local accesses share the channels.
  HeadTail localAccess(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs, std::uint64_t nowPs,
                       std::uint32_t requesterKey);
  /// localAccess() of a divisible stream (a compute engine's many small accesses): each
  /// channel's bytes take its free time at or after `readyPs` around earlier bookings
  /// (LinkDirection::transmitSpread), so a peer access booked ahead of the stream costs the
  /// stream only that access's channel time, not the gap in front of it.
  HeadTail localStream(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs, std::uint64_t nowPs,
                       std::uint32_t requesterKey);
  /// Total data bandwidth of the channels. Unit: Gb/s.
  double totalGbps() const { return params_.bandwidthGbps * params_.channels; }

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
  /// localAccess (spread false) and localStream (true).
  HeadTail local(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs, std::uint64_t nowPs,
                 std::uint32_t requesterKey, bool spread);
  /// Validates `timing` (asserted) and makes channels_ from it: the constructor and setTiming().
  void buildChannels(const PcieMemoryTargetParams& timing);
  std::uint8_t* page(std::uint64_t pageIndex, bool create);
  /// Applies `fn(storeAddr, bufferOffset, n)` to the store pieces of aperture range [off, off + len).
  template <class Fn>
  void forEachBacked(std::uint64_t off, std::uint64_t len, Fn fn) const;
  struct Mmio {
    std::uint64_t bytes;
    MmioHandler handler;
    std::string name;
  };
  /// The register range holding [off, off + len) entirely; nullptr if none. `straddles`: some
  /// range overlaps it without holding it.
  const Mmio* mmioAt(std::uint64_t off, std::uint64_t len, std::uint64_t& rangeStart, bool& straddles) const;
  void mmioAccess(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

  PcieMemoryTargetParams params_;
  /// Bytes of [addr, addr + len) that fall on channel c.
  std::uint64_t channelBytes(std::uint64_t addr, std::uint64_t len, std::uint32_t c) const;

  std::vector<BandwidthResource> channels_;
  // Sparse store keyed by page index; lookups only, never iterated (deterministic).
  std::unordered_map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> pages_;
  ByteStore* store_ = nullptr;  // setBacking: device memory lives here
  std::uint64_t storeBase_ = 0, deviceBytes_ = 0;
  // Aperture segments that mapWindow moved: start offset -> (length, device offset). Offsets no
  // segment covers map to themselves.
  struct Segment {
    std::uint64_t bytes, deviceOffset;
  };
  std::map<std::uint64_t, Segment> window_;
  std::map<std::uint64_t, Mmio> mmio_;  // by aperture start offset
  PcieAccessObserver observer_;
  StatsGroup stats_;
  Counter& bytesWritten_;
  Counter& bytesRead_;
  Counter& unsupported_;
  Counter& mmioAccesses_;
  Counter& localBytes_;
};

}  // namespace hmmsim
