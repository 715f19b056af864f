#pragma once
// PCIe link timing: the analytic bandwidth model of Neugebauer et al., "Understanding PCIe
// performance for end host networking" (SIGCOMM 2018, public model pcie-bench/pcie-model),
// restated from docs/reference/pcie-model.md.
//
// What it models: per-generation signalling rate and line encoding, the raw bandwidth of a link,
// the data-link overhead of ACK and flow-control-update DLLPs (one of each, 8 B, per "interval"
// bytes of TLP traffic, intervals from the PCIe Base Spec rev 5.0 tables 2-46..48 and 3-7..9,
// compiled in from pcie-dllp-intervals.csv), SKP ordered sets (4 B per 1538 B), the per-TLP wire
// bytes of MWr/MRd/CplD/Cpl, and the effective bandwidth of write and read streams.
//
// What it leaves out: flit mode (Gen6 uses the 242/256 encoding ratio and the Gen5 DLLP table as
// an approximation, as the public model does), replays, credit starvation, transfer alignment
// (the formulas assume transfers aligned to MPS/MRRS; tlp.h says how real segmentation differs).
//
// Pure: no SystemC. Bandwidths are in Gb/s (1e9 bit/s), sizes in bytes.

#include <cstdint>
#include <optional>

#include "sim/errno.h"

namespace hmmsim {

/// PCIe generation (the link's negotiated speed).
enum class PcieGen : std::uint8_t {
  Gen1 = 1,  ///< 2.5 GT/s, 8b/10b
  Gen2 = 2,  ///< 5 GT/s, 8b/10b
  Gen3 = 3,  ///< 8 GT/s, 128b/130b
  Gen4 = 4,  ///< 16 GT/s, 128b/130b
  Gen5 = 5,  ///< 32 GT/s, 128b/130b
  Gen6 = 6,  ///< 64 GT/s, 242/256 (approximation: flit mode not modelled)
};

/// Configuration of one link as both ends negotiated it (the same in both directions).
struct PcieLinkConfig {
  PcieGen gen = PcieGen::Gen3;    ///< generation; default Gen3
  std::uint32_t lanes = 8;        ///< width: 1, 2, 4, 8, 16 or 32; default x8
  std::uint32_t mpsBytes = 256;   ///< Max_Payload_Size: 128..4096, power of two; default 256
  std::uint32_t mrrsBytes = 512;  ///< Max_Read_Request_Size: 128..4096, power of two; default 512
  std::uint32_t rcbBytes = 64;    ///< Read Completion Boundary: 64, 128, 256 or 512; default 64
  bool rcbChunks = false;         ///< completer splits read data at every RCB (older chipsets)
                                  ///< instead of into MPS-sized completions; default false
  bool addr64 = true;             ///< 64-bit addressing (4 DW request header); default true
  bool ecrc = false;              ///< ECRC digest (4 B) on every TLP; default false
};

/// Checks a configuration against the values the model (and the spec) allows.
/// Returns Errno::Ok, or Errno::Inval if lanes, MPS, MRRS or RCB is not one of the listed values.
Errno validateLinkConfig(const PcieLinkConfig& cfg);

/// Signalling rate per lane in GT/s.
double gigaTransfersPerLane(PcieGen gen);
/// Line-encoding efficiency: 0.8 (8b/10b), 128/130, or 242/256.
double encodingRatio(PcieGen gen);
/// Raw bandwidth in Gb/s: GT/s × encoding ratio × lanes (Gen3 x8 = 63.015 Gb/s).
double rawBandwidthGbps(PcieGen gen, std::uint32_t lanes);

/// Recommended ACK and UpdateFC intervals in bytes of TLP traffic.
struct DllpIntervals {
  std::uint32_t ackBytes;       ///< Ack latency limit (spec tables 3-7..3-9)
  std::uint32_t fcUpdateBytes;  ///< UpdateFC interval (spec tables 2-46..2-48)
};
/// The interval table entry, or nullopt if lanes/MPS are not in the table. Gen4..Gen6 use the
/// Gen3 values, as the public model does (the Gen4/Gen5 values are the Gen3 tables; Gen6 copies Gen5).
std::optional<DllpIntervals> dllpIntervals(PcieGen gen, std::uint32_t lanes, std::uint32_t mpsBytes);

constexpr std::uint32_t kDllpBytes = 8;            ///< ACK / UpdateFC DLLP on the wire (2 phys + 4 + 2 CRC)
constexpr std::uint32_t kSkpIntervalBytes = 1538;  ///< one SKP ordered set per this many bytes
constexpr std::uint32_t kSkpBytes = 4;             ///< SKP ordered set length
constexpr std::uint32_t kTlpFramingBytes = 8;      ///< start/end symbol, sequence number, LCRC
constexpr std::uint32_t kTlpGenericHeaderBytes = 4;
constexpr std::uint32_t kTlpEcrcBytes = 4;

/// TLP-layer bandwidth in Gb/s: Raw × (1 − 8/ack − 8/fc − 4/1538). cfg must be valid.
double tlpBandwidthGbps(const PcieLinkConfig& cfg);

/// Wire bytes of one memory write request carrying `payload` bytes (MWr: 24 B + payload with
/// 64-bit addresses and no ECRC).
std::uint32_t mwrWireBytes(const PcieLinkConfig& cfg, std::uint32_t payload);
/// Wire bytes of one memory read request (MRd: 24 B with 64-bit addresses, 20 B with 32-bit).
std::uint32_t mrdWireBytes(const PcieLinkConfig& cfg);
/// Wire bytes of one completion with `payload` data bytes (CplD: 20 B + payload).
std::uint32_t cplDWireBytes(const PcieLinkConfig& cfg, std::uint32_t payload);
/// Wire bytes of one completion without data (Cpl: 20 B; e.g. an Unsupported Request status).
std::uint32_t cplWireBytes(const PcieLinkConfig& cfg);

/// Number of CplD a completer returns for `size` aligned bytes: ceil(size / MPS), or
/// ceil(size / RCB) when cfg.rcbChunks.
std::uint64_t modelCompletionCount(const PcieLinkConfig& cfg, std::uint64_t size);

/// Effective bandwidth (Gb/s) of a stream of DMA writes of `size` bytes each (size > 0):
/// TLP_bw × size / (ceil(size/MPS) × MWr header + size).
double writeEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size);

/// Effective bandwidth (Gb/s) of a stream of DMA reads of `size` bytes each (size > 0), received
/// data per second: limited by the completion direction, or by the request direction when the
/// MRd stream would need more than TLP_bw.
double readEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size);

/// Reads and writes of `size` bytes at once, one of each per "transaction" (the model's
/// read_write): the device-to-host direction carries MWr + MRd, the other CplD. Returns the
/// effective bandwidth of each stream (Gb/s); both streams get the same rate.
double readWriteEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size);

/// Picoseconds to serialize `bytes` at `gbps` (rounded to the nearest picosecond).
std::uint64_t serializationPs(std::uint64_t bytes, double gbps);

}  // namespace hmmsim
