#include "models/devices/nic/nic_driver.h"

#include "hmm/importer_mirror.h"
#include "models/devices/common/importer_dma.h"
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

/// Map [va, va + len) for the device ahead of its first access; false on failure.
bool mapAhead(ImporterMirror& m, Va va, std::uint64_t len, bool write) {
  const Va start = va.alignDown(kPageSize);
  const Va end = (va + len + kPageSize - 1).alignDown(kPageSize);
  return m.map(start, end, write) == HmmStatus::Ok;
}

}  // namespace

std::optional<NicQueueWriterParams> importPeerQueue(ImporterDma& dma, const NicPeerQueueLayout& l) {
  ImporterMirror& m = dma.mirror();
  const Va sq = l.bar0 + l.sqOffset, cq = l.bar0 + l.cqOffset, prp = l.bar0 + l.prpListOffset;
  const Va sqDb = l.bar0 + nvme::sqTailDoorbell(l.qid), cqDb = l.bar0 + nvme::cqHeadDoorbell(l.qid);
  if (!mapAhead(m, sq, std::uint64_t(l.entries) * nvme::kSqeBytes, true) ||
      !mapAhead(m, cq, std::uint64_t(l.entries) * nvme::kCqeBytes, false) ||
      !mapAhead(m, prp, std::uint64_t(l.entries) * kPageSize, true) || !mapAhead(m, sqDb, 4, true) ||
      !mapAhead(m, cqDb, 4, true))
    return std::nullopt;
  NicQueueWriterParams p;
  p.queue.qid = l.qid;
  p.queue.sqBase = sq.value();
  p.queue.cqBase = cq.value();
  p.queue.entries = l.entries;
  p.sqDoorbell = sqDb.value();
  p.cqDoorbell = cqDb.value();
  p.prpListBase = prp.value();
  p.prpListPeerBase = l.peerBar0Bus + l.prpListOffset;
  p.blockBytes = l.blockBytes;
  return p;
}

}  // namespace hmmsim
