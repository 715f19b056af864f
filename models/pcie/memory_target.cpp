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

      stats_(std::string(this->name())),
      bytesWritten_(stats_.counter("bytes_written", "B", "payload bytes written")),
      bytesRead_(stats_.counter("bytes_read", "B", "payload bytes read")),
      unsupported_(stats_.counter("unsupported_requests", "request",
                                  "requests outside the claimed range (completed with UR)")),
      mmioAccesses_(
          stats_.counter("mmio_accesses", "request", "requests served by an MMIO register handler")),
      localBytes_(stats_.counter("local_bytes", "B", "bytes of device-local accesses (localAccess)")) {
  buildChannels(params);
  requirePicosecondResolution();
}

void PcieMemoryTarget::buildChannels(const PcieMemoryTargetParams& timing) {
  HMMSIM_ASSERT(timing.channels >= 1 && timing.interleaveBytes > 0 &&
                    (timing.interleaveBytes & (timing.interleaveBytes - 1)) == 0 && timing.bandwidthGbps > 0,
                name() << ": channels must be >= 1, interleaveBytes a power of two, bandwidth > 0");
  channels_.clear();
  channels_.reserve(timing.channels);
  for (std::uint32_t c = 0; c < timing.channels; ++c)
    channels_.emplace_back(timing.bandwidthGbps, timing.latencyPs);
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

void PcieMemoryTarget::setBacking(ByteStore* store, std::uint64_t storeBase, std::uint64_t deviceBytes) {
  HMMSIM_ASSERT(store != nullptr && deviceBytes >= params_.sizeBytes,
                name() << ": backing needs a store and a device memory at least as large as the aperture ("
                       << params_.sizeBytes << " B), got " << deviceBytes << " B");
  HMMSIM_ASSERT(pages_.empty(), name() << ": setBacking after bytes were stored in the target");
  store_ = store;
  storeBase_ = storeBase;
  deviceBytes_ = deviceBytes;
}

void PcieMemoryTarget::setTiming(const PcieMemoryTargetParams& timing) {
  HMMSIM_ASSERT(bytesRead_.value() == 0 && bytesWritten_.value() == 0 && localBytes_.value() == 0 &&
                    mmioAccesses_.value() == 0,
                name() << ": setTiming after the target was used");
  params_.latencyPs = timing.latencyPs;
  params_.bandwidthGbps = timing.bandwidthGbps;
  params_.channels = timing.channels;
  params_.interleaveBytes = timing.interleaveBytes;
  buildChannels(timing);
}

Errno PcieMemoryTarget::mapWindow(std::uint64_t barOffset, std::uint64_t deviceOffset, std::uint64_t bytes) {
  const bool aligned =
      barOffset % kStorePage == 0 && deviceOffset % kStorePage == 0 && bytes % kStorePage == 0;
  if (store_ == nullptr || bytes == 0 || !aligned || barOffset > params_.sizeBytes ||
      bytes > params_.sizeBytes - barOffset || deviceOffset > deviceBytes_ ||
      bytes > deviceBytes_ - deviceOffset)
    return Errno::Inval;
  // Cut every segment overlapping [barOffset, end) down to its parts outside it.
  const std::uint64_t end = barOffset + bytes;
  auto it = window_.upper_bound(barOffset);
  if (it != window_.begin()) --it;
  while (it != window_.end() && it->first < end) {
    const std::uint64_t s = it->first, e = s + it->second.bytes, d = it->second.deviceOffset;
    if (e <= barOffset) {
      ++it;
      continue;
    }
    it = window_.erase(it);
    if (s < barOffset) window_.emplace(s, Segment{barOffset - s, d});
    if (e > end) it = window_.emplace(end, Segment{e - end, d + (end - s)}).first;
  }
  window_.emplace(barOffset, Segment{bytes, deviceOffset});
  return Errno::Ok;
}

std::uint64_t PcieMemoryTarget::windowOffset(std::uint64_t barOffset) const {
  auto it = window_.upper_bound(barOffset);
  if (it == window_.begin()) return barOffset;
  --it;
  if (barOffset - it->first < it->second.bytes) return it->second.deviceOffset + (barOffset - it->first);
  return barOffset;
}

template <class Fn>
void PcieMemoryTarget::forEachBacked(std::uint64_t off, std::uint64_t len, Fn fn) const {
  std::uint64_t done = 0;
  while (done < len) {
    const std::uint64_t o = off + done;
    std::uint64_t n = len - done;  // up to the end of o's segment or the start of the next one
    auto next = window_.upper_bound(o);
    if (next != window_.end()) n = std::min(n, next->first - o);
    if (next != window_.begin()) {
      auto cur = std::prev(next);
      if (o - cur->first < cur->second.bytes) n = std::min(n, cur->first + cur->second.bytes - o);
    }
    fn(storeBase_ + windowOffset(o), done, n);
    done += n;
  }
}

Errno PcieMemoryTarget::registerMmio(std::uint64_t barOffset, std::uint64_t bytes, MmioHandler handler,
                                     std::string regName) {
  if (bytes == 0 || !handler || barOffset > params_.sizeBytes || bytes > params_.sizeBytes - barOffset)
    return Errno::Inval;
  auto next = mmio_.lower_bound(barOffset);
  if (next != mmio_.end() && next->first < barOffset + bytes) return Errno::Inval;
  if (next != mmio_.begin() && std::prev(next)->first + std::prev(next)->second.bytes > barOffset)
    return Errno::Inval;
  mmio_.emplace(barOffset, Mmio{bytes, std::move(handler), std::move(regName)});
  return Errno::Ok;
}

const PcieMemoryTarget::Mmio* PcieMemoryTarget::mmioAt(std::uint64_t off, std::uint64_t len,
                                                       std::uint64_t& rangeStart, bool& straddles) const {
  straddles = false;
  if (mmio_.empty()) return nullptr;
  auto next = mmio_.lower_bound(off + len);  // first range starting at or after the access end
  if (next == mmio_.begin()) return nullptr;
  auto r = std::prev(next);
  if (r->first + r->second.bytes <= off) return nullptr;  // ends before the access
  if (r->first <= off && off + len <= r->first + r->second.bytes) {
    rangeStart = r->first;
    return &r->second;
  }
  straddles = true;
  return nullptr;
}

void PcieMemoryTarget::peek(std::uint64_t addr, std::uint8_t* out, std::uint64_t len) const {
  HMMSIM_ASSERT(claims(addr, len), name() << ": peek outside the target at 0x" << std::hex << addr);
  std::uint64_t off = addr - params_.baseAddr;
  if (store_ != nullptr) {
    forEachBacked(off, len, [&](std::uint64_t at, std::uint64_t o, std::uint64_t n) {
      store_->readBytes(at, out + o, static_cast<std::size_t>(n));
    });
    return;
  }
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
  if (store_ != nullptr) {
    forEachBacked(off, len, [&](std::uint64_t at, std::uint64_t o, std::uint64_t n) {
      store_->writeBytes(at, data + o, static_cast<std::size_t>(n));
    });
    return;
  }
  while (len > 0) {
    const std::uint64_t n = std::min(len, kStorePage - off % kStorePage);
    std::memcpy(page(off / kStorePage, true) + off % kStorePage, data, n);
    data += n;
    off += n;
    len -= n;
  }
}

void PcieMemoryTarget::mmioAccess(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  // Caller checked that one register range holds the access.
  PcieTlpExtension& ext = pcieExt(gp);
  const std::uint64_t off = gp.get_address() - params_.baseAddr;
  std::uint64_t start = 0;
  bool straddles = false;
  const Mmio* m = mmioAt(off, ext.lengthBytes, start, straddles);
  // The register sees the access once all of it arrived; a read's data returns after latencyPs.
  const std::uint64_t arrive = absPs(ext, delay) + ext.tailAfterHeadPs;
  ++mmioAccesses_;
  m->handler(MmioAccess{gp.is_write(), off - start, gp.get_data_ptr(), ext.lengthBytes, arrive});
  delay = delayOf(ext, arrive + params_.latencyPs);
  ext.tailAfterHeadPs = 0;
  if (gp.is_write())
    bytesWritten_ += ext.lengthBytes;
  else
    bytesRead_ += ext.lengthBytes;
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

std::uint64_t PcieMemoryTarget::channelBytes(std::uint64_t addr, std::uint64_t len, std::uint32_t c) const {
  // Granule g covers [g * G, (g + 1) * G) and belongs to channel g mod channels.
  const std::uint64_t g = params_.interleaveBytes, n = params_.channels;
  auto upTo = [&](std::uint64_t a) {  // bytes of [0, a) on channel c
    const std::uint64_t full = a / g, part = a % g;
    return (full / n + (full % n > c ? 1 : 0)) * g + (full % n == c ? part : 0);
  };
  return upTo(addr + len) - upTo(addr);
}

void PcieMemoryTarget::bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                  sc_core::sc_time& delay) {
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
  if (!mmio_.empty()) {
    std::uint64_t start = 0;
    bool straddles = false;
    if (mmioAt(addr - params_.baseAddr, len, start, straddles) != nullptr) {
      mmioAccess(gp, delay);
      return;
    }
    if (straddles) {
      ++unsupported_;
      ext.status = CplStatus::UnsupportedRequest;
      gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
      delay = delayOf(ext, tail + params_.latencyPs);
      ext.tailAfterHeadPs = 0;
      return;
    }
  }
  const bool isWrite = gp.is_write();
  if (observer_) observer_(PcieTargetAccess{ext.requester, addr, len, isWrite, head});
  std::uint8_t* data = gp.get_data_ptr();
  if (params_.storeData && data != nullptr) {
    if (isWrite)
      poke(addr, data, len);
    else
      peek(addr, data, len);
  }
  // Every channel moves its share of the bytes; the burst is done when the slowest is. A read's
  // data for the first request is ready `latency` after it arrived; the rest streams at the
  // channels' bandwidth but not before the last request of the train arrived.
  HeadTail done{~0ull, 0};
  // interleaveBytes is a power of two: shifts, not divisions, on the per-TLP path.
  const unsigned shift = static_cast<unsigned>(__builtin_ctzll(params_.interleaveBytes));
  if (addr >> shift == (addr + len - 1) >> shift) {
    // One granule (every per-TLP access with the defaults): one channel, no per-channel split.
    const std::uint64_t granule = addr >> shift, n = channels_.size();
    BandwidthResource& ch = channels_[(n & (n - 1)) == 0 ? granule & (n - 1) : granule % n];
    ext.sharedSeenPs = std::max(ext.sharedSeenPs, ch.noteRequester(ext.requesterKey, ext.nowPs));
    done = ch.transmit({head, tail}, len, 1, nullptr, ext.nowPs, ext.repeat);
  } else {
    for (std::uint32_t c = 0; c < channels_.size(); ++c) {
      const std::uint64_t bytes = channels_.size() == 1 ? len : channelBytes(addr, len, c);
      if (bytes == 0) continue;
      ext.sharedSeenPs = std::max(ext.sharedSeenPs, channels_[c].noteRequester(ext.requesterKey, ext.nowPs));
      // A stream chunk's trains hold equal bytes per channel only if each train does.
      const std::uint64_t repeat = bytes % ext.repeat == 0 ? ext.repeat : 1;
      const HeadTail d = channels_[c].transmit({head, tail}, bytes, 1, nullptr, ext.nowPs, repeat);
      done.headPs = std::min(done.headPs, d.headPs);
      done.tailPs = std::max(done.tailPs, d.tailPs);
    }
  }
  if (isWrite) {
    // Stored once the last byte arrived and the memory moved it.
    bytesWritten_ += len;
    delay = delayOf(ext, done.tailPs);
    ext.tailAfterHeadPs = 0;
  } else {
    bytesRead_ += len;
    delay = delayOf(ext, done.headPs);
    ext.tailAfterHeadPs = done.tailPs - done.headPs;
  }
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

HeadTail PcieMemoryTarget::localAccess(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs,
                                       std::uint64_t nowPs, std::uint32_t requesterKey) {
  return local(memOffset, len, readyPs, nowPs, requesterKey, false);
}

HeadTail PcieMemoryTarget::localStream(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs,
                                       std::uint64_t nowPs, std::uint32_t requesterKey) {
  return local(memOffset, len, readyPs, nowPs, requesterKey, true);
}

HeadTail PcieMemoryTarget::local(std::uint64_t memOffset, std::uint64_t len, std::uint64_t readyPs,
                                 std::uint64_t nowPs, std::uint32_t requesterKey, bool spread) {
  HeadTail done{~0ull, 0};
  if (len == 0) return HeadTail{readyPs, readyPs};
  for (std::uint32_t c = 0; c < channels_.size(); ++c) {
    const std::uint64_t bytes = channels_.size() == 1 ? len : channelBytes(memOffset, len, c);
    if (bytes == 0) continue;
    channels_[c].noteRequester(requesterKey, nowPs);
    const HeadTail d = spread ? channels_[c].transmitSpread(readyPs, bytes, nowPs)
                              : channels_[c].transmit({readyPs, readyPs}, bytes, 1, nullptr, nowPs);
    done.headPs = std::min(done.headPs, d.headPs);
    done.tailPs = std::max(done.tailPs, d.tailPs);
  }
  localBytes_ += len;
  return done;
}

}  // namespace hmmsim
