#pragma once
// NicDriver: the driver half of the NIC's transmit path (nic.h), as an e1000-style driver runs it
// on a CPU (DriverHost): it programs the TX ring registers, writes descriptors for buffers given
// by DMA address, rings the TDT doorbell, and reclaims descriptors whose DD bit the NIC wrote back.
// Pure C++; every register and ring access pays the platform's time through DriverHost.
// Leaves out: the network stack above ndo_start_xmit, skb fragments (one descriptor per buffer),
// TX interrupts (the caller polls reclaim()), the receive path.

#include <cstdint>
#include <optional>

#include "models/devices/common/driver_host.h"
#include "models/devices/nic/nic.h"
#include "sim/strong_types.h"

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

class ImporterDma;

/// Where an NVMe queue pair sits inside a process's special-vma mapping of the controller's BAR0
/// (nvme_export.h): offsets from the mapping's first byte, which is BAR0 byte 0.
struct NicPeerQueueLayout {
  /// Process address of BAR0 byte 0 (the special vma). Unit: address. Default 0.
  Va bar0;
  /// BAR0's address on the peer's bus, as the controller decodes addresses in its CMB (what a
  /// command's PRP2 carries for a PRP list in the CMB; the exporting driver reports it). Unit:
  /// address. Default 0 (set it).
  std::uint64_t peerBar0Bus = 0;
  /// The peer's queue pair id. Default 1.
  std::uint16_t qid = 1;
  /// BAR0 offsets of the SQ, the CQ and the PRP-list pages (in the CMB). Unit: bytes. Default 0.
  std::uint64_t sqOffset = 0, cqOffset = 0, prpListOffset = 0;
  /// Queue size. Unit: entries. Default 0 (set it).
  std::uint32_t entries = 0;
  /// The namespace's block size. Unit: bytes. Default 4096.
  std::uint32_t blockBytes = 4096;
};

/// The NIC driver's importer step for RFC workload 1: register the peer's doorbell page, SQ, CQ
/// and PRP-list pages with the NIC's importer (`dma`, whose window is the process's special-vma
/// mapping of BAR0), map them ahead (hmmRangeFault -> the special vma's p2pMap -> the exporter's
/// bus addresses, as an ODP NIC's prefetch advice) and return the queue writer's parameters as
/// process VAs in that window (for Nic::setQueueImporter(&dma)); nullopt when a map fails (the
/// exporter refused or the range is not a special vma). The NIC translates every access through
/// the importer from then on: after an invalidation of the range it takes a device fault and maps
/// again (a revoke is obeyed), and the checker sees every access.
std::optional<NicQueueWriterParams> importPeerQueue(ImporterDma& dma, const NicPeerQueueLayout& l);

}  // namespace hmmsim
