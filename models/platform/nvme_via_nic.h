#pragma once
// The RFC's NVMe-via-NIC workload as a platform workload (issue 13's nvme_via_nic scenario):
// storage requests arrive at a "nic" device from the network and become NVMe commands on an
// "nvme" device. What tests/unit/devices/test_nic_nvme_platform.cpp wired by hand, on a Platform.
//
// Control path (both ways): a kernel thread on the CPU (DriverThread) brings the controller up
// (admin queue in host memory, CSTS.RDY polled), programs the I/O completion vector and creates
// one I/O queue pair (qid 1, `queueDepth` entries) with admin commands.
//
// Paths (the data path of every request):
//  - P2p: the I/O queues and one PRP-list page per SQ slot are in the controller memory buffer.
//    The process maps the controller's BAR0 (its special vma: the workload's own mmap of the
//    controller's device file, or the process's device-file mapping `place` names), the NIC's driver
//    registers the mapping with the NIC's importer (ImporterDma: device MMU, device faults, the checker) and
//    hands the queue's process addresses to the NIC (importPeerQueue, Nic::setQueueImporter):
//    every SQE, PRP list, doorbell and CQE access is translated by the NIC, so an invalidation
//    of the mapping (a storm, the exporter's revoke) makes it fault and map again;
//    the completion MSI-X vector points at the NIC's mailbox. The NIC writes each SQE into the
//    CMB, rings the SQ tail doorbell, reads the CQEs when the controller's MSI reaches its
//    mailbox, and rings the CQ head doorbell: no CPU in the data path. When every request has
//    completed the control thread (which checks every 10 us) drops the mirror.
//  - Cpu: the I/O queues and PRP lists are in host memory. The NIC writes a request record into a
//    receive ring in host memory and sends an MSI (Nic::startReceiveNotify); the CPU's handler
//    reads the records, spends `rxCostPs` per request (receive processing and the storage
//    target's parsing), builds the command and submits it with CPU stores (NvmeDriver::submit:
//    `submitCostPs`, the SQE into the host SQ, the doorbell an MMIO write through the root
//    complex). The controller's completion MSI runs the completion handler: it consumes the CQEs
//    (`completionCostPs` each) and rings the CQ head doorbell, then submits requests that waited
//    for a free SQ slot. Both handlers run on the interrupt controller's driver CPU.
// A request completes when its CQE has been consumed (by the NIC, or by the CPU's handler);
// its latency runs from its arrival at the NIC.
// Data: request i's buffer is its own folio in system RAM (the NIC's receive buffer). Ops:
// Write (block i*n.. from the buffer), Read (blocks the workload stored in the media first),
// WriteRead (the first half writes, the second half reads the same blocks back).
//
// DMA addresses: every host-memory object a device reaches (the admin and I/O queues, the PRP
// lists and data buffers for the controller, the receive ring for the NIC) is allocated and
// mapped for that device through the platform's DMA API, as dma_alloc_coherent / dma_map_page
// would be: behind a translating IOMMU the devices get IOVAs, otherwise physical addresses. The
// mappings live as long as the workload (torn down in its destructor, after the run).
//
// Contract: PlatformWorkload's (workload.h).

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/devices/nic/nic.h"
#include "models/devices/nvme/nvme.h"
#include "models/platform/placement.h"
#include "models/platform/platform.h"
#include "models/platform/workload.h"
#include "sim/stats.h"
#include "sim/trace.h"

