#include "models/devices/nvme/nvme.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/msi.h"
#include "models/pcie/dma_engine.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace nvme;

namespace {

constexpr std::uint64_t kPage = 4096;  // CC.MPS = 0
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kTwoMiB = 2ull << 20;
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

sc_core::sc_time ps(std::uint64_t v) {
  return sc_core::sc_time(static_cast<double>(v), sc_core::SC_PS);
}

}  // namespace

std::string NvmeController::validate(const NvmeParams& p) {
  std::ostringstream e;
  const std::string media = NvmeMedia::validate(p.media);
  if (!media.empty())
    e << "media: " << media;
  else if (p.cmbOffset % kTwoMiB != 0 || p.cmbBytes % kTwoMiB != 0)
    e << "cmbOffset " << p.cmbOffset << " and cmbBytes " << p.cmbBytes << " must be multiples of 2 MiB";
  else if (p.cmbOffset < kMsixTable + kMsixEntryBytes * p.msixVectors)
    e << "cmbOffset " << p.cmbOffset << " overlaps the registers and the MSI-X table";
  else if (p.cmbOffset + p.cmbBytes > p.barBytes)
    e << "the CMB [cmbOffset, +cmbBytes) leaves BAR0 (barBytes " << p.barBytes << ")";
  else if (p.ioQueuePairs == 0 || p.ioQueuePairs > 1023)
    e << "ioQueuePairs " << p.ioQueuePairs << " must be in [1, 1023]";
  else if (p.maxQueueEntries < 2 || p.maxQueueEntries > 65536)
    e << "maxQueueEntries " << p.maxQueueEntries << " must be in [2, 65536]";
  else if (p.msixVectors == 0)
    e << "msixVectors must be > 0";
  else if (p.maxOutstanding == 0)
    e << "maxOutstanding must be > 0";
  else if (p.mdtsBytes < kPage || p.mdtsBytes % kPage != 0)
    e << "mdtsBytes " << p.mdtsBytes << " must be a positive multiple of 4 KiB";
  return e.str();
}

NvmeController::NvmeController(sc_core::sc_module_name name, const NvmeParams& params, PcieDmaEngine& dma,
                               PcieMemoryTarget& bar, ByteStore& store, std::uint64_t storeBase)
    : sc_module(name),
      params_(params),
      dma_(dma),
      store_(store),
      storeBase_(storeBase),
      media_(params.media, std::string(this->name()) + ".media"),
      regs_(0x40, 0),
      msix_(kMsixEntryBytes * params.msixVectors, 0),
      sqs_(params.ioQueuePairs + 1u),
      cqs_(params.ioQueuePairs + 1u),
      stats_(this->name()),
      doorbellsRung_(stats_.counter("doorbells", "writes", "doorbell register writes")),
      commands_(stats_.counter("commands", "commands", "commands completed")),
      reads_(stats_.counter("reads", "commands", "read commands completed")),
      writes_(stats_.counter("writes", "commands", "write commands completed")),
      errors_(stats_.counter("errors", "commands", "commands completed with an error status")),
      bytesOut_(stats_.counter("data_bytes_out", "B", "read data sent to host or peer memory")),
      bytesIn_(stats_.counter("data_bytes_in", "B", "write data fetched from host or peer memory")),
      cqes_(stats_.counter("cqes", "entries", "completion queue entries posted")),
      msis_(stats_.counter("msis", "writes", "MSI-X writes sent")),
      cmbAccesses_(stats_.counter("cmb_accesses", "accesses", "controller accesses to its own CMB")),
      cqFullStalls_(stats_.counter("cq_full_stalls", "events", "completions held back by a full CQ")) {
  const std::string err = validate(params);
  HMMSIM_ASSERT(err.empty(), this->name() << ": " << err);
  for (std::size_t i = 0; i < cqs_.size(); ++i) cqEvents_.push_back(std::make_unique<sc_core::sc_event>());
  // CAP: MQES, CQR (contiguous queues required), TO = 500 ms units of 1, DSTRD 0, CSS = NVM,
  // MPSMIN = MPSMAX = 4 KiB, CMBS.
  const std::uint64_t cap = (params.maxQueueEntries - 1ull) | 1ull << 16 | 1ull << 24 | 1ull << 37 |
                            (params.cmbBytes ? 1ull << 57 : 0);
  reg64(kRegCap, cap);
  reg32(kRegVs, 0x00020000);  // 2.0
  if (params.cmbBytes) {
    // CMBLOC: BIR 0, OFST in CMBSZ.SZU units (1 MiB). CMBSZ: SQS, CQS, LISTS, RDS, WDS; SZU = 1 MiB.
    reg32(kRegCmbloc, static_cast<std::uint32_t>(params.cmbOffset / kMiB) << 12);
    reg32(kRegCmbsz, 0x1f | 2u << 8 | static_cast<std::uint32_t>(params.cmbBytes / kMiB) << 12);
  }
  for (std::uint16_t v = 0; v < params.msixVectors; ++v) msix_[v * kMsixEntryBytes + 12] = 1;  // masked
  Errno r = bar.registerMmio(
      0, kRegisterBytes, [this](const MmioAccess& a) { onRegister(a); }, "nvme registers");
  HMMSIM_ASSERT(r == Errno::Ok, this->name() << ": BAR0 too small for the registers");
  r = bar.registerMmio(
      kMsixTable, kMsixEntryBytes * params.msixVectors, [this](const MmioAccess& a) { onMsix(a); },
      "nvme msi-x table");
  HMMSIM_ASSERT(r == Errno::Ok, this->name() << ": BAR0 too small for the MSI-X table");
  SC_THREAD(run);
}

