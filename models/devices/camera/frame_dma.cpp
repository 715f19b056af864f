#include "models/devices/camera/frame_dma.h"

#include <algorithm>

#include "models/cpu_mmu/mm.h"
#include "sim/assert.h"

namespace hmmsim {

void advanceLocalTo(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk) {
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (t <= localNowPs(qk)) return;
  qk.set(sc_core::sc_time::from_value(t - now));
  if (qk.need_sync()) qk.sync();
}

// ---- DescriptorDmaPort ----------------------------------------------------------------------

DescriptorDmaPort::DescriptorDmaPort(PcieDmaEngine& engine, std::vector<DmaSegment> segments)
    : engine_(engine), segments_(std::move(segments)) {
  for (const DmaSegment& s : segments_) {
    HMMSIM_ASSERT(s.bytes > 0, "empty DMA segment at " << s.busAddr);
    starts_.push_back(bytes_);
    bytes_ += s.bytes;
  }
}

DmaIssue DescriptorDmaPort::write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                                  tlm_utils::tlm_quantumkeeper& qk) {
  return transfer(true, offset, len, const_cast<std::uint8_t*>(data), qk);
}

DmaIssue DescriptorDmaPort::read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                                 tlm_utils::tlm_quantumkeeper& qk) {
  return transfer(false, offset, len, data, qk);
}

DmaIssue DescriptorDmaPort::transfer(bool write, std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                                     tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(offset <= bytes_ && len <= bytes_ - offset,
                "DMA [" << offset << ", +" << len << ") outside a " << bytes_ << "-byte buffer");
  DmaIssue res;
  res.donePs = localNowPs(qk);
  std::size_t i =
      static_cast<std::size_t>(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin()) -
      1;
  std::uint64_t done = 0;
  while (done < len) {
    const std::uint64_t in = offset + done - starts_[i];
    const std::uint64_t n = std::min(len - done, segments_[i].bytes - in);
    const std::uint64_t addr = segments_[i].busAddr + in;
    const DmaIssue r = write ? engine_.issueWrite(addr, n, data ? data + done : nullptr, qk)
                             : engine_.issueRead(addr, n, data ? data + done : nullptr, qk);
    if (r.status != CplStatus::SuccessfulCompletion && res.status == CplStatus::SuccessfulCompletion)
      res.status = r.status;
    res.donePs = std::max(res.donePs, r.donePs);
    done += n;
    ++i;
  }
  return res;
}

// ---- MirrorDmaPort --------------------------------------------------------------------------

MirrorDmaPort::MirrorDmaPort(Mm& mm, const HmmDmaImporter& imp, PcieDmaEngine& engine, Va start,
                             std::uint64_t bytes, bool deviceWrites, const MirrorDmaPortParams& params,
                             const std::string& name, P2pChecker* checker)
    : mm_(mm),
      engine_(engine),
      start_(start),
      bytes_(bytes),
      deviceWrites_(deviceWrites),
      params_(params),
      stats_(name),
      faults_(stats_.counter("device_faults", "faults", "device page faults serviced by the driver")),
      bursts_(stats_.counter("bursts", "bursts", "DMA bursts issued")),
      failed_(stats_.counter("failed_bursts", "bursts", "bursts the fabric did not complete successfully")),
      waits_(
          stats_.counter("invalidation_waits", "waits", "invalidations that waited for in-flight bursts")) {
  HMMSIM_ASSERT(start.value() % kPageSize == 0 && bytes > 0, "buffer at " << start << " not page aligned");
  const std::uint64_t pages = (bytes + kPageSize - 1) >> kPageShift;
  mirror_ = std::make_unique<ImporterMirror>(mm, imp, start, pages, params.mirror, checker, name + ".mirror");
  mirror_->setWaitForDma([this](ImporterMirror&, Va s, Va e) { waitForDma(s, e); });
}

MirrorDmaPort::~MirrorDmaPort() {
  for (const InFlight& f : inFlight_) mirror_->endDma(f.id);
  inFlight_.clear();
}

HmmStatus MirrorDmaPort::prefault() {
  const Va end = start_ + (((bytes_ + kPageSize - 1) >> kPageShift) << kPageShift);
  return mirror_->map(start_, end, deviceWrites_);
}

