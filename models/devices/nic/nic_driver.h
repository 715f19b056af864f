#pragma once
// NicDriver: the driver half of the NIC's transmit path (nic.h), as an e1000-style driver runs it
// on a CPU (DriverHost): it programs the TX ring registers, writes descriptors for buffers given
// by DMA address, rings the TDT doorbell, and reclaims descriptors whose DD bit the NIC wrote back.
// Pure C++; every register and ring access pays the platform's time through DriverHost.
// Leaves out: the network stack above ndo_start_xmit, skb fragments (one descriptor per buffer),
// TX interrupts (the caller polls reclaim()), the receive path.

#include <cstdint>

#include "models/devices/common/driver_host.h"

namespace hmmsim {

struct NicDriverParams {
  /// BAR0's physical (= bus) address. Unit: address. Default 0 (set by the caller).
  std::uint64_t barBase = 0;
  /// TX descriptor ring in host memory, 128-byte aligned. Unit: address. Default 0 (set by the caller).
  std::uint64_t txRingPa = 0;
  /// TX ring size, a multiple of 8. Unit: descriptors. Default 256.
  std::uint32_t txEntries = 256;
  /// CPU time to queue one buffer (ndo_start_xmit: descriptor setup). Unit: ps. Default 200 ns.
  std::uint64_t xmitCostPs = 200'000;
};

class NicDriver {
 public:
  NicDriver(DriverHost& host, const NicDriverParams& params);

  /// Program TDBAL/TDBAH/TDLEN and zero TDH/TDT.
  void setupTx();
  /// Write a descriptor (EOP|RS) for `len` (1..65535) bytes at DMA address `addr`; no doorbell.
  /// False when the ring is full (reclaim first).
  bool queue(std::uint64_t addr, std::uint16_t len);
  /// Ring the TDT doorbell with every descriptor queued so far.
  void kick();
  /// Read back DD of the oldest descriptors in flight; returns how many were freed.
  std::uint32_t reclaim();
  std::uint32_t inFlight() const { return (tail_ + params_.txEntries - clean_) % params_.txEntries; }

 private:
  DriverHost& host_;
  NicDriverParams params_;
  std::uint32_t tail_ = 0;   // next descriptor the driver writes
  std::uint32_t clean_ = 0;  // oldest descriptor not reclaimed
};

}  // namespace hmmsim
