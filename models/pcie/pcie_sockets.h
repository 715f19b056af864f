#pragma once
// TLM-2.0 sockets for the fabric's per-TLP hot path: standard tlm_target_socket /
// tlm_initiator_socket (any TLM-2.0 socket binds to them) whose forward interface calls the
// owning module's b_transport directly.
//
// Why not tlm_utils::simple_* / multi_passthrough_*: those route every call through a callback
// object (a virtual call, a null check, then a call through a member-function pointer), which
// cost as much as a link's whole timing work per TLP hop (bench_fabric). Here the socket is its
// own forward interface: one virtual call, and the owner's function is a template argument, so
// it inlines. A target socket may be bound by any number of initiators (a switch's or root
// complex's ports: the ingress port is not needed); an initiator socket with N = 0 binds any
// number of targets, addressed as out[i] in binding order.
// PcieTlpTargetSocket: the same for a fabric element whose transport takes the transaction's
// PcieTlpExtension. A TLM initiator's b_transport finds the extension (pcieExt) first; a fabric
// port bound to it (PcieEgressPorts, pcie_link_module.h) asks it once, at the end of
// elaboration, for its owner and a plain function pointer (PcieDirectIf) and then calls that with
// the extension it already holds: no virtual call through the socket and no extension lookup
// per hop (tlm_generic_payload::get_extension is out of line), the same calls in the same order.
// Loosely timed only: nb_transport_fw is not supported (a simulator bug if called), no DMI, no
// debug transport.

#include <systemc>
#include <tlm>

#include "models/pcie/pcie_transaction.h"
#include "sim/assert.h"

namespace hmmsim {

/// The TLM socket type every PcieTargetSocket is.
using PcieTargetSocketBase =
    tlm::tlm_target_socket<32, tlm::tlm_base_protocol_types, 0, sc_core::SC_ZERO_OR_MORE_BOUND>;

template <class Owner, void (Owner::*Fn)(tlm::tlm_generic_payload&, sc_core::sc_time&)>
class PcieTargetSocket : public PcieTargetSocketBase, private tlm::tlm_fw_transport_if<> {
 public:
  PcieTargetSocket(const char* name, Owner* owner) : PcieTargetSocketBase(name), owner_(owner) {
    this->bind(static_cast<tlm::tlm_fw_transport_if<>&>(*this));
  }

 private:
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) override {
    (owner_->*Fn)(gp, delay);
  }
  tlm::tlm_sync_enum nb_transport_fw(tlm::tlm_generic_payload&, tlm::tlm_phase&, sc_core::sc_time&) override {
    HMMSIM_ASSERT(false, this->name() << ": the PCIe fabric is loosely timed (b_transport only)");
    return tlm::TLM_COMPLETED;
  }
  bool get_direct_mem_ptr(tlm::tlm_generic_payload&, tlm::tlm_dmi&) override { return false; }
  unsigned int transport_dbg(tlm::tlm_generic_payload&) override { return 0; }

  Owner* owner_;
};

/// A fabric element's transport with the extension already found: `fn(owner, gp, ext, delay)`.
struct PcieDirectTarget {
  void* owner = nullptr;
  void (*fn)(void* owner, tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
             sc_core::sc_time& delay) = nullptr;
};

/// Implemented by PcieTlpTargetSocket: where a fabric port bound to it may call directly.
class PcieDirectIf {
 public:
  virtual PcieDirectTarget direct() = 0;

 protected:
  ~PcieDirectIf() = default;
};

/// PcieTargetSocket for an owner transport `Fn(gp, ext, delay)` (see the header comment).
template <class Owner, void (Owner::*Fn)(tlm::tlm_generic_payload&, PcieTlpExtension&, sc_core::sc_time&)>
class PcieTlpTargetSocket : public PcieTargetSocketBase,
                            public tlm::tlm_fw_transport_if<>,
                            public PcieDirectIf {
 public:
  PcieTlpTargetSocket(const char* name, Owner* owner) : PcieTargetSocketBase(name), owner_(owner) {
    this->bind(static_cast<tlm::tlm_fw_transport_if<>&>(*this));
  }
  PcieDirectTarget direct() override { return PcieDirectTarget{owner_, &call}; }

 private:
  static void call(void* owner, tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                   sc_core::sc_time& delay) {
    (static_cast<Owner*>(owner)->*Fn)(gp, ext, delay);
  }
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) override {
    (owner_->*Fn)(gp, pcieExt(gp), delay);
  }
  tlm::tlm_sync_enum nb_transport_fw(tlm::tlm_generic_payload&, tlm::tlm_phase&, sc_core::sc_time&) override {
    HMMSIM_ASSERT(false, this->name() << ": the PCIe fabric is loosely timed (b_transport only)");
    return tlm::TLM_COMPLETED;
  }
  bool get_direct_mem_ptr(tlm::tlm_generic_payload&, tlm::tlm_dmi&) override { return false; }
  unsigned int transport_dbg(tlm::tlm_generic_payload&) override { return 0; }

  Owner* owner_;
};

/// An initiator socket bound to `N` targets (0: any number, out[i] in binding order); `Pol`
/// SC_ZERO_OR_MORE_BOUND for an optional one.
template <int N = 1, sc_core::sc_port_policy Pol = sc_core::SC_ONE_OR_MORE_BOUND>
class PcieInitiatorSocket : public tlm::tlm_initiator_socket<32, tlm::tlm_base_protocol_types, N, Pol>,
                            private tlm::tlm_bw_transport_if<> {
 public:
  explicit PcieInitiatorSocket(const char* name)
      : tlm::tlm_initiator_socket<32, tlm::tlm_base_protocol_types, N, Pol>(name) {
    this->bind(static_cast<tlm::tlm_bw_transport_if<>&>(*this));
  }

 private:
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload&, tlm::tlm_phase&, sc_core::sc_time&) override {
    HMMSIM_ASSERT(false, this->name() << ": the PCIe fabric is loosely timed (b_transport only)");
    return tlm::TLM_COMPLETED;
  }
  void invalidate_direct_mem_ptr(sc_dt::uint64, sc_dt::uint64) override {}
};

}  // namespace hmmsim