DmaIssue MirrorDmaPort::write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                              tlm_utils::tlm_quantumkeeper& qk) {
  return transfer(true, offset, len, const_cast<std::uint8_t*>(data), qk);
}

DmaIssue MirrorDmaPort::read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                             tlm_utils::tlm_quantumkeeper& qk) {
  return transfer(false, offset, len, data, qk);
}

DmaIssue MirrorDmaPort::transfer(bool write, std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                                 tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(offset <= bytes_ && len <= bytes_ - offset,
                "DMA [" << offset << ", +" << len << ") outside a " << bytes_ << "-byte buffer");
  retire(localNowPs(qk));
  DmaIssue res;
  res.donePs = localNowPs(qk);
  std::uint64_t done = 0;
  bool faulted = false;  // one fault per page: a second miss right after mapping is a failure
  while (done < len) {
    const Va va = start_ + offset + done;
    const std::uint64_t inPage = va.value() & (kPageSize - 1);
    const std::uint64_t n = std::min(len - done, kPageSize - inPage);
    const std::optional<DeviceTranslation> t = mirror_->translate(va, write);
    if (!t) {
      if (faulted || !fault(va, qk)) {
        ++failed_;
        res.status = CplStatus::UnsupportedRequest;
        return res;
      }
      faulted = true;
      continue;
    }
    faulted = false;
    const std::optional<std::uint64_t> id = mirror_->beginDma(va, write);
    HMMSIM_ASSERT(id, "translation of " << va << " vanished between lookup and DMA");
    const std::uint64_t addr = t->addr.value() + inPage;
    const DmaIssue r = write ? engine_.issueWrite(addr, n, data ? data + done : nullptr, qk)
                             : engine_.issueRead(addr, n, data ? data + done : nullptr, qk);
    ++bursts_;
    inFlight_.push_back(InFlight{*id, va.alignDown(kPageSize), r.donePs});
    if (r.status != CplStatus::SuccessfulCompletion) {
      ++failed_;
      if (res.status == CplStatus::SuccessfulCompletion) res.status = r.status;
    }
    res.donePs = std::max(res.donePs, r.donePs);
    done += n;
  }
  return res;
}

bool MirrorDmaPort::fault(Va va, tlm_utils::tlm_quantumkeeper& qk) {
  // The driver services the fault at synchronised time: mapping is an ordering-sensitive
  // decision (it races with invalidations), so it must not run ahead of other threads.
  qk.sync();
  if (params_.faultPs) sc_core::wait(sc_core::sc_time::from_value(params_.faultPs));
  ++faults_;
  const Va page = va.alignDown(kPageSize);
  const Va windowEnd = start_ + (mirror_->pages() << kPageShift);
  const Va end = std::min(windowEnd, page + (params_.faultPages << kPageShift));
  return mirror_->map(page, end, deviceWrites_) == HmmStatus::Ok;
}

void MirrorDmaPort::retire(std::uint64_t nowPs) {
  auto keep = inFlight_.begin();
  for (auto it = inFlight_.begin(); it != inFlight_.end(); ++it) {
    if (it->donePs <= nowPs)
      mirror_->endDma(it->id);
    else
      *keep++ = *it;
  }
  inFlight_.erase(keep, inFlight_.end());
}

void MirrorDmaPort::waitForDma(Va start, Va end) {
  std::uint64_t latest = 0;
  for (const InFlight& f : inFlight_)
    if (f.page < end && f.page + kPageSize > start) latest = std::max(latest, f.donePs);
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (latest > now) {
    HMMSIM_ASSERT(sc_core::sc_get_current_process_handle().proc_kind() == sc_core::SC_THREAD_PROC_,
                  "an invalidation must wait for in-flight DMA but does not run in an SC_THREAD");
    ++waits_;
    sc_core::wait(sc_core::sc_time::from_value(latest - now));
  }
  auto keep = inFlight_.begin();
  for (auto it = inFlight_.begin(); it != inFlight_.end(); ++it) {
    if (it->page < end && it->page + kPageSize > start)
      mirror_->endDma(it->id);
    else
      *keep++ = *it;
  }
  inFlight_.erase(keep, inFlight_.end());
}

}  // namespace hmmsim
