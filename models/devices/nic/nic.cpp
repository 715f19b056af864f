#include "models/devices/nic/nic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <utility>

#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/importer_dma.h"
#include "models/pcie/dma_engine.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace nic;

namespace {

constexpr std::uint64_t kPage = 4096;

sc_core::sc_time ps(std::uint64_t v) {
  return sc_core::sc_time(static_cast<double>(v), sc_core::SC_PS);
}

std::uint64_t scNow() {
  return sc_core::sc_time_stamp().value();
}

/// Moves `qk`'s local time forward to absolute `t` (never back).
void advanceTo(tlm_utils::tlm_quantumkeeper& qk, std::uint64_t t) {
  if (t > scNow() + qk.get_local_time().value()) qk.set(ps(t - scNow()));
}

/// Wait (synchronised) until absolute time `t`.
void waitUntil(tlm_utils::tlm_quantumkeeper& qk, std::uint64_t t) {
  advanceTo(qk, t);
  qk.sync();
}

}  // namespace

void TxDesc::encode(std::uint8_t* b) const {
  std::memset(b, 0, kTxDescBytes);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(addr >> (8 * i));
  b[8] = static_cast<std::uint8_t>(length);
  b[9] = static_cast<std::uint8_t>(length >> 8);
  b[11] = cmd;
  b[12] = status;
}

void RxRecord::encode(std::uint8_t* b) const {
  std::memset(b, 0, kRxRecordBytes);
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<std::uint8_t>(slba >> (8 * i));
    b[16 + i] = static_cast<std::uint8_t>(dataAddr >> (8 * i));
  }
  for (int i = 0; i < 4; ++i) {
    b[8 + i] = static_cast<std::uint8_t>(blocks >> (8 * i));
    b[24 + i] = static_cast<std::uint8_t>(index >> (8 * i));
  }
  b[28] = static_cast<std::uint8_t>((write ? 1 : 0) | (valid ? 2 : 0));
}

RxRecord RxRecord::decode(const std::uint8_t* b) {
  RxRecord r;
  for (int i = 0; i < 8; ++i) {
    r.slba |= static_cast<std::uint64_t>(b[i]) << (8 * i);
    r.dataAddr |= static_cast<std::uint64_t>(b[16 + i]) << (8 * i);
  }
  for (int i = 0; i < 4; ++i) {
    r.blocks |= static_cast<std::uint32_t>(b[8 + i]) << (8 * i);
    r.index |= static_cast<std::uint32_t>(b[24 + i]) << (8 * i);
  }
  r.write = (b[28] & 1) != 0;
  r.valid = (b[28] & 2) != 0;
  return r;
}

TxDesc TxDesc::decode(const std::uint8_t* b) {
  TxDesc d;
  d.addr = 0;
  for (int i = 0; i < 8; ++i) d.addr |= static_cast<std::uint64_t>(b[i]) << (8 * i);
  d.length = static_cast<std::uint16_t>(b[8] | b[9] << 8);
  d.cmd = b[11];
  d.status = b[12];
  return d;
}

std::string Nic::validate(const NicParams& p) {
  std::ostringstream e;
  if (!(p.lineRateGbps > 0))
    e << "lineRateGbps must be > 0";
  else if (p.packetBytes == 0)
    e << "packetBytes must be > 0";
  else if (p.txBufferBytes < p.packetBytes)
    e << "txBufferBytes " << p.txBufferBytes << " must hold one packet (packetBytes " << p.packetBytes << ")";
  else if (p.descriptorBatch == 0)
    e << "descriptorBatch must be > 0";
  else if (p.faultAroundPages == 0 || (p.faultAroundPages & (p.faultAroundPages - 1)) != 0)
    e << "faultAroundPages must be a power of 2 (is " << p.faultAroundPages << ")";
  else if (p.barBytes < kRegisterBytes)
    e << "barBytes " << p.barBytes << " must hold the registers (" << kRegisterBytes << ")";
  return e.str();
}