void NvmeController::reg32(std::uint64_t off, std::uint32_t v) {
  std::memcpy(&regs_[off], &v, 4);
}
void NvmeController::reg64(std::uint64_t off, std::uint64_t v) {
  std::memcpy(&regs_[off], &v, 8);
}
std::uint32_t NvmeController::reg32At(std::uint64_t off) const {
  std::uint32_t v = 0;
  std::memcpy(&v, &regs_[off], 4);
  return v;
}
std::uint64_t NvmeController::reg64At(std::uint64_t off) const {
  std::uint64_t v = 0;
  std::memcpy(&v, &regs_[off], 8);
  return v;
}

// Runs inside the requester's b_transport. Configuration registers change at once (only the
// driver writes them, in order); doorbells are queued for the controller thread at their time.
void NvmeController::onRegister(const MmioAccess& a) {
  if (a.offset >= kDoorbellBase) {
    if (!a.isWrite) {
      if (a.data) std::memset(a.data, 0, a.len);  // doorbells read as zero
      return;
    }
    std::uint32_t v = 0;
    if (a.data) std::memcpy(&v, a.data, std::min<std::uint64_t>(a.len, 4));
    doorbells_.emplace(a.timePs, DoorbellWrite{a.offset, v});
    seqNotify(
        wake_,
        ps(a.timePs > sc_core::sc_time_stamp().value() ? a.timePs - sc_core::sc_time_stamp().value() : 0));
    return;
  }
  if (a.offset + a.len > regs_.size()) {
    if (!a.isWrite && a.data) std::memset(a.data, 0, a.len);  // reserved
    return;
  }
  if (!a.isWrite) {
    if (a.data) std::memcpy(a.data, &regs_[a.offset], a.len);
    return;
  }
  const bool wasEnabled = reg32At(kRegCc) & 1;
  const bool writable =
      (a.offset >= kRegCc && a.offset < kRegCsts) || (a.offset >= kRegAqa && a.offset < kRegCmbloc);
  if (writable && a.data) std::memcpy(&regs_[a.offset], a.data, a.len);
  const bool enabled = reg32At(kRegCc) & 1;
  if (enabled != wasEnabled) setEnable(enabled);
}