namespace hmmsim {

class DriverThread;
class File;
class ImporterDma;
class NicPlatformDevice;
class NvmeDriver;
class NvmePlatformDevice;

/// Who fills the NVMe submission queue.
enum class NvmeViaNicPath {
  P2p,  ///< the NIC, into the queue in the controller's CMB (special vma)
  Cpu,  ///< the CPU, on the NIC's receive interrupt, into a queue in host memory
};
const char* nvmeViaNicPathName(NvmeViaNicPath p);

/// What the requests do.
enum class NvmeViaNicOp {
  Write,      ///< every request writes its buffer
  Read,       ///< every request reads blocks stored beforehand
  WriteRead,  ///< the first half write, the second half read the same blocks back
};
const char* nvmeViaNicOpName(NvmeViaNicOp o);

struct NvmeViaNicParams {
  std::string nic = "nic0";     ///< the "nic" device's name
  std::string nvme = "nvme0";   ///< the "nvme" device's name
  std::string process = "app";  ///< the process that maps the controller's BAR0 (p2p)
  /// Storage requests. Unit: commands. Default 64.
  std::uint64_t commands = 64;
  /// Data per request, a multiple of the media block size. Unit: bytes. Default 16 KiB.
  std::uint64_t ioBytes = 16384;
  /// I/O submission and completion queue size (at most entries - 1 commands in flight).
  /// Unit: entries. Default 32.
  std::uint32_t queueDepth = 32;
  /// Time between request arrivals. Unit: ps. Default 2 us.
  std::uint64_t intervalPs = 2'000'000;
  NvmeViaNicPath path = NvmeViaNicPath::P2p;  ///< default P2p
  NvmeViaNicOp op = NvmeViaNicOp::WriteRead;  ///< default WriteRead
  /// Cpu path: CPU time per request in the receive handler. Unit: ps. Default 2 us.
  std::uint64_t rxCostPs = 2'000'000;
  /// Cpu path: CPU time to build and submit one command. Unit: ps. Default 1 us.
  std::uint64_t submitCostPs = 1'000'000;
  /// Cpu path: CPU time per completion in the completion handler. Unit: ps. Default 500 ns.
  std::uint64_t completionCostPs = 500'000;
  /// P2p path: `nvme_bar` in a named mapping of the process (region -> mapping): a device-file
  /// mapping of the controller from offset 0 over all of BAR 0. Default: none (the workload's own
  /// mmap of the controller's file).
  WorkloadPlacement place;
};

/// The workload's placeable region for `params` on a controller whose BAR 0 has `bar0Bytes`:
/// `nvme_bar` (BAR 0; on the p2p path a device-file mapping of the controller from offset 0,
/// where the NIC finds the doorbells and the queues in the CMB; none on the cpu path).
std::vector<PlaceableRegion> nvmeViaNicPlaceable(const NvmeViaNicParams& params, std::uint64_t bar0Bytes);

/// One request's way (absolute times, ps).
struct NvmeViaNicIo {
  std::uint64_t arrivePs = 0;    ///< arrived at the NIC
  std::uint64_t completePs = 0;  ///< its CQE consumed
  std::uint16_t status = 0;      ///< NVMe status (0: success)
  bool done = false;
};

/// What is wrong with `w` on a controller with `nvme`'s parameters: {key, message}, or {"", ""}
/// when it fits (io_size against the block size, MDTS and one PRP list; queue_depth against the
/// controller's largest queue and, on the p2p path, the CMB).
std::pair<std::string, std::string> nvmeViaNicProblem(const NvmeViaNicParams& w, const NvmeParams& nvme);

class NvmeViaNic final : public PlatformWorkload {
 public:
  /// Allocates the buffers and the control thread. Throws ConfigError (file "<workload>") when a
  /// device is missing or of the wrong type, the IOMMU translates, or a size does not fit.
  NvmeViaNic(Platform& platform, const NvmeViaNicParams& params);
  ~NvmeViaNic() override;
  NvmeViaNic(const NvmeViaNic&) = delete;
  NvmeViaNic& operator=(const NvmeViaNic&) = delete;