Nic::Nic(sc_core::sc_module_name name, const NicParams& params, PcieDmaEngine& dma, PcieMemoryTarget& bar)
    : sc_module(name),
      params_(params),
      dma_(dma),
      regs_(0x4000, 0),
      stats_(this->name()),
      txPackets_(stats_.counter("tx_packets", "packets", "packets sent on the wire")),
      txBytes_(stats_.counter("tx_bytes", "B", "payload bytes sent on the wire")),
      txDescriptors_(stats_.counter("tx_descriptors", "descriptors", "transmit descriptors processed")),
      dmaErrors_(stats_.counter("dma_errors", "bursts", "DMA bursts that failed (UR/CA)")),
      monitorCount_(stats_.counter("monitor_samples", "samples", "monitoring reads done")),
      sqesWritten_(stats_.counter("sqes_written", "entries", "NVMe SQEs written into a peer queue")),
      doorbells_(stats_.counter("doorbells_rung", "writes", "peer doorbell writes")),
      cqesSeen_(stats_.counter("cqes_seen", "entries", "peer CQEs consumed")),
      mailboxCount_(stats_.counter("mailbox_writes", "writes", "writes to the MSI mailbox")),
      rxRecords_(
          stats_.counter("rx_records", "records", "storage-request records written to the receive ring")),
      rxMsis_(stats_.counter("rx_msis", "writes", "receive interrupts (MSI writes) sent to the host")),
      queueFaults_(
          stats_.counter("queue_faults", "accesses",
                         "queue-writer accesses whose device fault could not map (retried or given up)")),
      queueRetries_(stats_.counter("queue_retries", "retries", "queue-writer accesses tried again")),
      queueGaveUp_(stats_.counter("queue_gave_up", "accesses",
                                  "queue-writer accesses given up (the queue writer is then in error)")),
      commandsAbandoned_(stats_.counter("commands_abandoned", "commands",
                                        "commands the queue writer abandoned when it gave up")) {
  const std::string err = validate(params);
  HMMSIM_ASSERT(err.empty(), this->name() << ": " << err);
  const Errno r = bar.registerMmio(
      0, kRegisterBytes, [this](const MmioAccess& a) { onRegister(a); }, "nic registers");
  HMMSIM_ASSERT(r == Errno::Ok, this->name() << ": BAR0 does not hold the registers");
  SC_THREAD(txThread);
  SC_THREAD(monitorThread);
  SC_THREAD(submitThread);
  SC_THREAD(completeThread);
  SC_THREAD(rxThread);
}

void Nic::onRegister(const MmioAccess& a) {
  const std::uint64_t delay = a.timePs > scNow() ? a.timePs - scNow() : 0;
  if (a.offset >= kMailbox && a.offset < kMailbox + kPage) {
    if (!a.isWrite) {
      if (a.data) std::memset(a.data, 0, a.len);
      return;
    }
    std::uint32_t v = 0;
    if (a.data) std::memcpy(&v, a.data, std::min<std::uint64_t>(a.len, 4));
    mailbox_.emplace(a.timePs, v);
    ++mailboxCount_;
    seqNotify(mailboxWake_, ps(delay));
    return;
  }
  if (a.offset + a.len > regs_.size()) {
    if (!a.isWrite && a.data) std::memset(a.data, 0, a.len);
    return;
  }
  if (!a.isWrite) {
    std::memcpy(&regs_[kRegTdh], &tdh_, 4);
    if (a.data) std::memcpy(a.data, &regs_[a.offset], a.len);
    return;
  }
  if (!a.data) return;
  if (a.offset == kRegTdt && a.len >= 4) {
    std::uint32_t v = 0;
    std::memcpy(&v, a.data, 4);
    tdtWrites_.emplace(a.timePs, v);
    seqNotify(txWake_, ps(delay));
    return;
  }
  std::memcpy(&regs_[a.offset], a.data, a.len);
}

std::uint64_t Nic::now(const tlm_utils::tlm_quantumkeeper& qk) {
  return scNow() + qk.get_local_time().value();
}

