#include "models/cpu_mmu/system_bus.h"

#include "sim/assert.h"

namespace hmmsim {

SystemBus::SystemBus(sc_core::sc_module_name name, const SystemAddressMap& map)
    : sc_core::sc_module(name),
      map_(map),
      stats_(this->name()),
      requests_(stats_.counter("requests", "transactions", "requests forwarded to a target")),
      decodeErrors_(stats_.counter("decode_errors", "transactions",
                                   "requests no address range holds (completed with an address error)")) {
  tSocket.register_b_transport(this, &SystemBus::bTransport);
  tSocket.register_transport_dbg(this, &SystemBus::transportDbg);
}

void SystemBus::bTransport(int /*port*/, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  const Pa pa(gp.get_address());
  const AddressRange* r = map_.decode(pa, gp.get_data_length() == 0 ? 1 : gp.get_data_length());
  if (r == nullptr) {
    ++decodeErrors_;
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  HMMSIM_ASSERT(r->target < iSocket.size(), name() << ": range '" << r->name << "' names target " << r->target
                                                   << " but only " << iSocket.size() << " are bound");
  ++requests_;
  gp.set_address(SystemAddressMap::targetAddress(*r, pa));
  iSocket[static_cast<int>(r->target)]->b_transport(gp, delay);
  gp.set_address(pa.value());
}

unsigned SystemBus::transportDbg(int /*port*/, tlm::tlm_generic_payload& gp) {
  const Pa pa(gp.get_address());
  const AddressRange* r = map_.decode(pa, gp.get_data_length() == 0 ? 1 : gp.get_data_length());
  if (r == nullptr || r->target >= iSocket.size()) return 0;
  gp.set_address(SystemAddressMap::targetAddress(*r, pa));
  const unsigned n = iSocket[static_cast<int>(r->target)]->transport_dbg(gp);
  gp.set_address(pa.value());
  return n;
}

}  // namespace hmmsim
