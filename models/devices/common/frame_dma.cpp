#include "models/devices/common/frame_dma.h"

#include <algorithm>

#include "sim/sync_ahead.h"

#include "sim/assert.h"

namespace hmmsim {

void advanceLocalTo(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk) {
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  if (t <= localNowPs(qk)) return;
  qk.set(sc_core::sc_time::from_value(t - now));
  if (qk.need_sync()) syncAhead(qk);
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

// ---- ImporterDmaPort ------------------------------------------------------------------------

DmaIssue ImporterDmaPort::result(const ImporterDmaResult& r, tlm_utils::tlm_quantumkeeper& qk) const {
  DmaIssue d;
  d.donePs = std::max(r.donePs, localNowPs(qk));
  if (r.status == ImporterDmaStatus::Io)
    d.status = r.cpl;
  else if (r.status != ImporterDmaStatus::Ok)
    d.status = CplStatus::UnsupportedRequest;  // no translation: the device aborts the transfer
  return d;
}

DmaIssue ImporterDmaPort::write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                                tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(offset <= bytes_ && len <= bytes_ - offset, "DMA outside a " << bytes_ << "-byte buffer");
  // The transfer is a piece of the frame's DMA into the buffer: a device fault maps the rest of
  // the buffer (ImporterDma's dmaEnd), not only the lines this transfer writes.
  return result(dma_.issueWrite(start_ + offset, len, data, qk, start_ + bytes_), qk);
}

DmaIssue ImporterDmaPort::read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                               tlm_utils::tlm_quantumkeeper& qk) {
  HMMSIM_ASSERT(offset <= bytes_ && len <= bytes_ - offset, "DMA outside a " << bytes_ << "-byte buffer");
  return result(dma_.issueRead(start_ + offset, len, data, qk, start_ + bytes_), qk);
}

HmmStatus ImporterDmaRing::prefault(std::size_t i, bool write) {
  const ImporterDmaPort& p = *ports.at(i);
  const Va end = p.start() + (((p.bytes() + kPageSize - 1) >> kPageShift) << kPageShift);
  return dma->mirror().map(p.start(), end, write);
}

std::unique_ptr<ImporterDmaRing> makeImporterDmaRing(const std::string& name, Mm& mm,
                                                     const HmmDmaImporter& imp, PcieDmaEngine& engine,
                                                     const std::vector<Va>& starts, std::uint64_t bytes,
                                                     const ImporterDmaParams& params, P2pChecker* checker,
                                                     ImporterDmaDirectory* directory) {
  if (starts.empty() || bytes == 0) return nullptr;
  Va lo = starts[0], hi = starts[0];
  for (Va s : starts) {
    if (s.value() % kPageSize) return nullptr;
    lo = std::min(lo, s);
    hi = std::max(hi, s + bytes);
  }
  const std::uint64_t pages = (hi - lo + kPageSize - 1) >> kPageShift;
  auto ring = std::make_unique<ImporterDmaRing>();
  ring->dma = std::make_unique<ImporterDma>(name, mm, imp, engine, lo, pages, params, checker, directory);
  for (Va s : starts) ring->ports.push_back(std::make_unique<ImporterDmaPort>(*ring->dma, s, bytes));
  return ring;
}

}  // namespace hmmsim
