#pragma once
// Nic: the hardware half of a network interface on the PCIe fabric (an importer: it reaches
// host and peer memory by DMA), as a SystemC module with three engines that run side by side on
// its one DMA engine.
//
//  - Transmit: a descriptor ring in host memory in the legacy e1000 layout (16 bytes: buffer
//    address, length, CSO, CMD {EOP, IFCS, RS}, STA {DD}, CSS, special) with the e1000 registers
//    TDBAL/TDBAH/TDLEN/TDH/TDT in BAR0. A TDT write (doorbell) makes descriptors visible; the NIC
//    fetches them in batches, DMA-reads each buffer in packets of `packetBytes` and sends every
//    packet to the wire at line rate: it occupies the wire (payload + `packetOverheadBytes`) * 8 /
//    rate. The DMA runs ahead of the wire by at most `txBufferBytes` (the on-NIC FIFO). With RS
//    set, the NIC writes DD back into the descriptor once the buffer left the FIFO. The wire is
//    recorded (every packet's time and bytes) so tests compare bytes.
//  - Monitoring: periodic small DMA reads of an address (host memory or a peer's BAR, e.g. GPU
//    memory), each sample recorded with its bytes and times (RFC workload 2).
//  - Queue writer: the NIC drives another device's command queue with no CPU in the data path
//    (RFC workload 1). Storage requests (as they would arrive from the network) become NVMe SQEs
//    the NIC writes into the peer's submission queue (the NVMe CMB, by its bus address), then it
//    rings the peer's SQ tail doorbell (a posted write to the peer's BAR0, ordered behind the SQE).
//    With setQueueImporter() the queue, its PRP-list pages and both doorbells are process virtual
//    addresses inside the importer's window (the process's special-vma mmap of the peer's BAR0,
//    importPeerQueue in nic_driver.h): every SQE, PRP list, doorbell and CQE access goes through
//    the importer data path, so an invalidation of the mapping makes the NIC take a device fault
//    and map again before its next access, and the checker sees each one. An access whose
//    fault cannot map is retried, as a driver retries hmm_range_fault on -EBUSY: at once when
//    invalidations kept racing the fault, after `queueRetryBackoffPs` when the exporter refused
//    the p2p map for now (no free BAR window, a reset in progress), at most `queueRetryLimit`
//    times. Nothing reaches the peer before its access mapped, so a retried access is issued
//    exactly once. A genuine failure (-EFAULT: the mapping is gone; -EPERM; the exporter gone or
//    refusing this importer) or a spent budget puts the queue writer in error, as an RDMA QP
//    goes to its error state: it stops using the queue, the command it was submitting is not
//    submitted (the SQ tail is not advanced, its doorbell not rung) and every command not yet
//    completed is abandoned (NicIoRecord::abandoned, stat commands_abandoned, queueError()),
//    none silently lost.
//    The peer's completion MSI is programmed to the NIC's mailbox register (BAR0 0x8000); on it
//    the NIC reads CQEs from the peer's completion queue while their phase tag matches, records
//    each I/O's latency and rings the CQ head doorbell. Commands needing a PRP list get one
//    written into `prpListBase` (one 4 KiB page per SQ slot).
//  - Receive notify: the CPU-driven alternative to the queue writer. Each storage request, as it
//    arrives from the network, is DMA-written as a 32-byte record (nic::RxRecord) into the next
//    slot of a receive ring in host memory, followed by an MSI (a posted write ordered behind the
//    record): the host's driver takes the interrupt and does the rest.
// Addresses are DMA addresses (bus addresses or IOVAs), except that with setTxImporter() the TX
// buffers' addresses are process virtual addresses (the NIC's driver registered the process range,
// as an on-demand-paging RDMA NIC does): each packet is read through the shared importer data path
// (models/devices/common/importer_dma.h: device MMU, device faults, IOMMU, p2p to a peer's BAR,
// in-flight DMA that invalidations wait for, the checker), and a device fault there maps the rest
// of the descriptor's buffer (as an ODP NIC faults a work request's whole data segment) and the
// fault-around block (`faultAroundPages`, applied by whoever builds the importer), not one packet.
// Descriptor fetch and write-back stay on the ring's DMA addresses (kernel memory).
// Timing: loosely timed, each engine an SC_THREAD with its own quantum keeper, synchronised at
// every decision. Doorbells take effect when their write reaches the register.
// Leaves out: the receive path beyond storage-request records (no packet buffers, no RX
// descriptors the driver posts: a record's slot is its request's index modulo the ring size,
// and the NIC does not wait for the host to consume it), checksums and TSO headers (payload bytes are sent as
// they are; the per-packet overhead stands for preamble, MAC header, FCS and inter-packet gap), flow control
// and PFC, multiple TX queues, descriptor prefetch thresholds, interrupt moderation.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/hmm.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/msi.h"
#include "models/devices/nvme/nvme_driver.h"
#include "models/devices/nvme/nvme_spec.h"
#include "models/pcie/memory_target.h"
#include "sim/errno.h"
#include "sim/stats.h"

