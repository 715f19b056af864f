#include "models/pcie/link_timing.h"

#include <algorithm>
#include <cmath>

#include "sim/assert.h"

namespace hmmsim {
namespace {

struct DllpRow {
  std::uint8_t gen;
  std::uint8_t lanes;
  std::uint16_t mps;
  std::uint16_t ack;
  std::uint16_t fc;
};

// Data of tests/unit/pcie/pcie-dllp-intervals.csv (gen1..gen5 × x1..x32 × MPS 128..4096).
// Note that two rows carry different ACK and UpdateFC intervals (gen1 x32 MPS 2048: 148/248,
// gen2 x32 MPS 4096: 237/327); they are kept as published.
constexpr DllpRow kDllpTable[] = {
    {1, 1, 128, 237, 237},    {1, 1, 256, 416, 416},    {1, 1, 512, 559, 559},    {1, 1, 1024, 1071, 1071},
    {1, 1, 2048, 2095, 2095}, {1, 1, 4096, 4143, 4143}, {1, 2, 128, 128, 128},    {1, 2, 256, 217, 217},
    {1, 2, 512, 289, 289},    {1, 2, 1024, 545, 545},   {1, 2, 2048, 1057, 1057}, {1, 2, 4096, 2081, 2081},
    {1, 4, 128, 73, 73},      {1, 4, 256, 118, 118},    {1, 4, 512, 154, 154},    {1, 4, 1024, 282, 282},
    {1, 4, 2048, 538, 538},   {1, 4, 4096, 1050, 1050}, {1, 8, 128, 67, 67},      {1, 8, 256, 107, 107},
    {1, 8, 512, 86, 86},      {1, 8, 1024, 150, 150},   {1, 8, 2048, 278, 278},   {1, 8, 4096, 534, 534},
    {1, 16, 128, 48, 48},     {1, 16, 256, 72, 72},     {1, 16, 512, 86, 86},     {1, 16, 1024, 150, 150},
    {1, 16, 2048, 278, 278},  {1, 16, 4096, 534, 534},  {1, 32, 128, 33, 33},     {1, 32, 256, 45, 45},
    {1, 32, 512, 52, 52},     {1, 32, 1024, 84, 84},    {1, 32, 2048, 148, 248},  {1, 32, 4096, 276, 276},
    {2, 1, 128, 288, 288},    {2, 1, 256, 467, 467},    {2, 1, 512, 610, 610},    {2, 1, 1024, 1122, 1122},
    {2, 1, 2048, 2146, 2146}, {2, 1, 4096, 4194, 4194}, {2, 2, 128, 179, 179},    {2, 2, 256, 268, 268},
    {2, 2, 512, 340, 340},    {2, 2, 1024, 596, 596},   {2, 2, 2048, 1108, 1108}, {2, 2, 4096, 2132, 2132},
    {2, 4, 128, 124, 124},    {2, 4, 256, 169, 169},    {2, 4, 512, 205, 205},    {2, 4, 1024, 333, 333},
    {2, 4, 2048, 589, 589},   {2, 4, 4096, 1101, 1101}, {2, 8, 128, 118, 118},    {2, 8, 256, 158, 158},
    {2, 8, 512, 137, 137},    {2, 8, 1024, 201, 201},   {2, 8, 2048, 329, 329},   {2, 8, 4096, 585, 585},
    {2, 16, 128, 99, 99},     {2, 16, 256, 123, 123},   {2, 16, 512, 137, 137},   {2, 16, 1024, 201, 201},
    {2, 16, 2048, 329, 329},  {2, 16, 4096, 585, 585},  {2, 32, 128, 84, 84},     {2, 32, 256, 96, 96},
    {2, 32, 512, 103, 103},   {2, 32, 1024, 135, 135},  {2, 32, 2048, 199, 199},  {2, 32, 4096, 237, 327},
    {3, 1, 128, 333, 333},    {3, 1, 256, 512, 512},    {3, 1, 512, 655, 655},    {3, 1, 1024, 1167, 1167},
    {3, 1, 2048, 2191, 2191}, {3, 1, 4096, 4239, 4239}, {3, 2, 128, 224, 224},    {3, 2, 256, 313, 313},
    {3, 2, 512, 385, 385},    {3, 2, 1024, 641, 641},   {3, 2, 2048, 1153, 1153}, {3, 2, 4096, 2177, 2177},
    {3, 4, 128, 169, 169},    {3, 4, 256, 214, 214},    {3, 4, 512, 250, 250},    {3, 4, 1024, 378, 378},
    {3, 4, 2048, 634, 634},   {3, 4, 4096, 1146, 1146}, {3, 8, 128, 163, 163},    {3, 8, 256, 203, 203},
    {3, 8, 512, 182, 182},    {3, 8, 1024, 246, 246},   {3, 8, 2048, 374, 374},   {3, 8, 4096, 630, 630},
    {3, 16, 128, 144, 144},   {3, 16, 256, 168, 168},   {3, 16, 512, 182, 182},   {3, 16, 1024, 246, 246},
    {3, 16, 2048, 374, 374},  {3, 16, 4096, 630, 630},  {3, 32, 128, 129, 129},   {3, 32, 256, 141, 141},
    {3, 32, 512, 148, 148},   {3, 32, 1024, 180, 180},  {3, 32, 2048, 244, 244},  {3, 32, 4096, 372, 372},
    {4, 1, 128, 333, 333},    {4, 1, 256, 512, 512},    {4, 1, 512, 655, 655},    {4, 1, 1024, 1167, 1167},
    {4, 1, 2048, 2191, 2191}, {4, 1, 4096, 4239, 4239}, {4, 2, 128, 224, 224},    {4, 2, 256, 313, 313},
    {4, 2, 512, 385, 385},    {4, 2, 1024, 641, 641},   {4, 2, 2048, 1153, 1153}, {4, 2, 4096, 2177, 2177},
    {4, 4, 128, 169, 169},    {4, 4, 256, 214, 214},    {4, 4, 512, 250, 250},    {4, 4, 1024, 378, 378},
    {4, 4, 2048, 634, 634},   {4, 4, 4096, 1146, 1146}, {4, 8, 128, 163, 163},    {4, 8, 256, 203, 203},
    {4, 8, 512, 182, 182},    {4, 8, 1024, 246, 246},   {4, 8, 2048, 374, 374},   {4, 8, 4096, 630, 630},
    {4, 16, 128, 144, 144},   {4, 16, 256, 168, 168},   {4, 16, 512, 182, 182},   {4, 16, 1024, 246, 246},
    {4, 16, 2048, 374, 374},  {4, 16, 4096, 630, 630},  {4, 32, 128, 129, 129},   {4, 32, 256, 141, 141},
    {4, 32, 512, 148, 148},   {4, 32, 1024, 180, 180},  {4, 32, 2048, 244, 244},  {4, 32, 4096, 372, 372},
    {5, 1, 128, 333, 333},    {5, 1, 256, 512, 512},    {5, 1, 512, 655, 655},    {5, 1, 1024, 1167, 1167},
    {5, 1, 2048, 2191, 2191}, {5, 1, 4096, 4239, 4239}, {5, 2, 128, 224, 224},    {5, 2, 256, 313, 313},
    {5, 2, 512, 385, 385},    {5, 2, 1024, 641, 641},   {5, 2, 2048, 1153, 1153}, {5, 2, 4096, 2177, 2177},
    {5, 4, 128, 169, 169},    {5, 4, 256, 214, 214},    {5, 4, 512, 250, 250},    {5, 4, 1024, 378, 378},
    {5, 4, 2048, 634, 634},   {5, 4, 4096, 1146, 1146}, {5, 8, 128, 163, 163},    {5, 8, 256, 203, 203},
    {5, 8, 512, 182, 182},    {5, 8, 1024, 246, 246},   {5, 8, 2048, 374, 374},   {5, 8, 4096, 630, 630},
    {5, 16, 128, 144, 144},   {5, 16, 256, 168, 168},   {5, 16, 512, 182, 182},   {5, 16, 1024, 246, 246},
    {5, 16, 2048, 374, 374},  {5, 16, 4096, 630, 630},  {5, 32, 128, 129, 129},   {5, 32, 256, 141, 141},
    {5, 32, 512, 148, 148},   {5, 32, 1024, 180, 180},  {5, 32, 2048, 244, 244},  {5, 32, 4096, 372, 372},
};

bool isPow2In(std::uint32_t v, std::uint32_t lo, std::uint32_t hi) {
  return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

std::uint32_t requestHeaderBytes(const PcieLinkConfig& cfg) {
  // 8 B framing + 4 B generic header + 12 B (64-bit) or 8 B (32-bit) request header (+ ECRC).
  return kTlpFramingBytes + kTlpGenericHeaderBytes + (cfg.addr64 ? 12u : 8u) +
         (cfg.ecrc ? kTlpEcrcBytes : 0u);
}

std::uint32_t completionHeaderBytes(const PcieLinkConfig& cfg) {
  return kTlpFramingBytes + kTlpGenericHeaderBytes + 8u + (cfg.ecrc ? kTlpEcrcBytes : 0u);
}

std::uint64_t ceilDiv(std::uint64_t a, std::uint64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

Errno validateLinkConfig(const PcieLinkConfig& cfg) {
  const auto g = static_cast<unsigned>(cfg.gen);
  if (g < 1 || g > 6) return Errno::Inval;
  if (!isPow2In(cfg.lanes, 1, 32)) return Errno::Inval;
  if (!isPow2In(cfg.mpsBytes, 128, 4096)) return Errno::Inval;
  if (!isPow2In(cfg.mrrsBytes, 128, 4096)) return Errno::Inval;
  if (!isPow2In(cfg.rcbBytes, 64, 512)) return Errno::Inval;
  return Errno::Ok;
}

double gigaTransfersPerLane(PcieGen gen) {
  switch (gen) {
    case PcieGen::Gen1:
      return 2.5;
    case PcieGen::Gen2:
      return 5.0;
    case PcieGen::Gen3:
      return 8.0;
    case PcieGen::Gen4:
      return 16.0;
    case PcieGen::Gen5:
      return 32.0;
    case PcieGen::Gen6:
      return 64.0;
  }
  HMMSIM_ASSERT(false, "bad PcieGen " << static_cast<int>(gen));
}

double encodingRatio(PcieGen gen) {
  switch (gen) {
    case PcieGen::Gen1:
    case PcieGen::Gen2:
      return 8.0 / 10.0;
    case PcieGen::Gen3:
    case PcieGen::Gen4:
    case PcieGen::Gen5:
      return 128.0 / 130.0;
    case PcieGen::Gen6:
      return 242.0 / 256.0;
  }
  HMMSIM_ASSERT(false, "bad PcieGen " << static_cast<int>(gen));
}

double rawBandwidthGbps(PcieGen gen, std::uint32_t lanes) {
  return gigaTransfersPerLane(gen) * encodingRatio(gen) * double(lanes);
}

std::optional<DllpIntervals> dllpIntervals(PcieGen gen, std::uint32_t lanes, std::uint32_t mpsBytes) {
  // Gen6 is not in the spec tables the model uses; the model copies the Gen5 values.
  const unsigned g = gen == PcieGen::Gen6 ? 5u : static_cast<unsigned>(gen);
  for (const DllpRow& r : kDllpTable) {
    if (r.gen == g && r.lanes == lanes && r.mps == mpsBytes) return DllpIntervals{r.ack, r.fc};
  }
  return std::nullopt;
}

double tlpBandwidthGbps(const PcieLinkConfig& cfg) {
  const auto iv = dllpIntervals(cfg.gen, cfg.lanes, cfg.mpsBytes);
  HMMSIM_ASSERT(iv.has_value(), "no DLLP interval for gen" << static_cast<int>(cfg.gen) << " x" << cfg.lanes
                                                           << " MPS " << cfg.mpsBytes);
  const double overhead = double(kDllpBytes) / double(iv->ackBytes) +
                          double(kDllpBytes) / double(iv->fcUpdateBytes) +
                          double(kSkpBytes) / double(kSkpIntervalBytes);
  const double raw = rawBandwidthGbps(cfg.gen, cfg.lanes);
  return raw - raw * overhead;
}

std::uint32_t mwrWireBytes(const PcieLinkConfig& cfg, std::uint32_t payload) {
  return requestHeaderBytes(cfg) + payload;
}

std::uint32_t mrdWireBytes(const PcieLinkConfig& cfg) {
  return requestHeaderBytes(cfg);
}

std::uint32_t cplDWireBytes(const PcieLinkConfig& cfg, std::uint32_t payload) {
  return completionHeaderBytes(cfg) + payload;
}

std::uint32_t cplWireBytes(const PcieLinkConfig& cfg) {
  return completionHeaderBytes(cfg);
}

std::uint64_t modelCompletionCount(const PcieLinkConfig& cfg, std::uint64_t size) {
  return ceilDiv(size, cfg.rcbChunks ? cfg.rcbBytes : cfg.mpsBytes);
}

double writeEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size) {
  HMMSIM_ASSERT(size > 0, "zero-sized write stream");
  const std::uint64_t wire = ceilDiv(size, cfg.mpsBytes) * requestHeaderBytes(cfg) + size;
  return tlpBandwidthGbps(cfg) * double(size) / double(wire);
}

double readEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size) {
  HMMSIM_ASSERT(size > 0, "zero-sized read stream");
  const std::uint64_t tx = ceilDiv(size, cfg.mrrsBytes) * requestHeaderBytes(cfg);
  const std::uint64_t rx = modelCompletionCount(cfg, size) * completionHeaderBytes(cfg) + size;
  // Transactions per second are bounded by whichever direction needs more wire bytes.
  return tlpBandwidthGbps(cfg) * double(size) / double(std::max(tx, rx));
}

double readWriteEffectiveGbps(const PcieLinkConfig& cfg, std::uint64_t size) {
  HMMSIM_ASSERT(size > 0, "zero-sized read/write stream");
  const std::uint64_t tx = ceilDiv(size, cfg.mpsBytes) * requestHeaderBytes(cfg) + size +
                           ceilDiv(size, cfg.mrrsBytes) * requestHeaderBytes(cfg);
  const std::uint64_t rx = modelCompletionCount(cfg, size) * completionHeaderBytes(cfg) + size;
  return tlpBandwidthGbps(cfg) * double(size) / double(std::max(tx, rx));
}

std::uint64_t serializationPs(std::uint64_t bytes, double gbps) {
  return static_cast<std::uint64_t>(std::llround(double(bytes) * 8000.0 / gbps));
}

}  // namespace hmmsim
