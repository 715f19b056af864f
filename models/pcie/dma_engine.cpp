#include "models/pcie/dma_engine.h"

#include <algorithm>

#include "sim/sync_ahead.h"

namespace hmmsim {

PcieDmaEngine::PcieDmaEngine(sc_core::sc_module_name name, const PcieDmaEngineParams& params)
    : sc_module(name),
      params_(params),
      ext_(new PcieTlpExtension),
      tags_(params.readTags),
      burstTags_(params.readTags),
      posted_(params.postedWindow),
      cplNoDataWire_(cplWireBytes(params.link)),
      mrdWire_(mrdWireBytes(params.link)),
      mwrHeaderWire_(mwrWireBytes(params.link, 0)),
      stats_(std::string(this->name())),
      bytesWritten_(stats_.counter("bytes_written", "B", "DMA write payload bytes issued")),
      bytesRead_(stats_.counter("bytes_read", "B", "DMA read payload bytes requested")),
      mwrTlps_(stats_.counter("mwr_tlps", "TLP", "memory write requests issued")),
      mrdTlps_(stats_.counter("mrd_tlps", "TLP", "memory read requests issued")),
      bursts_(stats_.counter("bursts", "burst", "DMA bursts issued")),
      failed_(stats_.counter("failed_bursts", "burst", "bursts completed with UR or CA")) {
  HMMSIM_ASSERT(validateLinkConfig(params.link) == Errno::Ok, "invalid link config for " << this->name());
  requirePicosecondResolution();
  gp_.set_extension(ext_);  // gp_ owns and frees it
  ctx_ = sc_core::sc_get_curr_simcontext();
  ext_->setRequester(params.requester);
}

inline __attribute__((always_inline)) std::uint64_t PcieDmaEngine::advanceTo(
    std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk) {
  nowPs_ = ctx_->time_stamp().value();
  std::uint64_t local = nowPs_ + qk.get_local_time().value();
  if (t > local) {
    qk.set(psTime(t - nowPs_));
    local = t;
  }
  // A shared path: do not run further ahead than sharedSyncPs; shared host memory with
  // syncOnSharedHostMemory: not ahead at all (dma_engine.h).
  const bool shared = sharedSeenPs_ != 0 && sharedSeenPs_ - 1 + params_.sharedHoldPs >= nowPs_;
  if (qk.need_sync() || (shared && local - nowPs_ >= params_.sharedSyncPs) ||
      (syncEachIssue_ && local > nowPs_))
    local = sync(qk);
  localPs_ = local;
  return std::max(t, local);
}

std::uint64_t PcieDmaEngine::sync(tlm_utils::tlm_quantumkeeper& qk) {
  syncAhead(qk);  // a keeper that looks ahead may keep its local time (lookahead.h)
  nowPs_ = ctx_->time_stamp().value();
  return nowPs_ + qk.get_local_time().value();
}

inline __attribute__((always_inline)) void PcieDmaEngine::setLocal(std::uint64_t t,
                                                                   tlm_utils::tlm_quantumkeeper& qk) {
  // nowPs_ and localPs_ are current: nothing waited or moved the local time since advanceTo.
#ifndef NDEBUG
  HMMSIM_ASSERT(localPs_ == nowPs_ + qk.get_local_time().value(),
                name() << ": local time moved behind the engine");
#endif
  if (t > localPs_) {
    qk.set(psTime(t - nowPs_));
    localPs_ = t;
  }
}

inline __attribute__((always_inline)) void PcieDmaEngine::prepare(TlpKind kind, std::uint64_t addr,
                                                                  std::uint64_t len, std::uint8_t* data,
                                                                  const PcieRoute* route) {
  gp_.set_command(kind == TlpKind::MWr ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp_.set_address(addr);
  gp_.set_data_ptr(data);
  // TLM lengths are 32-bit; the fabric's modules use PcieTlpExtension::lengthBytes.
  const auto tlmLen = static_cast<unsigned>(std::min<std::uint64_t>(len, ~0u));
  gp_.set_data_length(tlmLen);
  gp_.set_streaming_width(tlmLen);
  gp_.set_byte_enable_ptr(nullptr);
  gp_.set_dmi_allowed(false);
  gp_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  PcieTlpExtension& e = *ext_;
  e.kind = kind;
  e.lengthBytes = len;
  e.addressTranslated = false;
  e.reqTlps = 1;
  e.reqWireBytes = 0;
  e.cplTlps = 0;
  e.cplWireBytes = 0;
  e.cplNoDataWireBytes = cplNoDataWire_;
  e.tailAfterHeadPs = 0;
  e.injectDonePs = 0;
  e.injectRecorded = false;
  e.queueWaitPs = 0;
  e.lastLinkGbps = 0;
  e.translated = false;
  e.repeat = 1;
  e.sharedSeenPs = 0;
  e.hostMemoryShared = false;
  e.route = route;
  e.hop = 0;
  e.status = CplStatus::SuccessfulCompletion;
}

inline __attribute__((always_inline)) std::uint64_t PcieDmaEngine::send(std::uint64_t t) {
  ext_->nowPs = nowPs_;  // set by the advanceTo() that preceded every send()
  sc_core::sc_time delay = delayOf(*ext_, t);
  uplink_.transport(0, gp_, *ext_, delay);
  if (gp_.get_response_status() != tlm::TLM_OK_RESPONSE && ext_->status == CplStatus::SuccessfulCompletion) {
    ext_->status = CplStatus::UnsupportedRequest;  // a target that did not say why
  }
  sharedSeenPs_ = std::max(sharedSeenPs_, ext_->sharedSeenPs);
  if (__builtin_expect(ext_->hostMemoryShared, 0)) syncEachIssue_ = syncOnSharedHostMemory_;
  return absPs(*ext_, delay);
}

DmaIssue PcieDmaEngine::issueWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                                   tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(router_ != nullptr, name() << ": no router");
  HMMSIM_ASSERT(len > 0, name() << ": zero-length DMA write");
  DmaIssue res;
  ++bursts_;
  const PcieRouteResult rr = route(addr, true);
  const PcieRoute* route = rr.route;
  if (route == nullptr) {
    ++failed_;
    res.status = rr.status;
    res.donePs = advanceTo(0, qk);
    return res;
  }
  // The TLM data pointer is non-const by interface; writes never modify it. TLM requires a valid
  // pointer, so timing-only callers (data == nullptr) get the zero-filled scratch buffer.
  auto* bytes = data ? const_cast<std::uint8_t*>(data) : payloadFor(len);
  const PcieLinkConfig& cfg = params_.link;
  std::uint64_t issuePs = UINT64_MAX;
  if (params_.fidelity == PcieFidelity::PerTlp) {
    auto one = [&](const TlpSegment& seg) __attribute__((always_inline)) {
      std::uint64_t t = advanceTo(std::max(nextIssuePs_, posted_.earliest()), qk);
      // Another caller may have used the engine while this one synced: take the slot now.
      t = std::max({t, nextIssuePs_, posted_.acquire(1)});
      issuePs = std::min(issuePs, t);
      prepare(TlpKind::MWr, seg.addr, seg.bytes, bytes ? bytes + (seg.addr - addr) : nullptr, route);
      ext_->reqWireBytes = std::uint64_t(mwrHeaderWire_) + seg.bytes;
      const std::uint64_t done = send(t);
      posted_.release(t + ext_->queueWaitPs, 1);
      nextIssuePs_ = std::max(t + params_.issueIntervalPs, ext_->injectDonePs);
      res.donePs = std::max(res.donePs, done);
      if (res.status == CplStatus::SuccessfulCompletion) res.status = ext_->status;
      ++mwrTlps_;
    };
    // One TLP (the common case of small writes) needs no splitter.
    if (len <= cfg.mpsBytes && addr % kTlpBoundaryBytes + len <= kTlpBoundaryBytes) {
      one(TlpSegment{addr, static_cast<std::uint32_t>(len)});
    } else {
      RequestSplitter split(addr, len, cfg.mpsBytes);
      TlpSegment seg;
      while (split.next(seg)) one(seg);
    }
  } else {
    const BurstWire w = writeBurstWire(cfg, addr, len);
    const auto k = static_cast<std::uint32_t>(std::min<std::uint64_t>(w.reqTlps, posted_.capacity()));
    // No sync between taking the slots and returning them.
    std::uint64_t t = advanceTo(nextIssuePs_, qk);
    t = std::max({t, nextIssuePs_, posted_.acquire(k)});
    lastIssuePs_ = issuePs = t;
    prepare(TlpKind::MWr, addr, len, bytes, route);
    ext_->reqTlps = w.reqTlps;
    ext_->reqWireBytes = w.reqWireBytes;
    res.donePs = send(t);
    res.status = ext_->status;
    posted_.release(t + ext_->queueWaitPs, k);
    nextIssuePs_ = std::max(t + w.reqTlps * params_.issueIntervalPs, ext_->injectDonePs);
    mwrTlps_ += w.reqTlps;
  }
  bytesWritten_ += len;
  if (res.status != CplStatus::SuccessfulCompletion) ++failed_;
  if (observer_) observer_(DmaBurstRecord{true, addr, len, issuePs, res.donePs, res.status});
  setLocal(nextIssuePs_, qk);  // the next issue syncs if the quantum is used up
  return res;
}

DmaIssue PcieDmaEngine::issueRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
                                  tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(router_ != nullptr, name() << ": no router");
  HMMSIM_ASSERT(len > 0, name() << ": zero-length DMA read");
  DmaIssue res;
  ++bursts_;
  const PcieRouteResult rr = route(addr, false);
  const PcieRoute* route = rr.route;
  if (route == nullptr) {
    ++failed_;
    res.status = rr.status;
    res.donePs = advanceTo(0, qk);
    return res;
  }
  if (data == nullptr) data = payloadFor(len);
  const PcieLinkConfig& cfg = params_.link;
  std::uint64_t issuePs = UINT64_MAX;
  if (params_.fidelity == PcieFidelity::PerTlp) {
    RequestSplitter split(addr, len, cfg.mrrsBytes);
    TlpSegment seg;
    while (split.next(seg)) {
      // A tag frees when the completions of an earlier request arrived; wait for it in time.
      std::uint64_t t = advanceTo(std::max(nextIssuePs_, tags_.earliest()), qk);
      t = std::max({t, nextIssuePs_, tags_.acquire(1)});
      issuePs = std::min(issuePs, t);
      prepare(TlpKind::MRd, seg.addr, seg.bytes, data ? data + (seg.addr - addr) : nullptr, route);
      ext_->reqWireBytes = mrdWire_;
      const BurstWire c = readRequestCompletionWire(cfg, seg.addr, seg.bytes);
      ext_->cplTlps = c.cplTlps;
      ext_->cplWireBytes = c.cplWireBytes;
      const std::uint64_t head = send(t);
      const std::uint64_t done = head + ext_->tailAfterHeadPs;
      tags_.release(done, 1);
      nextIssuePs_ = std::max(t + params_.issueIntervalPs, ext_->injectDonePs);
      res.donePs = std::max(res.donePs, done);
      if (res.status == CplStatus::SuccessfulCompletion) res.status = ext_->status;
      ++mrdTlps_;
    }
  } else {
    const BurstWire w = readWire(addr, len);
    const std::uint64_t n = w.reqTlps;
    const auto k = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, burstTags_.capacity()));
    std::uint64_t t = advanceTo(nextIssuePs_, qk);
    // The burst starts once one tag is free; the rest pace it (below).
    const LinearSlotPool::Span tags = burstTags_.acquire(k);
    t = std::max({t, nextIssuePs_, tags.firstPs});
    lastIssuePs_ = issuePs = t;
    prepare(TlpKind::MRd, addr, len, data, route);
    ext_->reqTlps = n;
    ext_->reqWireBytes = w.reqWireBytes;
    ext_->cplTlps = w.cplTlps;
    ext_->cplWireBytes = w.cplWireBytes;
    const std::uint64_t head = send(t);
    const std::uint64_t trainDone = head + ext_->tailAfterHeadPs;
    // Tag-limited pipelining in closed form. s: one request's share of the completion train at
    // the bottleneck; rtt: issue to last completion byte of one request. Request j of the first
    // round completes no earlier than max(t + j s, when its tag frees) + rtt (tags free evenly
    // from tags.first to tags.last), and request j + r k reuses its tag r round trips later.
    // The last request (j = (n - 1) mod k, round (n - 1) / k) bounds the burst.
    const std::uint64_t s = (trainDone - head) / n;
    const std::uint64_t rtt = (head - t) + s;
    const std::uint64_t tagStep = k > 1 ? (tags.lastPs - tags.firstPs) / (k - 1) : 0;
    const std::uint64_t j = (n - 1) % k, rounds = (n - 1) / k + 1;
    const std::uint64_t tagJ = tags.firstPs + j * tagStep;
    const std::uint64_t done = std::max(trainDone, std::max(t + j * s, tagJ) + rounds * rtt);
    // The tags come back as the last k requests complete, one completion spacing apart.
    const std::uint64_t step = std::max(s, tagStep);
    const std::uint64_t firstFree = std::max(t + rtt, done - std::min(done, (k - 1) * step));
    burstTags_.release(firstFree, k > 1 ? (done - firstFree) / (k - 1) : 0, k);
    nextIssuePs_ = std::max(t + n * params_.issueIntervalPs, ext_->injectDonePs);
    res.donePs = done;
    res.status = ext_->status;
    mrdTlps_ += w.reqTlps;
  }
  bytesRead_ += len;
  if (res.status != CplStatus::SuccessfulCompletion) ++failed_;
  if (observer_) observer_(DmaBurstRecord{false, addr, len, issuePs, res.donePs, res.status});
  setLocal(nextIssuePs_, qk);
  return res;
}

