#include "models/pcie/pcie_link_module.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

void requirePicosecondResolution() {
  HMMSIM_ASSERT(
      sc_core::sc_get_time_resolution() == sc_core::sc_time(1, sc_core::SC_PS),
      "hmmsim PCIe models need a 1 ps SystemC time resolution, got " << sc_core::sc_get_time_resolution());
  constexpr std::uint64_t kProbe = 0x0123456789abcdefull;
  HMMSIM_ASSERT(psTime(kProbe) == sc_core::sc_time::from_value(kProbe) && psTime(kProbe).value() == kProbe,
                "psTime() disagrees with sc_time::from_value(): sc_time's layout changed");
}

void PcieTlpExtension::routeExhausted(int hop) {
  HMMSIM_ASSERT(false, "PCIe route exhausted at hop " << hop);
}

namespace detail {
void missingPcieExtension(const tlm::tlm_generic_payload& gp) {
  HMMSIM_ASSERT(false, "PCIe transaction without PcieTlpExtension at 0x" << std::hex << gp.get_address());
}
void timeBeforeNow(std::uint64_t ps, std::uint64_t now) {
  HMMSIM_ASSERT(false, "time " << ps << " ps is before now " << now << " ps");
}
}  // namespace detail

PcieLinkModule::PcieLinkModule(sc_core::sc_module_name name, const PcieLinkParams& params)
    : sc_module(name),
      params_(params),
      up_(tlpBandwidthGbps(params.config), params.latencyPs),
      down_(tlpBandwidthGbps(params.config), params.latencyPs),
      stats_(std::string(this->name())),
      upBytes_(stats_.counter("up_wire_bytes", "B", "TLP wire bytes sent toward the root")),
      downBytes_(stats_.counter("down_wire_bytes", "B", "TLP wire bytes sent toward the device")),
      upTlps_(stats_.counter("up_tlps", "TLP", "TLPs sent toward the root")),
      downTlps_(stats_.counter("down_tlps", "TLP", "TLPs sent toward the device")) {
  HMMSIM_ASSERT(validateLinkConfig(params.config) == Errno::Ok, "invalid link config for " << this->name());
  requirePicosecondResolution();
  auto wire = [&](Sender& s, LinkDirection& fwd, LinkDirection& back, Counter& fwdBytes, Counter& fwdTlps,
                  Counter& backBytes, Counter& backTlps) {
    s.fwd_ = &fwd;
    s.back_ = &back;
    s.fwdBytes_ = &fwdBytes;
    s.fwdTlps_ = &fwdTlps;
    s.backBytes_ = &backBytes;
    s.backTlps_ = &backTlps;
    s.latency_ = psTime(params.latencyPs);
  };
  wire(lower_, up_, down_, upBytes_, upTlps_, downBytes_, downTlps_);
  wire(upper_, down_, up_, downBytes_, downTlps_, upBytes_, upTlps_);
}

void PcieLinkModule::setTrace(LinkOccupancyTrace* up, LinkOccupancyTrace* down) {
  lower_.fwdTrace_ = up;
  lower_.backTrace_ = down;
  upper_.fwdTrace_ = down;
  upper_.backTrace_ = up;
}

void PcieLinkModule::Sender::completions(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                         sc_core::sc_time& delay) {
  // The read's completions come back on the other direction: CplD on success, else one Cpl.
  const bool ok = gp.get_response_status() == tlm::TLM_OK_RESPONSE;
  const std::uint64_t bytes = ok ? ext.cplWireBytes : ext.cplNoDataWireBytes;
  const std::uint64_t tlps = ok ? ext.cplTlps : 1;
  const std::uint64_t cplHead = absPs(ext, delay);
  std::uint64_t cplWaited = 0;
  const HeadTail back = back_->transmit({cplHead, cplHead + ext.tailAfterHeadPs}, bytes, tlps, &cplWaited,
                                        ext.nowPs, ok ? ext.repeat : 1);
  if (backTrace_ != nullptr)
    backTrace_->note(back_->lastBooking().startPs, back_->lastBooking().endPs, bytes, tlps);
  ext.sharedSeenPs = std::max(ext.sharedSeenPs, back_->noteRequester(ext.requesterKey, ext.nowPs));
  *backBytes_ += bytes;
  *backTlps_ += tlps;
  ext.lastLinkGbps = back_->tlpGbps();
  ext.tailAfterHeadPs = back.tailPs - back.headPs;
  delay += latency_;
  if (cplWaited != 0) delay += psTime(cplWaited);
}

}  // namespace hmmsim