void NvmeController::setEnable(bool en) {
  for (auto& q : sqs_) q = Sq{};
  for (auto& q : cqs_) q = Cq{};
  inflight_.clear();
  doorbells_.clear();
  if (en) {
    const std::uint32_t aqa = reg32At(kRegAqa);
    Sq& sq = sqs_[0];
    sq.valid = true;
    sq.base = reg64At(kRegAsq) & ~(kPage - 1);
    sq.entries = (aqa & 0xfff) + 1;
    Cq& cq = cqs_[0];
    cq.valid = true;
    cq.base = reg64At(kRegAcq) & ~(kPage - 1);
    cq.entries = ((aqa >> 16) & 0xfff) + 1;
    cq.ien = true;
  }
  reg32(kRegCsts, en ? 1u : 0u);  // RDY follows EN at once (enable time not modelled)
}

void NvmeController::onMsix(const MmioAccess& a) {
  if (a.offset + a.len > msix_.size()) return;
  if (!a.data) return;
  if (a.isWrite)
    std::memcpy(&msix_[a.offset], a.data, a.len);
  else
    std::memcpy(a.data, &msix_[a.offset], a.len);
}

void NvmeController::applyDoorbell(const DoorbellWrite& w, std::uint64_t timePs) {
  ++doorbellsRung_;
  const std::uint64_t idx = (w.offset - kDoorbellBase) / 4;
  const auto qid = static_cast<std::uint16_t>(idx / 2);
  if (qid >= sqs_.size()) return;  // no such queue: the write is dropped (spec: undefined)
  if (idx % 2 == 0) {
    Sq& q = sqs_[qid];
    if (q.valid && w.value < q.entries) {
      q.tail = w.value;
      q.tailPs = timePs;
    }
  } else {
    Cq& q = cqs_[qid];
    if (q.valid && w.value < q.entries) q.head = w.value;
  }
}

std::uint64_t NvmeController::nowPs() const {
  return sc_core::sc_time_stamp().value() + qk_.get_local_time().value();
}

void NvmeController::sync() {
  qk_.sync();
}

bool NvmeController::inCmb(std::uint64_t addr, std::uint64_t len) const {
  const std::uint64_t b = cmbBase();
  return params_.cmbBytes != 0 && addr >= b && len <= params_.cmbBytes && addr - b <= params_.cmbBytes - len;
}

bool NvmeController::memRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* dst) {
  if (inCmb(addr, len)) {
    store_.readBytes(storeBase_ + (addr - params_.barBase), dst, len);
    ++cmbAccesses_;
    qk_.inc(ps(params_.cmbAccessPs));
    return true;
  }
  return dma_.read(addr, len, dst, qk_) == CplStatus::SuccessfulCompletion;
}

bool NvmeController::memWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* src,
                              std::uint64_t* donePs) {
  if (inCmb(addr, len)) {
    store_.writeBytes(storeBase_ + (addr - params_.barBase), src, len);
    ++cmbAccesses_;
    qk_.inc(ps(params_.cmbAccessPs));
    if (donePs) *donePs = nowPs();
    return true;
  }
  // Posted: the engine returns when it can issue again; the write is visible at donePs.
  const DmaIssue r = dma_.issueWrite(addr, len, src, qk_);
  if (donePs) *donePs = r.donePs;
  return r.status == CplStatus::SuccessfulCompletion;
}

void NvmeController::run() {
  qk_.reset();
  for (;;) {
    sync();
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    while (!doorbells_.empty() && doorbells_.begin()->first <= now) {
      applyDoorbell(doorbells_.begin()->second, doorbells_.begin()->first);
      doorbells_.erase(doorbells_.begin());
    }
    if (!inflight_.empty() && inflight_.begin()->first <= now) {
      auto it = inflight_.begin();
      if (complete(it->second)) {
        inflight_.erase(it);
        continue;
      }
      ++cqFullStalls_;
      wait(wake_);  // a CQ head doorbell makes room
      continue;
    }
    if (inflight_.size() < params_.maxOutstanding && fetchOne()) continue;
    std::uint64_t next = kNever;
    if (!doorbells_.empty()) next = doorbells_.begin()->first;
    if (!inflight_.empty()) next = std::min(next, inflight_.begin()->first);
    if (next == kNever)
      wait(wake_);
    else
      seqWait(ps(next - now), wake_);
  }
}

