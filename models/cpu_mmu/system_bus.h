#pragma once
// SystemBus: the router between CPU cores and everything a physical address can reach, as a
// SystemC module in front of a SystemAddressMap (system_address_map.h).
//
// Sockets: `tSocket` (any number of CPU cores bind to it); `iSocket` binding i is target i of
// the map (the DRAM model, a root complex's hostIn for MMIO, ...). A request is forwarded with
// its address changed to the target's view (AddressRange::targetBase) and restored on return.
// Errors: an address no range holds completely completes with TLM_ADDRESS_ERROR_RESPONSE and is
// counted ("decode_errors"); the CPU turns it into SIGBUS.
// Timing: the bus adds none (an on-die crossbar next to DRAM and PCIe latencies); the targets
// charge theirs. Debug transport is forwarded the same way.

#include <string>

#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>
#include <systemc>
#include <tlm>

#include "models/cpu_mmu/system_address_map.h"
#include "sim/stats.h"

namespace hmmsim {

class SystemBus : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<SystemBus> tSocket{"tSocket"};
  tlm_utils::multi_passthrough_initiator_socket<SystemBus> iSocket{"iSocket"};

  /// `map` must outlive the module; every target it names must be bound on iSocket before
  /// sc_start (a request to an unbound target asserts).
  SystemBus(sc_core::sc_module_name name, const SystemAddressMap& map);

  StatsGroup& stats() { return stats_; }

 private:
  void bTransport(int port, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned transportDbg(int port, tlm::tlm_generic_payload& gp);

  const SystemAddressMap& map_;
  StatsGroup stats_;
  Counter& requests_;
  Counter& decodeErrors_;
};

}  // namespace hmmsim
