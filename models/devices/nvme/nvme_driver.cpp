#include "models/devices/nvme/nvme_driver.h"

#include "sim/assert.h"

namespace hmmsim {

using namespace nvme;

NvmeDriver::NvmeDriver(DriverHost& host, const NvmeDriverParams& params)
    : host_(host), params_(params), queues_(1) {
  NvmeQueueState& a = queues_[0];
  a.qid = 0;
  a.sqBase = params.adminSqPa;
  a.cqBase = params.adminCqPa;
  a.entries = params.adminEntries;
}

void NvmeDriver::store32(std::uint64_t off, std::uint32_t v) {
  host_.store(params_.barBase + off, &v, 4);
}
void NvmeDriver::store64(std::uint64_t off, std::uint64_t v) {
  // 64-bit registers written as two dwords, low first (lo_hi_writeq).
  store32(off, static_cast<std::uint32_t>(v));
  store32(off + 4, static_cast<std::uint32_t>(v >> 32));
}

bool NvmeDriver::enable(unsigned maxPolls) {
  const std::uint32_t n = params_.adminEntries - 1;
  store32(kRegAqa, n | n << 16);
  store64(kRegAsq, params_.adminSqDma.value_or(params_.adminSqPa));
  store64(kRegAcq, params_.adminCqDma.value_or(params_.adminCqPa));
  // CC: EN, CSS = NVM, MPS = 4 KiB, IOSQES = 6 (64 B), IOCQES = 4 (16 B).
  store32(kRegCc, 1u | 6u << 16 | 4u << 20);
  for (unsigned i = 0; i < maxPolls; ++i) {
    std::uint32_t csts = 0;
    host_.load(params_.barBase + kRegCsts, &csts, 4);
    if (csts & 1) return true;
    host_.cpuWork(params_.pollIntervalPs);
  }
  return false;
}

void NvmeDriver::setMsix(std::uint16_t vector, std::uint64_t addr, std::uint32_t data) {
  const std::uint64_t e = kMsixTable + std::uint64_t(vector) * kMsixEntryBytes;
  store64(e, addr);
  store32(e + 8, data);
  store32(e + 12, 0);  // unmask
}

NvmeQueueState& NvmeDriver::queue(std::uint16_t qid) {
  HMMSIM_ASSERT(qid < queues_.size() && queues_[qid].entries != 0, "nvme driver: no queue " << qid);
  return queues_[qid];
}

Cqe NvmeDriver::adminCommand(Sqe sqe) {
  sqe.cid = nextCid_++;
  submit(0, sqe);
  for (;;) {
    if (auto c = reap(0)) {
      ringCqHead(0);
      return *c;
    }
    host_.cpuWork(params_.pollIntervalPs);
  }
}

std::uint16_t NvmeDriver::createIoQueuePair(std::uint16_t qid, std::uint64_t sqBase, std::uint64_t cqBase,
                                            std::uint32_t entries, std::uint16_t vector, bool interrupts) {
  return createIoQueuePair(qid, NvmeQueueAddrs{sqBase, cqBase, sqBase, cqBase}, entries, vector, interrupts);
}

std::uint16_t NvmeDriver::createIoQueuePair(std::uint16_t qid, const NvmeQueueAddrs& addrs,
                                            std::uint32_t entries, std::uint16_t vector, bool interrupts) {
  Sqe cq;
  cq.opcode = static_cast<std::uint8_t>(AdminOpcode::CreateIoCq);
  cq.nsid = 0;
  cq.prp1 = addrs.cqDma;
  cq.cdw10 = qid | (entries - 1) << 16;
  cq.cdw11 = 1u | (interrupts ? 2u : 0u) | static_cast<std::uint32_t>(vector) << 16;
  const Cqe a = adminCommand(cq);
  if (a.status != 0) return a.status;
  Sqe sq;
  sq.opcode = static_cast<std::uint8_t>(AdminOpcode::CreateIoSq);
  sq.nsid = 0;
  sq.prp1 = addrs.sqDma;
  sq.cdw10 = qid | (entries - 1) << 16;
  sq.cdw11 = 1u | static_cast<std::uint32_t>(qid) << 16;  // PC, CQID = qid
  const Cqe b = adminCommand(sq);
  if (b.status != 0) return b.status;
  if (queues_.size() <= qid) queues_.resize(qid + 1u);
  NvmeQueueState& q = queues_[qid];
  q = NvmeQueueState{};
  q.qid = qid;
  q.sqBase = addrs.sqCpu;
  q.cqBase = addrs.cqCpu;
  q.entries = entries;
  q.vector = vector;
  return 0;
}

void NvmeDriver::submit(std::uint16_t qid, const Sqe& sqe) {
  NvmeQueueState& q = queue(qid);
  host_.cpuWork(params_.submitCostPs);
  const auto raw = sqe.encode();
  host_.store(q.sqSlot(), raw.data(), raw.size());
  q.advanceSq();
  store32(sqTailDoorbell(qid), q.sqTail);
  ++submissions_;
}

std::optional<Cqe> NvmeDriver::reap(std::uint16_t qid) {
  NvmeQueueState& q = queue(qid);
  std::uint8_t raw[kCqeBytes];
  host_.load(q.cqSlot(), raw, sizeof raw);
  const Cqe c = Cqe::decode(raw);
  if (c.phase != q.phase) return std::nullopt;
  q.advanceCq();
  return c;
}

void NvmeDriver::ringCqHead(std::uint16_t qid) {
  store32(cqHeadDoorbell(qid), queue(qid).cqHead);
}

Cqe NvmeDriver::waitCompletion(std::uint16_t qid) {
  for (;;) {
    if (auto c = reap(qid)) {
      host_.cpuWork(params_.completionCostPs);
      ringCqHead(qid);
      return *c;
    }
    host_.waitInterrupt(queue(qid).vector);
  }
}

}  // namespace hmmsim