bool NvmeController::fetchOne() {
  const auto n = static_cast<std::uint16_t>(sqs_.size());
  for (std::uint16_t k = 0; k < n; ++k) {
    const std::uint16_t qid = (rr_ + k) % n;
    Sq& q = sqs_[qid];
    if (!q.valid || q.head == q.tail) continue;
    rr_ = static_cast<std::uint16_t>((qid + 1) % n);
    std::uint8_t raw[kSqeBytes];
    const std::uint64_t tailPs = q.tailPs;
    const bool ok = memRead(q.base + std::uint64_t(q.head) * kSqeBytes, kSqeBytes, raw);
    q.head = (q.head + 1) % q.entries;
    InFlight f;
    f.sqe = Sqe::decode(raw);
    f.rec.sqid = qid;
    f.rec.cid = f.sqe.cid;
    f.rec.opcode = f.sqe.opcode;
    f.rec.doorbellPs = tailPs;
    f.cqid = qid == 0 ? 0 : q.cqid;
    sync();
    f.rec.fetchPs = nowPs();
    if (!ok) {
      f.rec.status = static_cast<std::uint16_t>(Status::DataTransferError);
      inflight_.emplace(f.rec.fetchPs, std::move(f));
    } else if (qid == 0) {
      dispatchAdmin(std::move(f));
    } else {
      dispatchIo(std::move(f));
    }
    return true;
  }
  return false;
}

void NvmeController::dispatchAdmin(InFlight&& f) {
  const auto op = static_cast<AdminOpcode>(f.sqe.opcode);
  const auto qid = static_cast<std::uint16_t>(f.sqe.cdw10 & 0xffff);
  Status st = Status::Success;
  switch (op) {
    case AdminOpcode::CreateIoCq:
    case AdminOpcode::CreateIoSq:
      st = static_cast<Status>(createQueue(f.sqe, op == AdminOpcode::CreateIoCq));
      break;
    case AdminOpcode::DeleteIoSq:
    case AdminOpcode::DeleteIoCq: {
      const bool cq = op == AdminOpcode::DeleteIoCq;
      if (qid == 0 || qid >= sqs_.size() || !(cq ? cqs_[qid].valid : sqs_[qid].valid)) {
        st = Status::InvalidQueueId;
      } else if (cq) {
        cqs_[qid] = Cq{};
      } else {
        sqs_[qid] = Sq{};
      }
      break;
    }
    default:
      st = Status::InvalidOpcode;
  }
  qk_.inc(ps(params_.commandOverheadPs));
  f.rec.status = static_cast<std::uint16_t>(st);
  f.rec.mediaDonePs = nowPs();
  inflight_.emplace(f.rec.mediaDonePs, std::move(f));
}

std::uint16_t NvmeController::createQueue(const Sqe& s, bool cq) {
  const auto qid = static_cast<std::uint16_t>(s.cdw10 & 0xffff);
  const std::uint32_t entries = (s.cdw10 >> 16) + 1;
  if (qid == 0 || qid >= sqs_.size() || (cq ? cqs_[qid].valid : sqs_[qid].valid))
    return static_cast<std::uint16_t>(Status::InvalidQueueId);
  if (entries < 2 || entries > params_.maxQueueEntries)
    return static_cast<std::uint16_t>(Status::InvalidQueueSize);
  if ((s.cdw11 & 1) == 0 || s.prp1 % kPage != 0) return static_cast<std::uint16_t>(Status::InvalidField);
  if (cq) {
    const auto iv = static_cast<std::uint16_t>(s.cdw11 >> 16);
    if (iv >= params_.msixVectors) return static_cast<std::uint16_t>(Status::InvalidField);
    Cq& q = cqs_[qid];
    q = Cq{};
    q.valid = true;
    q.base = s.prp1;
    q.entries = entries;
    q.ien = (s.cdw11 >> 1) & 1;
    q.vector = iv;
  } else {
    const auto cqid = static_cast<std::uint16_t>(s.cdw11 >> 16);
    if (cqid == 0 || cqid >= cqs_.size() || !cqs_[cqid].valid)
      return static_cast<std::uint16_t>(Status::CompletionQueueInvalid);
    Sq& q = sqs_[qid];
    q = Sq{};
    q.valid = true;
    q.base = s.prp1;
    q.entries = entries;
    q.cqid = cqid;
  }
  return static_cast<std::uint16_t>(Status::Success);
}

