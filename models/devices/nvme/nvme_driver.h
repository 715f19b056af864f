#pragma once
// NvmeDriver: the driver half of the NVMe controller (nvme.h), as drivers/nvme/host/pci.c
// drives it, run by a CPU context. Pure C++: every access goes through DriverHost
// (models/devices/common/driver_host.h), which a CPU thread implements with loads and stores through the
// system bus (registers and the CMB are ioremap'd BAR addresses, queues in RAM are DMA-coherent memory), so
// each one pays the platform's time. Every queue has two addresses: the CPU's (where the driver's
// loads and stores go: a physical address) and the controller's (what ASQ/ACQ and the create-queue
// commands carry: dma_alloc_coherent's handle, an IOVA behind a translating IOMMU); the caller
// allocates and maps them, and gives the DMA address the physical one when there is no IOMMU.
//
// What it does: enable (AQA/ASQ/ACQ, CC.EN, poll CSTS.RDY), program MSI-X vectors, create I/O
// queue pairs with admin commands (queues in host memory or in the CMB: the caller picks the
// addresses), submit (write the SQE at the SQ tail, ring the tail doorbell: nvme_submit_cmd) and
// complete (wait for the vector's interrupt, consume CQEs while their phase tag matches, ring the
// CQ head doorbell: nvme_process_cq). Charges parameterised CPU costs for its software work.
// Leaves out: Identify, namespace scan, the blk-mq layer, timeouts and aborts, shutdown, polled
// queues, SGLs, the doorbell buffer config (shadow doorbells).

#include <cstdint>
#include <optional>
#include <vector>

#include "models/devices/common/driver_host.h"
#include "models/devices/nvme/nvme_spec.h"

namespace hmmsim {

struct NvmeDriverParams {
  /// BAR0's physical address (= its bus address). Unit: address. Default 0 (set by the caller).
  std::uint64_t barBase = 0;
  /// Admin submission queue in host memory, 4 KiB aligned. Unit: address. Default 0 (set by the caller).
  std::uint64_t adminSqPa = 0;
  /// Admin completion queue in host memory, 4 KiB aligned. Unit: address. Default 0 (set by the caller).
  std::uint64_t adminCqPa = 0;
  /// The admin queues' DMA addresses as the controller reaches them (their dma_alloc_coherent
  /// handles). Unit: address. Default none: the physical addresses (no translating IOMMU).
  std::optional<std::uint64_t> adminSqDma, adminCqDma;
  /// Admin queue size. Unit: entries. Default 32.
  std::uint32_t adminEntries = 32;
  /// CPU time to build and submit one command (nvme_queue_rq and the block layer above it).
  /// Unit: ps. Default 1 us.
  std::uint64_t submitCostPs = 1'000'000;
  /// CPU time per completion in the interrupt handler (nvme_handle_cqe and request completion).
  /// Unit: ps. Default 500 ns.
  std::uint64_t completionCostPs = 500'000;
  /// Spacing of CSTS.RDY and admin-CQ polls. Unit: ps. Default 1 us.
  std::uint64_t pollIntervalPs = 1'000'000;
};

/// The host's view of one queue pair: where the queues are, the SQ tail it wrote, the CQ head it
/// consumed and the phase it expects. Shared by every queue writer (the driver, a NIC).
struct NvmeQueueState {
  std::uint16_t qid = 0;
  std::uint64_t sqBase = 0;   ///< SQ entry 0 as the queue's writer reaches it (CPU: physical; NIC: DMA)
  std::uint64_t cqBase = 0;   ///< CQ entry 0 as the queue's writer reaches it
  std::uint32_t entries = 0;  ///< entries of each queue
  std::uint32_t sqTail = 0;
  std::uint32_t cqHead = 0;
  bool phase = true;         ///< phase tag of the next new CQE
  std::uint16_t vector = 0;  ///< MSI-X vector of the CQ

  std::uint64_t sqSlot() const { return sqBase + std::uint64_t(sqTail) * nvme::kSqeBytes; }
  std::uint64_t cqSlot() const { return cqBase + std::uint64_t(cqHead) * nvme::kCqeBytes; }
  void advanceSq() { sqTail = (sqTail + 1) % entries; }
  void advanceCq() {
    cqHead = (cqHead + 1) % entries;
    if (cqHead == 0) phase = !phase;
  }
};

/// An I/O queue pair's addresses: the CPU's (the driver's loads and stores) and the controller's.
struct NvmeQueueAddrs {
  std::uint64_t sqCpu = 0;  ///< SQ entry 0 for the CPU (physical; a CMB queue: its BAR address)
  std::uint64_t cqCpu = 0;  ///< CQ entry 0 for the CPU
  std::uint64_t sqDma = 0;  ///< SQ entry 0 as the controller reaches it (IOVA, bus or physical address)
  std::uint64_t cqDma = 0;  ///< CQ entry 0 as the controller reaches it
};

class NvmeDriver {
 public:
  NvmeDriver(DriverHost& host, const NvmeDriverParams& params);

  /// Admin queue registers, CC.EN = 1, then poll CSTS.RDY. Returns true once ready.
  bool enable(unsigned maxPolls = 1000);
  /// Program MSI-X table entry `vector` (address, data, unmasked).
  void setMsix(std::uint16_t vector, std::uint64_t addr, std::uint32_t data);
  /// Create I/O CQ then SQ `qid` of `entries` at the given addresses (host memory or CMB).
  /// Returns the first non-success status (nvme::Status), 0 on success.
  std::uint16_t createIoQueuePair(std::uint16_t qid, std::uint64_t sqBase, std::uint64_t cqBase,
                                  std::uint32_t entries, std::uint16_t vector, bool interrupts);
  /// The same with the queues' CPU and DMA addresses apart (a translating IOMMU).
  std::uint16_t createIoQueuePair(std::uint16_t qid, const NvmeQueueAddrs& addrs, std::uint32_t entries,
                                  std::uint16_t vector, bool interrupts);
  /// Write `sqe` at the queue's SQ tail and ring its doorbell.
  void submit(std::uint16_t qid, const nvme::Sqe& sqe);
  /// The next CQE if the controller posted one (phase matches); consumes it, no doorbell.
  std::optional<nvme::Cqe> reap(std::uint16_t qid);
  /// Wait for the queue's interrupt until a CQE is there; consume it, ring the CQ head doorbell.
  nvme::Cqe waitCompletion(std::uint16_t qid);
  /// Ring the CQ head doorbell with the head consumed so far.
  void ringCqHead(std::uint16_t qid);

  NvmeQueueState& queue(std::uint16_t qid);
  std::uint64_t submissions() const { return submissions_; }

 private:
  /// Submit on the admin queue and poll the admin CQ for the answer.
  nvme::Cqe adminCommand(nvme::Sqe sqe);
  void store32(std::uint64_t off, std::uint32_t v);
  void store64(std::uint64_t off, std::uint64_t v);

  DriverHost& host_;
  NvmeDriverParams params_;
  std::vector<NvmeQueueState> queues_;  // by qid; entries == 0: not created
  std::uint16_t nextCid_ = 0;
  std::uint64_t submissions_ = 0;
};

}  // namespace hmmsim