  /// Nothing: the control thread starts at time 0 and the requests arrive once the queue exists.
  void start() override {}
  /// Every request completed (p2p: or was abandoned by a NIC that gave up on the queue).
  bool done() const override;
  /// Records a slice per request on track "workload.io" (arrival -> completion).
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  /// Latency percentiles, IOPS, CPU time per command, non-data system-memory bytes.
  void finish() override;
  /// The controller came up, every request completed with success, and the data is byte-exact
  /// (media after writes, buffers after reads); p2p: the NIC did not give up on the queue (a
  /// failure names the access, the errno and the commands abandoned: Nic::queueError).
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats(); on the p2p path also mirror_invalidations and mirror_device_faults, what the
  /// NIC's mapping of BAR0 went through), "device.<nic>", "device.<nvme>" (and its media), and on
  /// the p2p path "device.<nic>.dma" / "device.<nic>.mirror" (the NIC's importer and its mirror).
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "nvme_bar" (p2p path): the process's special-vma mmap of the controller's BAR0 (registers,
  /// doorbells and the CMB holding the queues), which the NIC's importer mirrors.
  std::vector<WorkloadRegion> regions() const override;

  const NvmeViaNicParams& params() const { return params_; }
  const std::vector<NvmeViaNicIo>& ios() const { return ios_; }
  /// Physical address of request `i`'s data buffer.
  std::uint64_t requestBuffer(std::size_t i) const { return buffers_.at(i).mem.pa; }
  /// Its DMA address as the controller reaches it (an IOVA behind a translating IOMMU).
  std::uint64_t requestBufferDma(std::size_t i) const { return buffers_.at(i).mem.dma; }
  /// The controller was enabled and the I/O queue pair created.
  bool ready() const { return ready_; }
  /// P2p: the NIC's driver mapped the queue's pages through the NIC's importer.
  bool imported() const { return imported_; }
  /// P2p: the exporter's grants once the mirror was dropped (0: every p2p map was given back).
  std::uint64_t grantsAfterRelease() const { return grantsAfter_; }
  /// System-memory bytes of the I/O phase besides the data (after finish()).
  std::uint64_t queueSystemMemoryBytes() const { return queueBytes_; }
  /// CPU loads and stores of the control thread and handlers that failed on the bus.
  std::uint64_t busErrors() const { return busErrors_; }
  /// Stats: commands, commands_failed, commands_exact, data_bytes, cpu_interrupts, cpu_handler_ps, latency
  /// (ps), and after finish(): latency_p50/p99, iops, cpu_ps_per_command, queue_system_memory_bytes.
  StatsGroup& stats() { return stats_; }

 private:
  /// Host memory a device reaches: the CPU's address and the device's (IOVA or physical).
  struct DmaBuf {
    std::uint64_t pa = 0;
    std::uint64_t dma = 0;
  };
  struct Buffer {
    DmaBuf mem;                      ///< mapped for the controller
    std::vector<std::uint8_t> data;  ///< what a write sends / a read must bring back
  };
  /// One live mapping (unmapped in the destructor).
  struct Mapping {
    const Device* dev = nullptr;
    DmaAddr addr;
    std::uint64_t bytes = 0;
    DmaDir dir = DmaDir::Bidirectional;
  };
  class CpuAccess;

  void allocate(Platform& p);
  std::uint64_t allocPages(std::uint64_t bytes, const char* what);
  /// allocPages, then mapped for `endpoint`'s function with `dir` (dma_map_page of the block).
  DmaBuf allocDma(std::uint64_t bytes, const char* what, const std::string& endpoint, DmaDir dir);
  void control();
  /// p2p: the process maps the controller's BAR0 (its special vma) when the workload is built,
  /// unless `place` puts nvme_bar in a mapping of the process's (`placed`).
  void mapBar0(const ProcessMapping* placed);
  /// p2p: the NIC's importer over the process's BAR0 mapping (built with the workload, so a
  /// script's `misbehave` finds it from time 0).
  void makeImporter();
  /// P2p: pages of the queue in the CMB (SQ, CQ, one PRP-list page per SQ slot).
  std::uint64_t queueCmbPages() const;
  bool setUpP2p(std::uint64_t nvmeBar);
  void startCpu();
  void onRx();
  void onCompletion();
  void submitCpu(std::uint32_t index);
  void completed(std::uint32_t index, std::uint16_t status, std::uint64_t nowPs);
  void noteDramStart();

  Platform& platform_;
  NvmeViaNicParams params_;
  NicPlatformDevice* nic_ = nullptr;
  NvmePlatformDevice* nvme_ = nullptr;
  std::string nicEndpoint_;
  std::uint32_t blocksPerIo_ = 0;
  std::vector<NicStorageRequest> requests_;
  std::vector<Buffer> buffers_;
  std::vector<NvmeViaNicIo> ios_;
  std::string nvmeEndpoint_;
  DmaBuf adminSq_, adminCq_, hostSq_, hostCq_, hostPrp_, rxRing_;
  std::vector<Mapping> mappings_;
  std::unique_ptr<CpuAccess> cpu_;
  std::unique_ptr<NvmeDriver> driver_;
  std::unique_ptr<DriverThread> thread_;
  std::shared_ptr<File> file_;
  Va bar0_;  // p2p: the process's mmap of BAR0 (0: not mapped)
  std::unique_ptr<ImporterDma> importer_;
  std::optional<NicQueueWriterParams> queueWriter_;
  MsiMessage completionMsi_, rxMsi_;
  std::uint32_t rxNext_ = 0, inFlight_ = 0;
  std::deque<std::uint32_t> backlog_;
  bool ready_ = false, imported_ = false;
  std::uint64_t grantsAfter_ = 0, busErrors_ = 0, completedCount_ = 0, dramStart_ = 0, queueBytes_ = 0;
  std::vector<std::uint64_t> mismatched_;  // requests whose data differs (after finish())
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
  Counter& commands_;
  Counter& failed_;
  Counter& exact_;
  Counter& dataBytes_;
  Counter& interrupts_;
  Counter& handlerPs_;
  Distribution& latency_;
};

}  // namespace hmmsim
