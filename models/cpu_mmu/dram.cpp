#include "models/cpu_mmu/dram.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim {

std::string DramParams::check() const {
  if (channels < 1 || channels > 64)
    return "dram.channels must be in [1, 64], got " + std::to_string(channels);
  if (interleaveBytes < 64 || (interleaveBytes & (interleaveBytes - 1)) != 0)
    return "dram.interleave_bytes must be a power of two >= 64, got " + std::to_string(interleaveBytes);
  if (!(channelBandwidthBps > 0) || !std::isfinite(channelBandwidthBps))
    return "dram.channel_bandwidth must be a positive bit rate";
  return "";
}

Dram::Dram(sc_core::sc_module_name name, const DramParams& params, PhysMem& physMem)
    : sc_core::sc_module(name),
      params_(params),
      physMem_(physMem),
      psPerByte_(8.0e12 / params.channelBandwidthBps),
      latency_(sc_core::sc_time(static_cast<double>(params.latencyPs), sc_core::SC_PS)),
      psResolution_(sc_core::sc_get_time_resolution() == sc_core::sc_time(1, sc_core::SC_PS)),
      channelBooks_(params.channels),
      stats_(this->name()),
      reads_(stats_.counter("reads", "requests", "read requests served")),
      writes_(stats_.counter("writes", "requests", "write requests served")),
      bytesRead_(stats_.counter("bytes_read", "B", "bytes read")),
      bytesWritten_(stats_.counter("bytes_written", "B", "bytes written")),
      addressErrors_(stats_.counter("address_errors", "requests", "requests outside system RAM")),
      otherErrors_(stats_.counter("other_errors", "requests",
                                  "requests refused for command, byte enables or streaming width")),
      queuedPs_(
          stats_.counter("queued_ps", "ps", "time requests waited behind earlier channel reservations")),
      debugAccesses_(stats_.counter("debug_accesses", "requests", "transport_dbg accesses")) {
  const std::string why = params.check();
  HMMSIM_ASSERT(why.empty(), "Dram " << this->name() << ": " << why);
  for (unsigned c = 0; c < params.channels; ++c)
    channelBusyPs_.push_back(
        &stats_.counter("ch" + std::to_string(c) + "_busy_ps", "ps",
                        "time channel " + std::to_string(c) + " spent transferring data"));
  tSocket.register_b_transport(this, &Dram::bTransport);
  tSocket.register_transport_dbg(this, &Dram::transportDbg);
}

sc_core::sc_time Dram::serializationTime(std::uint64_t bytes) const {
  // At a 1 ps resolution (always on a platform: the PCIe models require it) the rounded ps are
  // the sc_time's value; from_value skips sc_time(double, unit)'s floating-point scaling, which
  // showed in profiles (once per channel piece of every request).
  const double ps = std::round(static_cast<double>(bytes) * psPerByte_);
  return psResolution_ ? sc_core::sc_time::from_value(static_cast<std::uint64_t>(ps))
                       : sc_core::sc_time(ps, sc_core::SC_PS);
}

bool Dram::checkPayload(tlm::tlm_generic_payload& gp) {
  const tlm::tlm_command cmd = gp.get_command();
  if (cmd != tlm::TLM_READ_COMMAND && cmd != tlm::TLM_WRITE_COMMAND) {
    gp.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
    ++otherErrors_;
    return false;
  }
  if (gp.get_byte_enable_ptr() != nullptr) {
    gp.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    ++otherErrors_;
    return false;
  }
  const std::uint64_t len = gp.get_data_length();
  if (gp.get_data_ptr() == nullptr && len > 0 && !params_.acceptNoData) {
    // A payload must carry a data buffer (IEEE 1666 14.13); a timing-only initiator still
    // passes one. Refused rather than dereferenced.
    gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    ++otherErrors_;
    return false;
  }
  if (gp.get_streaming_width() < len) {
    gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
    ++otherErrors_;
    return false;
  }
  const std::uint64_t addr = gp.get_address();
  const bool inRam = len > 0 && addr + len > addr && physMem_.isRam(pfnOf(Pa(addr))) &&
                     physMem_.isRam(pfnOf(Pa(addr + len - 1)));
  if (!inRam) {
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    ++addressErrors_;
    return false;
  }
  return true;
}

void Dram::moveData(tlm::tlm_generic_payload& gp) {
  const Pa pa(gp.get_address());
  const std::size_t len = gp.get_data_length();
  if (gp.get_data_ptr() == nullptr) return;  // timing only (acceptNoData)
  if (gp.is_read()) {
    if (params_.storeData)
      physMem_.read(pa, gp.get_data_ptr(), len);
    else
      std::memset(gp.get_data_ptr(), 0, len);
  } else if (params_.storeData) {
    physMem_.write(pa, gp.get_data_ptr(), len);
  }
}

void Dram::bTransport(int /*port*/, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  if (!checkPayload(gp)) return;
  // Times in ps (the simulation's time resolution, set by sim/).
  const std::uint64_t nowPs = sc_core::sc_time_stamp().value();
  const std::uint64_t arrivalPs = nowPs + delay.value();
  const std::uint64_t addr = gp.get_address();
  const std::uint64_t len = gp.get_data_length();

  // Book each channel piece: consecutive granules of the request alternate channels. No
  // initiator's local time is behind SystemC time, so bookings that ended by now are forgotten.
  std::uint64_t lastBytePs = arrivalPs;
  std::uint64_t seenChannels = 0;  // bit c: this request already booked on channel c
  std::uint64_t off = 0;
  while (off < len) {
    const std::uint64_t a = addr + off;
    const std::uint64_t granuleEnd = (a | (params_.interleaveBytes - 1)) + 1;
    const std::uint64_t n = std::min<std::uint64_t>(len - off, granuleEnd - a);
    const unsigned c = channelOf(Pa(a));
    const std::uint64_t xferPs = serializationTime(n).value();
    const IntervalBook::Booking b = channelBooks_[c].book(arrivalPs, xferPs, 0, nowPs);
    if (!(seenChannels >> c & 1)) queuedPs_ += b.startPs - arrivalPs;
    seenChannels |= 1ull << c;
    *channelBusyPs_[c] += xferPs;
    lastBytePs = std::max(lastBytePs, b.endPs);
    off += n;
  }

  moveData(gp);
  if (gp.is_read()) {
    ++reads_;
    bytesRead_ += len;
  } else {
    ++writes_;
    bytesWritten_ += len;
  }
  gp.set_dmi_allowed(false);
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  const std::uint64_t waitPs = lastBytePs - nowPs;
  delay = (psResolution_ ? sc_core::sc_time::from_value(waitPs)
                         : sc_core::sc_time(static_cast<double>(waitPs), sc_core::SC_PS)) +
          latency_;
}

unsigned Dram::transportDbg(int /*port*/, tlm::tlm_generic_payload& gp) {
  if (!checkPayload(gp)) return 0;
  moveData(gp);
  ++debugAccesses_;
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  return static_cast<unsigned>(gp.get_data_length());
}

}  // namespace hmmsim