std::uint64_t Nic::wirePs(std::uint64_t payload) const {
  return static_cast<std::uint64_t>(std::llround(static_cast<double>(payload + params_.packetOverheadBytes) *
                                                 8000.0 / params_.lineRateGbps));
}

void Nic::txThread() {
  txQk_.reset();
  for (;;) {
    txQk_.sync();
    const std::uint64_t t = scNow();
    while (!tdtWrites_.empty() && tdtWrites_.begin()->first <= t) {
      tdt_ = tdtWrites_.begin()->second;
      tdtWrites_.erase(tdtWrites_.begin());
    }
    std::uint32_t len = 0, lo = 0, hi = 0;
    std::memcpy(&len, &regs_[kRegTdlen], 4);
    std::memcpy(&lo, &regs_[kRegTdbal], 4);
    std::memcpy(&hi, &regs_[kRegTdbah], 4);
    const std::uint32_t entries = len / kTxDescBytes;
    if (entries == 0 || tdh_ == tdt_ || tdt_ >= entries) {
      if (tdtWrites_.empty())
        wait(txWake_);
      else
        seqWait(ps(tdtWrites_.begin()->first - t), txWake_);
      continue;
    }
    const std::uint64_t base = static_cast<std::uint64_t>(hi) << 32 | lo;
    const std::uint32_t avail = (tdt_ + entries - tdh_) % entries;
    const std::uint32_t n = std::min({params_.descriptorBatch, avail, entries - tdh_});
    std::vector<std::uint8_t> raw(std::size_t(n) * kTxDescBytes);
    const std::uint64_t ring = base + std::uint64_t(tdh_) * kTxDescBytes;
    if (dma_.read(ring, raw.size(), raw.data(), txQk_) != CplStatus::SuccessfulCompletion) ++dmaErrors_;
    std::uint64_t fetched = now(txQk_);
    std::vector<std::uint32_t> report;
    for (std::uint32_t i = 0; i < n; ++i) {
      const TxDesc d = TxDesc::decode(&raw[std::size_t(i) * kTxDescBytes]);
      if (d.length) fetched = std::max(fetched, transmitBuffer(d.addr, d.length));
      if (d.cmd & kCmdRs) report.push_back(tdh_);
      tdh_ = (tdh_ + 1) % entries;
      ++txDescriptors_;
    }
    // DD is written back once the buffers' data is in the FIFO, at synchronised time: the driver
    // polls DD (NicDriver::reclaim), so when it sees the bit must not depend on the quantum.
    advanceTo(txQk_, fetched);
    txQk_.sync();
    for (std::uint32_t slot : report) {
      const std::uint8_t dd = kStaDd;
      dma_.issueWrite(base + std::uint64_t(slot) * kTxDescBytes + 12, 1, &dd, txQk_);
    }
    seqNotify(txDone_, ps(now(txQk_) - scNow()));
  }
}

std::uint64_t Nic::transmitBuffer(std::uint64_t addr, std::uint64_t len) {
  std::uint64_t last = now(txQk_);
  for (std::uint64_t off = 0; off < len; off += params_.packetBytes) {
    const std::uint64_t plen = std::min<std::uint64_t>(params_.packetBytes, len - off);
    // Room in the FIFO: wait for the oldest packets to leave.
    while (fifoHead_ < fifo_.size() &&
           (fifoBytes_ + plen > params_.txBufferBytes || fifo_[fifoHead_].first <= now(txQk_))) {
      advanceTo(txQk_, fifo_[fifoHead_].first);
      fifoBytes_ -= fifo_[fifoHead_].second;
      ++fifoHead_;
    }
    if (fifoHead_ > 4096) {
      fifo_.erase(fifo_.begin(), fifo_.begin() + static_cast<std::ptrdiff_t>(fifoHead_));
      fifoHead_ = 0;
    }
    // Each packet is read at synchronised time: its reads book host memory and links that other
    // engines share, and a booking ahead of SystemC time takes what an earlier access of another
    // engine would have had -- by how much, the quantum would decide.
    txQk_.sync();
    pkt_.resize(plen);
    DmaIssue r;
    if (txImporter_) {
      // A fault maps the rest of the buffer too: the descriptor's whole DMA, not this packet.
      const ImporterDmaResult ir =
          txImporter_->issueRead(Va(addr + off), plen, pkt_.data(), txQk_, Va(addr + len));
      r.status = ir.ok() ? CplStatus::SuccessfulCompletion : CplStatus::CompleterAbort;
      r.donePs = ir.donePs;
    } else {
      r = dma_.issueRead(addr + off, plen, pkt_.data(), txQk_);
    }
    if (r.status != CplStatus::SuccessfulCompletion) {
      ++dmaErrors_;
      continue;
    }
    const std::uint64_t start = std::max(r.donePs, wireFreePs_);
    wireFreePs_ = start + wirePs(plen);
    packets_.push_back(NicPacket{start, wireFreePs_, plen});
    if (params_.recordWire) wire_.insert(wire_.end(), pkt_.begin(), pkt_.end());
    fifo_.emplace_back(wireFreePs_, plen);
    fifoBytes_ += plen;
    ++txPackets_;
    txBytes_ += plen;
    last = std::max(last, r.donePs);
  }
  return last;
}