namespace hmmsim {

class ImporterDma;
class PcieDmaEngine;

namespace nic {
constexpr std::uint64_t kRegTdbal = 0x3800;  ///< TX descriptor base, low 32 bits
constexpr std::uint64_t kRegTdbah = 0x3804;  ///< TX descriptor base, high 32 bits
constexpr std::uint64_t kRegTdlen = 0x3808;  ///< TX ring length in bytes (multiple of 128)
constexpr std::uint64_t kRegTdh = 0x3810;    ///< TX head (the NIC's)
constexpr std::uint64_t kRegTdt = 0x3818;    ///< TX tail (the driver's doorbell)
constexpr std::uint64_t kMailbox = 0x8000;   ///< peer MSI mailbox: a write wakes the queue writer
constexpr std::uint64_t kRegisterBytes = 0x10000;
constexpr std::uint32_t kTxDescBytes = 16;
constexpr std::uint8_t kCmdEop = 0x01;  ///< end of packet (buffer ends a frame)
constexpr std::uint8_t kCmdRs = 0x08;   ///< report status: write DD back
constexpr std::uint8_t kStaDd = 0x01;   ///< descriptor done

constexpr std::uint32_t kRxRecordBytes = 32;

/// A storage request as the receive-notify engine hands it to the host (little endian: slba at
/// byte 0, blocks at 8, data address at 16, request index at 24, flags at 28: bit 0 write, bit 1
/// valid).
struct RxRecord {
  std::uint64_t slba = 0;
  std::uint32_t blocks = 0;
  std::uint64_t dataAddr = 0;
  std::uint32_t index = 0;  ///< the request's position in the list the engine was given
  bool write = false;
  bool valid = false;
  void encode(std::uint8_t* b) const;
  static RxRecord decode(const std::uint8_t* b);
};

/// One legacy transmit descriptor.
struct TxDesc {
  std::uint64_t addr = 0;  ///< DMA address of the buffer
  std::uint16_t length = 0;
  std::uint8_t cmd = kCmdEop | kCmdRs;
  std::uint8_t status = 0;
  void encode(std::uint8_t* b) const;
  static TxDesc decode(const std::uint8_t* b);
};
}  // namespace nic

struct NicParams {
  /// Bus address of BAR0 (registers). Unit: address. Default 0 (the platform sets it).
  std::uint64_t barBase = 0;
  /// BAR0 size. Unit: bytes. Default 64 KiB (the register space).
  std::uint64_t barBytes = 64ull << 10;
  /// Line rate of the port. Unit: Gb/s. Default 100 (100GbE; 200 and 400 are the other speeds).
  double lineRateGbps = 100.0;
  /// Payload bytes per packet: buffers are cut into packets of this size. Unit: bytes. Default 4096.
  std::uint32_t packetBytes = 4096;
  /// Wire bytes per packet besides the payload: preamble + SFD 8, MAC header 14, FCS 4,
  /// inter-packet gap 12. Unit: bytes. Default 38.
  std::uint32_t packetOverheadBytes = 38;
  /// On-NIC transmit FIFO: DMA reads may run ahead of the wire by this much. Unit: bytes. Default 256 KiB.
  std::uint64_t txBufferBytes = 256ull << 10;
  /// Descriptors fetched per DMA read at most. Unit: descriptors. Default 32.
  std::uint32_t descriptorBatch = 32;
  /// Keep every transmitted byte (false: count and time packets only). Default true.
  bool recordWire = true;
  /// Device faults of the importers the platform builds for the NIC (TX, monitoring, small_bar's
  /// memory regions) also map the unmapped pages of the aligned block of this many pages around
  /// the faulting page (ImporterDmaParams::faultAroundPages). Unit: pages. Default 16 (64 KiB,
  /// the kernel's fault_around_bytes). A power of 2.
  std::uint64_t faultAroundPages = 16;
  /// Queue writer: retries of one queue access whose device fault could not map (-EBUSY, or the
  /// exporter refusing the p2p map for now) before the NIC gives up. Unit: retries. Default 100.
  std::uint32_t queueRetryLimit = 100;
  /// Queue writer: wait before retrying an access the exporter refused for now (-ENOSPC: no
  /// free BAR window; -EIO: a reset in progress; -EBUSY: racing). Unit: ps. Default 10 us.
  std::uint64_t queueRetryBackoffPs = 10'000'000;
};

/// One packet on the wire.
struct NicPacket {
  std::uint64_t startPs = 0;  ///< first bit on the wire
  std::uint64_t endPs = 0;    ///< last bit (and gap) done
  std::uint64_t bytes = 0;    ///< payload bytes
};

/// Monitoring mode: read `bytes` at `addr` every `periodPs`, `samples` times, from `startPs`.
struct NicMonitorParams {
  /// DMA address read (host memory or a peer's BAR). Unit: address. Default 0.
  std::uint64_t addr = 0;
  /// Bytes per sample. Unit: bytes. Default 64.
  std::uint64_t bytes = 64;
  /// Time between sample starts. Unit: ps. Default 10 us.
  std::uint64_t periodPs = 10'000'000;
  /// Samples taken. Unit: samples. Default 16.
  std::uint32_t samples = 16;
  /// Absolute time of the first sample. Unit: ps. Default 0.
  std::uint64_t startPs = 0;
};

struct NicMonitorSample {
  std::uint64_t issuePs = 0;
  std::uint64_t donePs = 0;
  std::vector<std::uint8_t> data;
  bool ok = false;
};

/// Queue-writer mode: where the peer NVMe's queue pair and doorbells are (bus addresses).
struct NicQueueWriterParams {
  /// The peer's queue pair: qid, SQ/CQ bases (in its CMB or anywhere the NIC can reach) and size.
  NvmeQueueState queue;
  /// Bus address of the peer's SQ tail doorbell (BAR0 + nvme::sqTailDoorbell(qid)).
  std::uint64_t sqDoorbell = 0;
  /// Bus address of the peer's CQ head doorbell.
  std::uint64_t cqDoorbell = 0;
  /// Bus address of one 4 KiB PRP-list page per SQ slot (needed by commands over two pages;
  /// 0 = none, such commands are refused). Unit: address. Default 0.
  std::uint64_t prpListBase = 0;
  /// The address the peer decodes for the first PRP-list page (what PRP2 carries: the CMB's
  /// address on the peer's bus), when it is not prpListBase (which is then where the NIC writes
  /// the lists: a process VA with Nic::setQueueImporter). Unit: address. Default 0 (= prpListBase).
  std::uint64_t prpListPeerBase = 0;
  /// Logical block size of the peer's namespace. Unit: bytes. Default 4096.
  std::uint32_t blockBytes = 4096;
};

/// One storage request as it would arrive from the network.
struct NicStorageRequest {
  std::uint64_t atPs = 0;      ///< arrival time (absolute)
  bool write = false;          ///< write (data from dataAddr to the media) or read (media to dataAddr)
  std::uint64_t slba = 0;      ///< first block
  std::uint32_t blocks = 1;    ///< blocks
  std::uint64_t dataAddr = 0;  ///< DMA address of the data buffer (4 KiB aligned beyond its first page)
};

/// Receive-notify mode: where the request records go and which MSI follows each.
struct NicRxNotifyParams {
  /// DMA address of the receive ring (host memory). Unit: address. Default 0 (set it).
  std::uint64_t ringAddr = 0;
  /// Ring size: request i goes to slot i mod entries. Unit: records. Default 256.
  std::uint32_t entries = 256;
  /// The MSI written after each record (the host's receive interrupt).
  MsiMessage msi;
};

struct NicIoRecord {
  std::uint16_t cid = 0;
  std::uint64_t arrivePs = 0;    ///< request arrival
  std::uint64_t doorbellPs = 0;  ///< doorbell write reached the peer
  std::uint64_t completePs = 0;  ///< CQE read by the NIC
  std::uint16_t status = 0;
  /// The NIC read the command's CQE and then rang the CQ head doorbell for it (or gave up on the
  /// queue trying): a driver may tear the queue down once every command is done or abandoned.
  bool done = false;
  /// The queue writer gave up (Nic::queueError) before this command completed: never submitted
  /// (doorbellPs 0), or submitted and its completion never read.
  bool abandoned = false;
};

/// Why the queue writer gave up (Nic::queueError).
struct NicQueueError {
  bool failed = false;     ///< the queue writer is in error
  std::uint64_t atPs = 0;  ///< when it gave up
  std::string access;      ///< "SQE write", "PRP list write", "SQ doorbell", "CQE read", "CQ doorbell"
  HmmStatus mapStatus = HmmStatus::Ok;  ///< what the last fault's map returned
  Errno p2pError = Errno::Ok;           ///< the exporter's refusal of the p2p map, if it refused
  std::uint32_t retries = 0;            ///< retries of that access before giving up
  std::uint32_t abandoned = 0;          ///< commands abandoned
  /// One line: "<access> could not be mapped: <errno> (...) after N retries".
  std::string describe() const;
};

class Nic : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Nic);
  /// `dma`: the endpoint's DMA engine; `bar`: its BAR0 (registers are registered on it).
  Nic(sc_core::sc_module_name name, const NicParams& params, PcieDmaEngine& dma, PcieMemoryTarget& bar);

  /// "" if `p` is usable, else what is wrong (names the field).
  static std::string validate(const NicParams& p);

  /// TX buffers are process VAs in `dma`'s window from now on (nullptr: DMA addresses again).
  /// `dma` must issue on this NIC's engine and outlive its use.
  void setTxImporter(ImporterDma* dma) { txImporter_ = dma; }
  /// Monitoring reads a process VA in `dma`'s window from now on (nullptr: a DMA address again).
  void setMonitorImporter(ImporterDma* dma) { monitorImporter_ = dma; }
  /// The queue writer's addresses (NicQueueWriterParams: queue, doorbells, PRP-list pages) are
  /// process VAs in `dma`'s window from now on (nullptr: DMA addresses again). The submit and
  /// completion engines take turns on it. `dma` must issue on this NIC's engine and outlive its use.
  void setQueueImporter(ImporterDma* dma) { queueImporter_ = dma; }
  /// The importer driving this NIC's accesses (queue writer, else TX, else monitoring; null:
  /// none): what a scenario script's `misbehave` switches.
  ImporterDma* importer() const;
  /// Start monitoring (call before sc_start or from a thread).
  void startMonitor(const NicMonitorParams& p);
  /// Start the queue writer on `requests` (sorted by atPs).
  void startQueueWriter(const NicQueueWriterParams& p, std::vector<NicStorageRequest> requests);

  /// Start receive notify on `requests` (sorted by atPs).
  void startReceiveNotify(const NicRxNotifyParams& p, std::vector<NicStorageRequest> requests);

  const std::vector<NicPacket>& packets() const { return packets_; }
  /// Every payload byte sent, in wire order (recordWire).
  const std::vector<std::uint8_t>& wire() const { return wire_; }
  const std::vector<NicMonitorSample>& monitorSamples() const { return samples_; }
  const std::vector<NicIoRecord>& ioRecords() const { return ios_; }
  /// Receive notify: per request, when its MSI write reached the host (0: not yet).
  const std::vector<std::uint64_t>& rxNotified() const { return rxNotified_; }
  /// Notified when a descriptor with RS is written back.
  sc_core::sc_event& txDoneEvent() { return txDone_; }
  std::uint32_t txHead() const { return tdh_; }
  const NicParams& params() const { return params_; }
  /// The queue writer's error state (failed false: none).
  const NicQueueError& queueError() const { return queueError_; }
  /// Stats: "tx_packets", "tx_bytes", "tx_descriptors", "dma_errors", "monitor_samples",
  /// "sqes_written", "doorbells_rung", "cqes_seen", "mailbox_writes", "rx_records", "rx_msis",
  /// "queue_faults" (queue-writer accesses whose device fault could not map, each retried or
  /// given up), "queue_retries", "queue_gave_up" (accesses given up: the queue writer is in
  /// error), "commands_abandoned".
  StatsGroup& stats() { return stats_; }

 private:
  void onRegister(const MmioAccess& a);
  void txThread();
  void monitorThread();
  void submitThread();
  void completeThread();
  void rxThread();
  /// Send `len` bytes at DMA address `addr` as packets; returns when the last one left the FIFO.
  std::uint64_t transmitBuffer(std::uint64_t addr, std::uint64_t len);
  /// Write one request's SQE (and PRP list) into the peer's SQ and ring its doorbell; true with
  /// `doorbellPs` when the doorbell write reaches the peer, false when the queue writer gave up
  /// (nothing of the command reached the peer's view of the queue: the tail is unchanged).
  bool submitOne(const NicStorageRequest& r, std::uint16_t cid, tlm_utils::tlm_quantumkeeper& qk,
                 std::uint64_t& doorbellPs);
  /// One queue-writer access to the peer.
  struct PeerAccess {
    DmaIssue issue;       ///< the access's completion (status: the fabric's, or CA when not issued)
    bool gaveUp = false;  ///< its mapping failed for good: nothing was issued, the queue is in error
  };
  /// A queue-writer access to the peer at `addr` (a VA through the queue importer, else a DMA
  /// address on the engine): posted write / read that waits for its data, retried while its
  /// device fault cannot map for now (see the header comment). Errors are counted. `what` names
  /// the access in queueError().
  PeerAccess peerWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* data,
                       tlm_utils::tlm_quantumkeeper& qk, const char* what);
  PeerAccess peerRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* data,
                      tlm_utils::tlm_quantumkeeper& qk, const char* what);
  /// The queue importer's access `issue` (one try) with the retry policy; `what` names it.
  template <typename Issue>
  PeerAccess queueAccess(Issue issue, tlm_utils::tlm_quantumkeeper& qk, const char* what);
  /// The queue writer gives up: error state, every command not completed abandoned.
  void giveUpQueue(const char* what, HmmStatus st, Errno p2p, std::uint32_t retries,
                   tlm_utils::tlm_quantumkeeper& qk);
  /// The submit and completion engines share the device MMU: one transfer at a time in the queue
  /// importer (a device fault in one waits, synchronised, while the other queues behind it).
  void takeQueueImporter(tlm_utils::tlm_quantumkeeper& qk);
  void giveQueueImporter();
  std::uint64_t wirePs(std::uint64_t payload) const;
  static std::uint64_t now(const tlm_utils::tlm_quantumkeeper& qk);

  NicParams params_;
  PcieDmaEngine& dma_;
  std::vector<std::uint8_t> regs_;
  // TX engine
  std::uint32_t tdh_ = 0, tdt_ = 0;
  std::multimap<std::uint64_t, std::uint32_t> tdtWrites_;  // by arrival time
  sc_core::sc_event txWake_, txDone_;
  SeqQuantumKeeper txQk_;
  std::uint64_t wireFreePs_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> fifo_;  // (leaves FIFO at, bytes), oldest first
  std::size_t fifoHead_ = 0;
  std::uint64_t fifoBytes_ = 0;
  std::vector<NicPacket> packets_;
  std::vector<std::uint8_t> wire_;
  std::vector<std::uint8_t> pkt_;
  ImporterDma* txImporter_ = nullptr;
  ImporterDma* monitorImporter_ = nullptr;
  ImporterDma* queueImporter_ = nullptr;
  bool queueImporterBusy_ = false;  // one engine's access is in the queue importer (it may wait)
  sc_core::sc_event queueImporterFree_;
  // Monitor
  NicMonitorParams monitor_;
  bool monitorOn_ = false;
  sc_core::sc_event monitorStart_;
  std::vector<NicMonitorSample> samples_;
  // Queue writer
  NicQueueWriterParams qw_;
  bool qwOn_ = false;
  std::vector<NicStorageRequest> requests_;
  std::vector<NicIoRecord> ios_;
  std::uint32_t outstanding_ = 0;
  std::vector<std::uint16_t> reaped_;  // CQEs read, CQ head doorbell not rung yet: done after it
  std::multimap<std::uint64_t, std::uint32_t> mailbox_;  // arrival time -> data
  sc_core::sc_event qwStart_, mailboxWake_, slotFreed_;
  NicQueueError queueError_;
  // Receive notify
  NicRxNotifyParams rx_;
  bool rxOn_ = false;
  std::vector<NicStorageRequest> rxRequests_;
  std::vector<std::uint64_t> rxNotified_;
  sc_core::sc_event rxStart_;
  StatsGroup stats_;
  Counter& txPackets_;
  Counter& txBytes_;
  Counter& txDescriptors_;
  Counter& dmaErrors_;
  Counter& monitorCount_;
  Counter& sqesWritten_;
  Counter& doorbells_;
  Counter& cqesSeen_;
  Counter& mailboxCount_;
  Counter& rxRecords_;
  Counter& rxMsis_;
  Counter& queueFaults_;
  Counter& queueRetries_;
  Counter& queueGaveUp_;
  Counter& commandsAbandoned_;
};

}  // namespace hmmsim