BurstWire PcieDmaEngine::readWire(std::uint64_t addr, std::uint64_t len) {
  const std::uint64_t offset = addr % kTlpBoundaryBytes;
  if (offset != readWireOffset_ || len != readWireLen_) {
    readWire_ = readBurstWire(params_.link, addr, len);
    readWireOffset_ = offset;
    readWireLen_ = len;
  }
  return readWire_;
}

void PcieDmaEngine::growScratch(std::uint64_t len) {
  scratch_.resize(len);  // grows to the largest burst, then stays
}

DmaIssue PcieDmaEngine::issueStream(bool write, std::uint64_t addr, std::uint64_t burstBytes,
                                    std::uint64_t count, tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(burstBytes > 0 && count > 0, name() << ": empty DMA stream");
  DmaIssue res;
  auto note = [&](const DmaIssue& r) {
    res.donePs = std::max(res.donePs, r.donePs);
    if (res.status == CplStatus::SuccessfulCompletion) res.status = r.status;
  };
  const bool closedForm =
      params_.fidelity == PcieFidelity::PerBurst && params_.timingOnly && burstBytes % 4096 == 0;
  // Issue and completion times of the last three bursts issued one by one.
  std::uint64_t t[3] = {}, d[3] = {};
  std::uint32_t seen = 0;
  bool probed = false;  // the last burst was issued one by one right after a sync
  for (std::uint64_t i = 0; i < count;) {
    const std::uint64_t p = d[2] - d[1];
    const bool shared = sharedSeenPs_ != 0 && sharedSeenPs_ - 1 + params_.sharedHoldPs >= nowPs_;
    // Periodic: equal issue and completion spacing (1 ps of rounding in the closed forms).
    auto near = [](std::uint64_t a, std::uint64_t b) { return a + 1 >= b && b + 1 >= a; };
    const bool steady = closedForm && seen >= 3 && !shared && !syncEachIssue_ && !ext_->translated && p > 0 &&
                        res.status == CplStatus::SuccessfulCompletion && near(d[1] - d[0], p) &&
                        near(t[2] - t[1], p) && near(t[1] - t[0], p);
    if (steady && !probed) {
      // Let every other initiator catch up to this one's time, then issue one burst: it crosses
      // the whole path and so learns whether another requester has been using it.
      qk.sync();
      nowPs_ = ctx_->time_stamp().value();
      probed = true;
    } else if (steady) {
      probed = false;
      const std::uint64_t m = std::min(count - i, std::max<std::uint64_t>(1, params_.streamChunkPs / p));
      if (streamChunk(write, addr + i * burstBytes, burstBytes, m, t[2] + p, p, res, qk)) {
        for (int k = 0; k < 3; ++k) {
          t[k] += m * p;
          d[k] += m * p;
        }
        i += m;
        continue;
      }
    }
    const std::uint64_t a = addr + i * burstBytes;
    const DmaIssue r = write ? issueWrite(a, burstBytes, nullptr, qk) : issueRead(a, burstBytes, nullptr, qk);
    note(r);
    t[0] = t[1], t[1] = t[2], t[2] = lastIssuePs_;
    d[0] = d[1], d[1] = d[2], d[2] = r.donePs;
    ++seen;
    ++i;
  }
  return res;
}

