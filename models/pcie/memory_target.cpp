#include "models/pcie/memory_target.h"

#include <algorithm>
#include <cstring>

namespace hmmsim {

namespace {
constexpr std::uint64_t kStorePage = 4096;
}

PcieMemoryTarget::PcieMemoryTarget(sc_core::sc_module_name name, const PcieMemoryTargetParams& params)
    : sc_module(name),
      params_(params),
      port_(params.bandwidthGbps, params.latencyPs),
      stats_(std::string(this->name())),
      bytesWritten_(stats_.counter("bytes_written", "B", "payload bytes written")),
      bytesRead_(stats_.counter("bytes_read", "B", "payload bytes read")),
      unsupported_(stats_.counter("unsupported_requests", "request",
                                  "requests outside the claimed range (completed with UR)")) {
  requirePicosecondResolution();
  in.register_b_transport(this, &PcieMemoryTarget::bTransport);
}

std::uint8_t* PcieMemoryTarget::page(std::uint64_t pageIndex, bool create) {
  auto it = pages_.find(pageIndex);
  if (it != pages_.end()) return it->second.get();
  if (!create) return nullptr;
  auto p = std::make_unique<std::uint8_t[]>(kStorePage);  // zero-initialised
  std::uint8_t* raw = p.get();
  pages_.emplace(pageIndex, std::move(p));
  return raw;
}

void PcieMemoryTarget::peek(std::uint64_t addr, std::uint8_t* out, std::uint64_t len) const {
  HMMSIM_ASSERT(claims(addr, len), name() << ": peek outside the target at 0x" << std::hex << addr);
  std::uint64_t off = addr - params_.baseAddr;
  while (len > 0) {
    const std::uint64_t n = std::min(len, kStorePage - off % kStorePage);
    auto it = pages_.find(off / kStorePage);
    if (it == pages_.end())
      std::memset(out, 0, n);
    else
      std::memcpy(out, it->second.get() + off % kStorePage, n);
    out += n;
    off += n;
    len -= n;
  }
}

void PcieMemoryTarget::poke(std::uint64_t addr, const std::uint8_t* data, std::uint64_t len) {
  HMMSIM_ASSERT(claims(addr, len), name() << ": poke outside the target at 0x" << std::hex << addr);
  std::uint64_t off = addr - params_.baseAddr;
  while (len > 0) {
    const std::uint64_t n = std::min(len, kStorePage - off % kStorePage);
    std::memcpy(page(off / kStorePage, true) + off % kStorePage, data, n);
    data += n;
    off += n;
    len -= n;
  }
}

void PcieMemoryTarget::bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  PcieTlpExtension& ext = pcieExt(gp);
  const std::uint64_t addr = gp.get_address();
  const std::uint64_t len = ext.lengthBytes;
  const std::uint64_t head = absPs(ext, delay);
  const std::uint64_t tail = head + ext.tailAfterHeadPs;
  if (!claims(addr, len)) {
    ++unsupported_;
    ext.status = CplStatus::UnsupportedRequest;
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    delay = delayOf(ext, tail + params_.latencyPs);
    ext.tailAfterHeadPs = 0;
    return;
  }
  ext.sharedSeenPs = std::max(ext.sharedSeenPs, port_.noteRequester(ext.requester.key(), ext.nowPs));
  const bool isWrite = gp.is_write();
  std::uint8_t* data = gp.get_data_ptr();
  if (params_.storeData && data != nullptr) {
    if (isWrite)
      poke(addr, data, len);
    else
      peek(addr, data, len);
  }
  if (isWrite) {
    // Stored once the last byte arrived and the memory moved it.
    const HeadTail done = port_.transmit({head, tail}, len, 1, nullptr, ext.nowPs);
    bytesWritten_ += len;
    delay = delayOf(ext, done.tailPs);
    ext.tailAfterHeadPs = 0;
  } else {
    // Data for the first request is ready `latency` after it arrived; the rest streams at the
    // memory's bandwidth but not before the last request of the train arrived.
    const HeadTail done = port_.transmit({head, tail}, len, 1, nullptr, ext.nowPs);
    bytesRead_ += len;
    delay = delayOf(ext, done.headPs);
    ext.tailAfterHeadPs = done.tailPs - done.headPs;
  }
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace hmmsim