ImporterDma* Nic::importer() const {
  if (queueImporter_) return queueImporter_;
  return txImporter_ ? txImporter_ : monitorImporter_;
}

void Nic::startMonitor(const NicMonitorParams& p) {
  monitor_ = p;
  monitorOn_ = true;
  monitorStart_.notify(sc_core::SC_ZERO_TIME);
}

void Nic::monitorThread() {
  if (!monitorOn_) wait(monitorStart_);
  SeqQuantumKeeper qk;
  qk.reset();
  for (std::uint32_t i = 0; i < monitor_.samples; ++i) {
    waitUntil(qk, monitor_.startPs + std::uint64_t(i) * monitor_.periodPs);
    NicMonitorSample s;
    s.issuePs = now(qk);
    s.data.resize(monitor_.bytes);
    if (monitorImporter_)
      s.ok = monitorImporter_->read(Va(monitor_.addr), monitor_.bytes, s.data.data(), qk).ok();
    else
      s.ok = dma_.read(monitor_.addr, monitor_.bytes, s.data.data(), qk) == CplStatus::SuccessfulCompletion;
    if (!s.ok) ++dmaErrors_;
    s.donePs = now(qk);
    samples_.push_back(std::move(s));
    ++monitorCount_;
  }
}

void Nic::startQueueWriter(const NicQueueWriterParams& p, std::vector<NicStorageRequest> requests) {
  qw_ = p;
  requests_ = std::move(requests);
  ios_.assign(requests_.size(), NicIoRecord{});
  qwOn_ = true;
  qwStart_.notify(sc_core::SC_ZERO_TIME);
}

void Nic::submitThread() {
  if (!qwOn_) wait(qwStart_);
  SeqQuantumKeeper qk;
  qk.reset();
  for (std::size_t i = 0; i < requests_.size() && !queueError_.failed; ++i) {
    waitUntil(qk, requests_[i].atPs);
    while (outstanding_ + 1 >= qw_.queue.entries && !queueError_.failed) wait(slotFreed_);
    if (queueError_.failed) break;
    ios_[i].arrivePs = std::max(requests_[i].atPs, scNow());
    ios_[i].cid = static_cast<std::uint16_t>(i);
    std::uint64_t doorbell = 0;
    if (submitOne(requests_[i], static_cast<std::uint16_t>(i), qk, doorbell)) ios_[i].doorbellPs = doorbell;
    qk.sync();
  }
}

