#include "models/devices/nic/nic_driver.h"

#include "models/devices/nic/nic.h"

namespace hmmsim {

using namespace nic;

NicDriver::NicDriver(DriverHost& host, const NicDriverParams& params) : host_(host), params_(params) {}

void NicDriver::setupTx() {
  const auto lo = static_cast<std::uint32_t>(params_.txRingPa);
  const auto hi = static_cast<std::uint32_t>(params_.txRingPa >> 32);
  const std::uint32_t len = params_.txEntries * kTxDescBytes, zero = 0;
  host_.store(params_.barBase + kRegTdbal, &lo, 4);
  host_.store(params_.barBase + kRegTdbah, &hi, 4);
  host_.store(params_.barBase + kRegTdlen, &len, 4);
  host_.store(params_.barBase + kRegTdh, &zero, 4);
  host_.store(params_.barBase + kRegTdt, &zero, 4);
  tail_ = clean_ = 0;
}

bool NicDriver::queue(std::uint64_t addr, std::uint16_t len) {
  if (inFlight() + 1 >= params_.txEntries) return false;
  host_.cpuWork(params_.xmitCostPs);
  TxDesc d;
  d.addr = addr;
  d.length = len;
  std::uint8_t raw[kTxDescBytes];
  d.encode(raw);
  host_.store(params_.txRingPa + std::uint64_t(tail_) * kTxDescBytes, raw, sizeof raw);
  tail_ = (tail_ + 1) % params_.txEntries;
  return true;
}

void NicDriver::kick() {
  host_.store(params_.barBase + kRegTdt, &tail_, 4);
}

std::uint32_t NicDriver::reclaim() {
  std::uint32_t n = 0;
  while (clean_ != tail_) {
    std::uint8_t sta = 0;
    host_.load(params_.txRingPa + std::uint64_t(clean_) * kTxDescBytes + 12, &sta, 1);
    if ((sta & kStaDd) == 0) break;
    clean_ = (clean_ + 1) % params_.txEntries;
    ++n;
  }
  return n;
}

}  // namespace hmmsim
