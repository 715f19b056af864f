#include "models/devices/nic/nic_driver.h"

#include "hmm/importer_mirror.h"
#include "models/devices/nic/nic.h"
#include "models/devices/nvme/nvme_spec.h"

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

namespace {

/// Map [va, va + len) for the device and return the device address of va; nullopt on failure.
std::optional<std::uint64_t> importRange(ImporterMirror& m, Va va, std::uint64_t len, bool write) {
  const Va start = va.alignDown(kPageSize);
  const Va end = (va + len + kPageSize - 1).alignDown(kPageSize);
  if (m.map(start, end, write) != HmmStatus::Ok) return std::nullopt;
  const auto t = m.translate(va, write);
  if (!t) return std::nullopt;
  return t->addr.value() + (va - start);
}

}  // namespace

std::optional<NicQueueWriterParams> importPeerQueue(ImporterMirror& m, const NicPeerQueueLayout& l) {
  NicQueueWriterParams p;
  const auto sq = importRange(m, l.bar0 + l.sqOffset, std::uint64_t(l.entries) * nvme::kSqeBytes, true);
  const auto cq = importRange(m, l.bar0 + l.cqOffset, std::uint64_t(l.entries) * nvme::kCqeBytes, false);
  const auto prp = importRange(m, l.bar0 + l.prpListOffset, std::uint64_t(l.entries) * kPageSize, true);
  const auto sqDb = importRange(m, l.bar0 + nvme::sqTailDoorbell(l.qid), 4, true);
  const auto cqDb = importRange(m, l.bar0 + nvme::cqHeadDoorbell(l.qid), 4, true);
  if (!sq || !cq || !prp || !sqDb || !cqDb) return std::nullopt;
  p.queue.qid = l.qid;
  p.queue.sqBase = *sq;
  p.queue.cqBase = *cq;
  p.queue.entries = l.entries;
  p.sqDoorbell = *sqDb;
  p.cqDoorbell = *cqDb;
  p.prpListBase = *prp;
  p.blockBytes = l.blockBytes;
  return p;
}

}  // namespace hmmsim