bool Nic::submitOne(const NicStorageRequest& r, std::uint16_t cid, tlm_utils::tlm_quantumkeeper& qk,
                    std::uint64_t& doorbellPs) {
  NvmeQueueState& q = qw_.queue;
  const std::uint64_t bytes = std::uint64_t(r.blocks) * qw_.blockBytes;
  const std::uint64_t first = std::min(bytes, kPage - r.dataAddr % kPage);
  std::uint64_t prp2 = 0;
  if (bytes - first > kPage) {
    // A PRP list in this slot's page: the pages after the first, contiguous in DMA space.
    const std::uint64_t pages = (bytes - first + kPage - 1) / kPage;
    HMMSIM_ASSERT(qw_.prpListBase != 0 && pages <= kPage / 8, name() << ": request needs a PRP list");
    std::vector<std::uint8_t> list(pages * 8);
    for (std::uint64_t k = 0; k < pages; ++k) {
      const std::uint64_t e = r.dataAddr + first + k * kPage;
      std::memcpy(&list[k * 8], &e, 8);
    }
    const std::uint64_t slot = std::uint64_t(q.sqTail) * kPage;
    prp2 = (qw_.prpListPeerBase ? qw_.prpListPeerBase : qw_.prpListBase) + slot;
    if (peerWrite(qw_.prpListBase + slot, list.size(), list.data(), qk, "PRP list write").gaveUp)
      return false;
  } else if (bytes > first) {
    prp2 = r.dataAddr + first;
  }
  const auto sqe = nvme::Sqe::readWrite(r.write, cid, r.slba, r.blocks, r.dataAddr, prp2).encode();
  // Posted writes on one path stay in order: the doorbell reaches the peer after the SQE.
  if (peerWrite(q.sqSlot(), sqe.size(), sqe.data(), qk, "SQE write").gaveUp) return false;
  ++sqesWritten_;
  const std::uint32_t before = q.sqTail;
  q.advanceSq();
  const std::uint32_t tail = q.sqTail;
  const PeerAccess d =
      peerWrite(qw_.sqDoorbell, 4, reinterpret_cast<const std::uint8_t*>(&tail), qk, "SQ doorbell");
  if (d.gaveUp) {
    q.sqTail = before;  // the controller never saw the new tail: the command was not submitted
    return false;
  }
  ++doorbells_;
  ++outstanding_;
  doorbellPs = d.issue.donePs;
  return true;
}

void Nic::takeQueueImporter(tlm_utils::tlm_quantumkeeper& qk) {
  while (queueImporterBusy_) {
    qk.sync();
    wait(queueImporterFree_);
  }
  queueImporterBusy_ = true;
}

void Nic::giveQueueImporter() {
  queueImporterBusy_ = false;
  queueImporterFree_.notify(sc_core::SC_ZERO_TIME);
}

namespace {
/// A queue access whose device fault could not map may map later: the fault lost every race
/// with invalidations (-EBUSY), or the exporter refused the p2p map for now (-EBUSY racing,
/// -ENOSPC no free BAR window, -EIO a reset in progress). Not: -EFAULT (a hole: the mapping is
/// gone), -EPERM, -EINVAL, the exporter gone (-ENODEV) or refusing this importer (-EOPNOTSUPP).
bool transientMapFailure(HmmStatus st, Errno p2p) {
  if (st == HmmStatus::Busy) return true;
  return st == HmmStatus::Fault && (p2p == Errno::Busy || p2p == Errno::NoSpc || p2p == Errno::Io);
}
}  // namespace

std::string NicQueueError::describe() const {
  std::ostringstream o;
  o << access << " could not be mapped: "
    << (p2pError != Errno::Ok ? errnoName(p2pError) : errnoName(hmmStatusToErrno(mapStatus)));
  if (p2pError != Errno::Ok)
    o << " (the exporter refused the p2p map)";
  else if (mapStatus == HmmStatus::Fault)
    o << " (no mapping there: the vma is gone)";
  o << " after " << retries << " retries; " << abandoned << " commands abandoned";
  return o.str();
}