void NvmeController::dispatchIo(InFlight&& f) {
  const Sqe& s = f.sqe;
  const auto op = static_cast<IoOpcode>(s.opcode);
  qk_.inc(ps(params_.commandOverheadPs));
  Status st = Status::Success;
  std::uint64_t ready = nowPs();
  if (op == IoOpcode::Read || op == IoOpcode::Write) {
    const std::uint64_t bytes = std::uint64_t(s.blocks()) * params_.media.blockBytes;
    f.rec.bytes = bytes;
    if (s.nsid != 1)
      st = Status::InvalidField;
    else if (!media_.inRange(s.slba(), s.blocks()))
      st = Status::LbaOutOfRange;
    else if (bytes > params_.mdtsBytes)
      st = Status::InvalidField;
    else if (op == IoOpcode::Read)
      ready = media_.bookRead(nowPs(), bytes);  // the media starts while the PRPs are fetched
    if (st == Status::Success) st = resolvePrps(s.prp1, s.prp2, bytes, f.data);
    if (st == Status::Success && op == IoOpcode::Read) {
      ready = std::max(ready, nowPs());
    } else if (st == Status::Success) {
      // Fetch the data (reads pipelined on the engine), then program it.
      buf_.resize(bytes);
      std::uint64_t off = 0, done = nowPs();
      for (const Segment& g : f.data) {
        if (inCmb(g.addr, g.bytes)) {
          memRead(g.addr, g.bytes, buf_.data() + off);
          done = std::max(done, nowPs());
        } else {
          const DmaIssue r = dma_.issueRead(g.addr, g.bytes, buf_.data() + off, qk_);
          if (r.status != CplStatus::SuccessfulCompletion) st = Status::DataTransferError;
          done = std::max(done, r.donePs);
        }
        off += g.bytes;
      }
      if (done > nowPs()) qk_.set(ps(done - sc_core::sc_time_stamp().value()));
      sync();
      if (st == Status::Success) {
        bytesIn_ += bytes;
        media_.write(s.slba(), s.blocks(), buf_.data());
        ready = media_.bookWrite(nowPs(), bytes);
      }
    }
  } else if (op != IoOpcode::Flush) {
    st = Status::InvalidOpcode;
  }
  f.rec.status = static_cast<std::uint16_t>(st);
  f.rec.mediaDonePs = ready;
  inflight_.emplace(ready, std::move(f));
}

Status NvmeController::resolvePrps(std::uint64_t prp1, std::uint64_t prp2, std::uint64_t bytes,
                                   std::vector<Segment>& out) {
  out.clear();
  auto add = [&out](std::uint64_t a, std::uint64_t n) {
    if (!out.empty() && out.back().addr + out.back().bytes == a)
      out.back().bytes += n;
    else
      out.push_back(Segment{a, n});
  };
  if (prp1 % 4 != 0) return Status::InvalidPrpOffset;
  const std::uint64_t first = std::min(bytes, kPage - prp1 % kPage);
  add(prp1, first);
  std::uint64_t rem = bytes - first;
  if (rem == 0) return Status::Success;
  if (rem <= kPage) {
    if (prp2 % kPage != 0) return Status::InvalidPrpOffset;
    add(prp2, rem);
    return Status::Success;
  }
  // PRP2 is a list pointer; the last entry of a full list page points at the next list page.
  std::uint64_t list = prp2;
  if (list % 8 != 0) return Status::InvalidPrpOffset;
  while (rem > 0) {
    const std::uint64_t slots = (kPage - list % kPage) / 8;
    const std::uint64_t pages = (rem + kPage - 1) / kPage;
    const bool chained = pages > slots;
    const std::uint64_t entries = chained ? slots : pages;
    std::vector<std::uint8_t> raw(entries * 8);
    if (!memRead(list, raw.size(), raw.data())) return Status::DataTransferError;
    const std::uint64_t dataEntries = chained ? entries - 1 : entries;
    for (std::uint64_t i = 0; i < dataEntries; ++i) {
      std::uint64_t e = 0;
      std::memcpy(&e, &raw[i * 8], 8);
      if (e % kPage != 0) return Status::InvalidPrpOffset;
      const std::uint64_t n = std::min(rem, kPage);
      add(e, n);
      rem -= n;
    }
    if (chained) std::memcpy(&list, &raw[(entries - 1) * 8], 8);
  }
  sync();
  return Status::Success;
}