bool PcieDmaEngine::streamChunk(bool write, std::uint64_t addr, std::uint64_t burstBytes, std::uint64_t m,
                                std::uint64_t issuePs, std::uint64_t periodPs, DmaIssue& res,
                                tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(router_ != nullptr, name() << ": no router");
  const std::uint64_t len = m * burstBytes;
  // One route for the whole chunk (same target, same path).
  const PcieRouteResult first = route(addr, write);
  const PcieRouteResult last = route(addr + len - 1, write);
  if (first.route == nullptr || first.route != last.route) return false;
  // advanceTo may sync; another caller of this engine that issued meanwhile breaks the period.
  const std::uint64_t burstsBefore = bursts_.value();
  if (advanceTo(issuePs, qk) > issuePs || bursts_.value() != burstsBefore) return false;
  // Every burst has the same alignment (4 KiB multiples), so the chunk's TLPs are m times one
  // burst's, booked as one train on every hop.
  const PcieLinkConfig& cfg = params_.link;
  const BurstWire w = write ? writeBurstWire(cfg, addr, burstBytes) : readWire(addr, burstBytes);
  prepare(write ? TlpKind::MWr : TlpKind::MRd, addr, len, nullptr, first.route);
  ext_->reqTlps = m * w.reqTlps;
  ext_->reqWireBytes = m * w.reqWireBytes;
  ext_->cplTlps = m * w.cplTlps;
  ext_->cplWireBytes = m * w.cplWireBytes;
  ext_->repeat = m;
  const std::uint64_t head = send(issuePs);
  const std::uint64_t trainDone = write ? head : head + ext_->tailAfterHeadPs;
  // The last burst completes m - 1 periods after the first of the chunk, one period after the
  // burst before the chunk; later if the train met traffic the probe did not see.
  const std::uint64_t lastDone = std::max(res.donePs + m * periodPs, trainDone);
  res.donePs = lastDone;
  if (res.status == CplStatus::SuccessfulCompletion) res.status = ext_->status;
  // The engine's state one chunk on: everything it holds moves m periods later.
  nextIssuePs_ += m * periodPs;
  if (write) {
    posted_.shift(m * periodPs);
    mwrTlps_ += m * w.reqTlps;
    bytesWritten_ += len;
  } else {
    burstTags_.shift(m * periodPs);
    mrdTlps_ += m * w.reqTlps;
    bytesRead_ += len;
  }
  bursts_ += m;
  if (ext_->status != CplStatus::SuccessfulCompletion) failed_ += m;
  setLocal(nextIssuePs_, qk);
  return true;
}

CplStatus PcieDmaEngine::write(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                               tlm_utils::tlm_quantumkeeper& qk) {
  const DmaIssue r = issueWrite(addr, len, data, qk);
  advanceTo(r.donePs, qk);
  return r.status;
}

CplStatus PcieDmaEngine::read(std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
                              tlm_utils::tlm_quantumkeeper& qk) {
  const DmaIssue r = issueRead(addr, len, data, qk);
  advanceTo(r.donePs, qk);
  return r.status;
}

}  // namespace hmmsim