template <typename Issue>
Nic::PeerAccess Nic::queueAccess(Issue issue, tlm_utils::tlm_quantumkeeper& qk, const char* what) {
  PeerAccess a;
  for (std::uint32_t retries = 0;; ++retries) {
    if (queueError_.failed) {  // the other engine gave up meanwhile: the queue is not used again
      a.issue.status = CplStatus::CompleterAbort;
      a.issue.donePs = now(qk);
      a.gaveUp = true;
      return a;
    }
    // The submit and completion engines share the importer's device TLB: each takes it at
    // synchronised time and holds it until its access is issued, at synchronised time again, so
    // which of them looks up first never depends on the quantum (nor on whether the issue synced
    // on the way). A read's data is waited for outside (peerRead): the TLB is free meanwhile.
    qk.sync();
    takeQueueImporter(qk);
    const ImporterDmaResult r = issue();
    qk.sync();
    giveQueueImporter();
    a.issue.donePs = r.donePs ? r.donePs : now(qk);
    a.issue.status = r.ok() ? CplStatus::SuccessfulCompletion : CplStatus::CompleterAbort;
    if (r.status != ImporterDmaStatus::Fault) return a;
    // One page: nothing of the access was issued, so trying again issues it once.
    HMMSIM_ASSERT(r.bytes == 0, name() << ": a queue access failed half issued");
    ++queueFaults_;
    const Errno p2p = queueImporter_->mirror().lastP2pError();
    if (!transientMapFailure(r.mapStatus, p2p) || retries == params_.queueRetryLimit) {
      giveUpQueue(what, r.mapStatus, p2p, retries, qk);
      a.gaveUp = true;
      return a;
    }
    ++queueRetries_;
    // An exporter's refusal lasts until it frees a window or its reset ends: back off. A lost
    // race with invalidations is retried at once (the next fault takes its own time).
    if (p2p != Errno::Ok) waitUntil(qk, now(qk) + params_.queueRetryBackoffPs);
  }
}

void Nic::giveUpQueue(const char* what, HmmStatus st, Errno p2p, std::uint32_t retries,
                      tlm_utils::tlm_quantumkeeper& qk) {
  ++queueGaveUp_;
  if (queueError_.failed) return;
  queueError_.failed = true;
  queueError_.atPs = now(qk);
  queueError_.access = what;
  queueError_.mapStatus = st;
  queueError_.p2pError = p2p;
  queueError_.retries = retries;
  // The error state: the NIC stops using the queue; every command it has not seen complete is
  // abandoned (reported, not silently lost), and the submit engine stops waiting for slots. A
  // command whose CQE it read is complete, even while its CQ head doorbell is still to ring.
  for (std::size_t i = 0; i < ios_.size(); ++i) {
    NicIoRecord& io = ios_[i];
    if (!io.done && !io.abandoned && std::find(reaped_.begin(), reaped_.end(), i) == reaped_.end()) {
      io.abandoned = true;
      ++commandsAbandoned_;
      ++queueError_.abandoned;
    }
  }
  slotFreed_.notify(sc_core::SC_ZERO_TIME);
  seqNotify(mailboxWake_, sc_core::SC_ZERO_TIME);
}

Nic::PeerAccess Nic::peerWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                               tlm_utils::tlm_quantumkeeper& qk, const char* what) {
  PeerAccess a;
  if (!queueImporter_)
    a.issue = dma_.issueWrite(addr, len, data, qk);
  else
    a = queueAccess([&] { return queueImporter_->issueWrite(Va(addr), len, data, qk); }, qk, what);
  if (!a.gaveUp && a.issue.status != CplStatus::SuccessfulCompletion)
    ++dmaErrors_;  // given up: queue_gave_up
  return a;
}

Nic::PeerAccess Nic::peerRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
                              tlm_utils::tlm_quantumkeeper& qk, const char* what) {
  PeerAccess a;
  if (!queueImporter_) {
    a.issue.status = dma_.read(addr, len, data, qk);
    a.issue.donePs = now(qk);
  } else {
    a = queueAccess([&] { return queueImporter_->issueRead(Va(addr), len, data, qk); }, qk, what);
    if (!a.gaveUp) {  // the data is in: the read's burst ends, at synchronised time
      waitUntil(qk, a.issue.donePs);
      queueImporter_->retireDone(qk);
    }
  }
  if (!a.gaveUp && a.issue.status != CplStatus::SuccessfulCompletion)
    ++dmaErrors_;  // given up: queue_gave_up
  return a;
}