bool NvmeController::complete(InFlight& f) {
  const std::uint16_t cqid = f.cqid;
  Cq& q = cqs_[cqid];
  if (!q.valid) {  // the queue was deleted meanwhile: the completion is dropped
    records_.push_back(f.rec);
    return true;
  }
  if ((q.tail + 1) % q.entries == q.head) return false;
  std::uint64_t visible = nowPs();
  if (f.rec.status == static_cast<std::uint16_t>(Status::Success) &&
      f.sqe.opcode == static_cast<std::uint8_t>(IoOpcode::Read) && f.rec.sqid != 0) {
    const Sqe& s = f.sqe;
    buf_.resize(f.rec.bytes);
    media_.read(s.slba(), s.blocks(), buf_.data());
    std::uint64_t off = 0;
    for (const Segment& g : f.data) {
      std::uint64_t done = 0;
      if (!memWrite(g.addr, g.bytes, buf_.data() + off, &done))
        f.rec.status = static_cast<std::uint16_t>(Status::DataTransferError);
      visible = std::max(visible, done);
      off += g.bytes;
    }
    bytesOut_ += f.rec.bytes;
  }
  Cqe c;
  c.dw0 = f.result;
  c.sqHead = static_cast<std::uint16_t>(sqs_[f.rec.sqid].head);
  c.sqId = f.rec.sqid;
  c.cid = f.rec.cid;
  c.phase = q.phase;
  c.status = f.rec.status;
  const auto raw = c.encode();
  std::uint64_t done = 0;
  // The CQE is written at synchronised time: a host polls its phase bit, so whether it sees the
  // entry must not depend on how far the data writes above ran ahead within the quantum.
  sync();
  memWrite(q.base + std::uint64_t(q.tail) * kCqeBytes, kCqeBytes, raw.data(), &done);
  // Posted writes on one path arrive in order: the CQE is visible after the data.
  visible = std::max(visible, done);
  f.rec.cqePs = visible;
  q.tail = (q.tail + 1) % q.entries;
  if (q.tail == 0) q.phase = !q.phase;
  ++cqes_;
  const std::uint8_t* e = &msix_[q.vector * kMsixEntryBytes];
  if (q.ien && (e[12] & 1) == 0) {
    MsiMessage msg;  // the MSI-X table entry: message address (8 bytes), message data (4)
    std::memcpy(&msg.address, e, 8);
    std::memcpy(&msg.data, e + 8, 4);
    const DmaIssue r = sendMsi(dma_, msg, qk_);
    f.rec.msiPs = std::max(r.donePs, visible);
    ++msis_;
  }
  sync();
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  seqNotify(*cqEvents_[cqid], ps(visible > now ? visible - now : 0));
  ++commands_;
  if (f.rec.sqid != 0 && f.sqe.opcode == static_cast<std::uint8_t>(IoOpcode::Read)) ++reads_;
  if (f.rec.sqid != 0 && f.sqe.opcode == static_cast<std::uint8_t>(IoOpcode::Write)) ++writes_;
  if (f.rec.status != 0) ++errors_;
  records_.push_back(f.rec);
  return true;
}

}  // namespace hmmsim