void Nic::completeThread() {
  if (!qwOn_) wait(qwStart_);
  SeqQuantumKeeper qk;
  qk.reset();
  while (!queueError_.failed) {
    qk.sync();
    const std::uint64_t t = scNow();
    bool woke = false;
    while (!mailbox_.empty() && mailbox_.begin()->first <= t) {
      mailbox_.erase(mailbox_.begin());
      woke = true;
    }
    if (!woke) {
      if (mailbox_.empty())
        wait(mailboxWake_);
      else
        seqWait(ps(mailbox_.begin()->first - t), mailboxWake_);
      continue;
    }
    NvmeQueueState& q = qw_.queue;
    bool consumed = false;
    for (;;) {
      // Each CQE is read at synchronised time: its phase bit decides whether the command is done,
      // and the controller writes it at its own time.
      qk.sync();
      std::uint8_t raw[nvme::kCqeBytes];
      if (peerRead(q.cqSlot(), sizeof raw, raw, qk, "CQE read").issue.status !=
          CplStatus::SuccessfulCompletion)
        break;
      const nvme::Cqe c = nvme::Cqe::decode(raw);
      if (c.phase != q.phase) break;
      qk.sync();  // the entry is in: a freed slot is seen by the submit engine from now, not earlier
      q.advanceCq();
      consumed = true;
      ++cqesSeen_;
      if (c.cid < ios_.size()) {
        NicIoRecord& io = ios_[c.cid];
        io.completePs = now(qk);
        io.status = c.status;
        reaped_.push_back(c.cid);
      }
      --outstanding_;
      slotFreed_.notify(sc_core::SC_ZERO_TIME);
    }
    if (consumed && !queueError_.failed) {
      const std::uint32_t head = q.cqHead;
      if (!peerWrite(qw_.cqDoorbell, 4, reinterpret_cast<const std::uint8_t*>(&head), qk, "CQ doorbell")
               .gaveUp)
        ++doorbells_;
    }
    // The commands count as done once the NIC rang the CQ head for them (or gave up on the queue
    // trying), at synchronised time, so a driver that tears the queue down when every command is
    // done never races the doorbell. Their completions were read: never abandoned (giveUpQueue).
    qk.sync();
    for (const std::uint16_t cid : reaped_) ios_[cid].done = true;
    reaped_.clear();
  }
}

void Nic::startReceiveNotify(const NicRxNotifyParams& p, std::vector<NicStorageRequest> requests) {
  HMMSIM_ASSERT(p.entries > 0 && p.msi.programmed(), name() << ": receive notify needs a ring and an MSI");
  rx_ = p;
  rxRequests_ = std::move(requests);
  rxNotified_.assign(rxRequests_.size(), 0);
  rxOn_ = true;
  rxStart_.notify(sc_core::SC_ZERO_TIME);
}

void Nic::rxThread() {
  if (!rxOn_) wait(rxStart_);
  SeqQuantumKeeper qk;
  qk.reset();
  for (std::size_t i = 0; i < rxRequests_.size(); ++i) {
    const NicStorageRequest& q = rxRequests_[i];
    waitUntil(qk, q.atPs);
    RxRecord rec;
    rec.slba = q.slba;
    rec.blocks = q.blocks;
    rec.dataAddr = q.dataAddr;
    rec.index = static_cast<std::uint32_t>(i);
    rec.write = q.write;
    rec.valid = true;
    std::uint8_t raw[kRxRecordBytes];
    rec.encode(raw);
    const std::uint64_t slot = rx_.ringAddr + (i % rx_.entries) * kRxRecordBytes;
    if (dma_.issueWrite(slot, sizeof raw, raw, qk).status != CplStatus::SuccessfulCompletion) ++dmaErrors_;
    ++rxRecords_;
    // Posted writes on one path stay in order: the interrupt reaches the host after the record.
    const DmaIssue d = sendMsi(dma_, rx_.msi, qk);
    if (d.status != CplStatus::SuccessfulCompletion) ++dmaErrors_;
    ++rxMsis_;
    rxNotified_[i] = d.donePs;
    qk.sync();
  }
}

}  // namespace hmmsim
