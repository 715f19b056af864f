#pragma once
// NvmeController: the hardware half of an NVMe SSD on the PCIe fabric, as a SystemC module.
//
// What it models (NVMe base specification 2.0, NVM command set):
//  - BAR0 holds the controller registers (CAP, VS, CC, CSTS, AQA, ASQ, ACQ, CMBLOC, CMBSZ), the
//    doorbells (SQ y tail at 0x1000 + 8y, CQ y head at 0x1000 + 8y + 4; CAP.DSTRD = 0), an MSI-X
//    table at 0x2000 and the controller memory buffer (CMB) at `cmbOffset` (CMBLOC.BIR = 0). The
//    CMB's bytes are device memory in the platform's one byte store (PhysMem), so a queue a CPU
//    or a peer writes over PCIe is the queue the controller reads. CMBSZ advertises SQ, CQ, PRP
//    lists, read and write data in the CMB.
//  - Queues: an admin queue pair from AQA/ASQ/ACQ when CC.EN goes to 1; I/O queues created and
//    deleted by admin commands (physically contiguous, CAP.CQR = 1). Queues live in host memory or
//    in the CMB (wherever their base address points). 64-byte SQEs and 16-byte CQEs in the
//    specification's layout (nvme_spec.h); CQEs carry SQ head, SQ id, CID, status and the phase
//    tag, which flips at every wrap; the CQ head doorbell frees slots (a full CQ stalls completion
//    posting until the host rings it).
//  - Commands: Read, Write, Flush (admin: Create/Delete I/O SQ/CQ). Data pointers are PRPs (PRP1
//    with an offset, PRP2 as second page or PRP list pointer, chained lists), memory page size
//    4 KiB (CC.MPS = 0). A PRP may point at host memory, at a peer's BAR (the fabric routes it),
//    or at the controller's own CMB (then no PCIe transfer).
//  - Media: NvmeMedia (nvme_media.h): sparse real bytes, latency + shared bandwidth.
//  - Completion: the CQE is written (CMB: locally; host: a posted DMA write), then, if the CQ has
//    interrupts enabled and its MSI-X vector is unmasked, an MSI: a posted 4-byte write of the
//    vector's data to its address, ordered behind the CQE. A per-CQ sc_event also fires when the
//    CQE is visible (for models without an interrupt controller).
// Timing: one controller thread, loosely timed, synchronised after every step. An SQ doorbell
// takes effect at the time its write reaches the register; the controller then fetches SQEs
// round robin over the submission queues (from the CMB: `cmbAccessPs`; from host memory: a
// 64-byte DMA read), charges `commandOverheadPs` of firmware time, books the media, and for a
// write first DMA-reads the data. A read's data is DMA-written when the media has it, then the
// CQE, then the MSI. Up to `maxOutstanding` commands are in flight; their media latencies
// overlap.
// Leaves out: SGLs, namespaces management, Identify/Get Log Page/Features (nothing asks), the
// controller's volatile write cache, weighted round robin and urgent queues, interrupt
// coalescing, PCIe function-level reset, shutdown notification, persistent memory region,
// SQE fetch bursts (one SQE per fetch), the admin commands beyond queue management.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/cpu_mmu/sequencer.h"
#include "models/devices/nvme/nvme_media.h"
#include "models/devices/nvme/nvme_spec.h"
#include "models/pcie/memory_target.h"
#include "sim/byte_store.h"
#include "sim/stats.h"

namespace hmmsim {

class PcieDmaEngine;

struct NvmeParams {
  /// Bus address of BAR0 as enumeration assigned it; the controller recognises PRPs and queue
  /// bases that fall in its own CMB by it. Unit: bus address. Default 0 (the platform sets it).
  std::uint64_t barBase = 0;
  /// BAR0 size: registers, doorbells, MSI-X table and the CMB. Unit: bytes. Default 4 MiB.
  std::uint64_t barBytes = 4ull << 20;
  /// CMB offset inside BAR0 (CMBLOC.OFST), a multiple of 2 MiB (the platform's device-memory
  /// granule). Unit: bytes. Default 2 MiB.
  std::uint64_t cmbOffset = 2ull << 20;
  /// CMB size (CMBSZ.SZ, 1 MiB units), a multiple of 2 MiB; 0 = no CMB. Unit: bytes. Default 2 MiB.
  std::uint64_t cmbBytes = 2ull << 20;
  /// I/O queue pairs the controller supports (queue ids 1..ioQueuePairs). Unit: queues. Default 16.
  std::uint16_t ioQueuePairs = 16;
  /// Largest queue (CAP.MQES + 1), admin queue included. Unit: entries. Default 1024.
  std::uint32_t maxQueueEntries = 1024;
  /// MSI-X table entries (vector 0 serves the admin CQ). Unit: vectors. Default 17.
  std::uint16_t msixVectors = 17;
  /// Controller's own access to its CMB (an SQE fetch, a CQE post, a PRP list read, data held
  /// there). Unit: ps. Default 50 ns.
  std::uint64_t cmbAccessPs = 50'000;
  /// Firmware time per command between fetching it and handing it to the media. Unit: ps.
  /// Default 1 us.
  std::uint64_t commandOverheadPs = 1'000'000;
  /// Commands fetched and not yet completed, at most. Unit: commands. Default 256.
  std::uint32_t maxOutstanding = 256;
  /// Maximum data transfer size (MDTS); larger commands fail with Invalid Field. Unit: bytes,
  /// a multiple of 4 KiB. Default 1 MiB.
  std::uint64_t mdtsBytes = 1ull << 20;
  /// The namespace's media.
  NvmeMediaParams media;
};

/// What happened to one command (NvmeController::records()).
struct NvmeCommandRecord {
  std::uint16_t sqid = 0;
  std::uint16_t cid = 0;
  std::uint8_t opcode = 0;
  std::uint16_t status = 0;       ///< nvme::Status value
  std::uint64_t bytes = 0;        ///< data bytes transferred
  std::uint64_t doorbellPs = 0;   ///< the SQ tail doorbell write that made the command visible
  std::uint64_t fetchPs = 0;      ///< SQE fetched
  std::uint64_t mediaDonePs = 0;  ///< media finished (read: data ready; write: programmed)
  std::uint64_t cqePs = 0;        ///< CQE visible in the completion queue
  std::uint64_t msiPs = 0;        ///< MSI write delivered (0: none)
};

class NvmeController : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(NvmeController);
  /// `dma`: the endpoint's DMA engine; `bar`: its BAR0 target (registers are registered on it);
  /// `store`: where BAR0's bytes live (the CMB at store address `storeBase` + cmbOffset; the
  /// caller sets `bar`'s backing to the same store). All must outlive the controller.
  /// Parameter errors are simulator-user errors: validate() first.
  NvmeController(sc_core::sc_module_name name, const NvmeParams& params, PcieDmaEngine& dma,
                 PcieMemoryTarget& bar, ByteStore& store, std::uint64_t storeBase);

  /// "" if `p` is usable, else what is wrong (names the field).
  static std::string validate(const NvmeParams& p);

  /// Notified when a CQE of completion queue `qid` becomes visible.
  sc_core::sc_event& completionEvent(std::uint16_t qid) { return *cqEvents_.at(qid); }
  /// Every command completed, in completion order.
  const std::vector<NvmeCommandRecord>& records() const { return records_; }
  NvmeMedia& media() { return media_; }
  const NvmeParams& params() const { return params_; }
  /// Bus address of the CMB's first byte.
  std::uint64_t cmbBase() const { return params_.barBase + params_.cmbOffset; }
  /// Stats: "doorbells", "commands", "reads", "writes", "errors", "data_bytes_out" (to hosts or
  /// peers), "data_bytes_in", "cqes", "msis", "cmb_accesses", "cq_full_stalls".
  StatsGroup& stats() { return stats_; }

 private:
  struct Sq {
    bool valid = false;
    std::uint64_t base = 0;
    std::uint32_t entries = 0;
    std::uint32_t head = 0, tail = 0;
    std::uint16_t cqid = 0;
    std::uint64_t tailPs = 0;  // time of the last tail doorbell
  };
  struct Cq {
    bool valid = false;
    std::uint64_t base = 0;
    std::uint32_t entries = 0;
    std::uint32_t head = 0, tail = 0;
    bool phase = true;
    bool ien = false;
    std::uint16_t vector = 0;
  };
  struct Segment {
    std::uint64_t addr, bytes;
  };
  /// A fetched command waiting for its completion.
  struct InFlight {
    nvme::Sqe sqe;
    NvmeCommandRecord rec;
    std::vector<Segment> data;  // resolved PRPs (reads), contiguous runs merged
    std::uint32_t result = 0;   // CQE DW0
    std::uint16_t cqid = 0;     // the completion queue of its SQ at fetch time
  };
  struct DoorbellWrite {
    std::uint64_t offset;
    std::uint32_t value;
  };

  void run();
  void onRegister(const MmioAccess& a);
  void onMsix(const MmioAccess& a);
  void applyDoorbell(const DoorbellWrite& w, std::uint64_t timePs);
  void setEnable(bool en);
  /// Fetch and dispatch one command from the next non-empty SQ (round robin); false if none.
  bool fetchOne();
  void dispatchIo(InFlight&& f);
  void dispatchAdmin(InFlight&& f);
  std::uint16_t createQueue(const nvme::Sqe& s, bool cq);
  /// Post the CQE (and MSI) of `f`; false if its CQ is full (nothing done).
  bool complete(InFlight& f);
  /// The data segments of a PRP pair for `bytes`; a status other than Success on a bad PRP.
  nvme::Status resolvePrps(std::uint64_t prp1, std::uint64_t prp2, std::uint64_t bytes,
                           std::vector<Segment>& out);
  /// Controller access to memory by bus address: its own CMB locally, anything else by DMA.
  bool memRead(std::uint64_t addr, std::uint64_t len, std::uint8_t* dst);
  bool memWrite(std::uint64_t addr, std::uint64_t len, const std::uint8_t* src, std::uint64_t* donePs);
  bool inCmb(std::uint64_t addr, std::uint64_t len) const;
  std::uint64_t nowPs() const;
  void sync();
  void reg32(std::uint64_t off, std::uint32_t v);
  void reg64(std::uint64_t off, std::uint64_t v);
  std::uint32_t reg32At(std::uint64_t off) const;
  std::uint64_t reg64At(std::uint64_t off) const;

  NvmeParams params_;
  PcieDmaEngine& dma_;
  ByteStore& store_;
  std::uint64_t storeBase_;
  NvmeMedia media_;
  SeqQuantumKeeper qk_;
  std::vector<std::uint8_t> regs_;  // registers 0x00..0x40 as the host reads them
  std::vector<std::uint8_t> msix_;  // the MSI-X table
  std::vector<Sq> sqs_;
  std::vector<Cq> cqs_;
  std::uint16_t rr_ = 0;                                   // round-robin position over SQs
  std::multimap<std::uint64_t, DoorbellWrite> doorbells_;  // by arrival time, FIFO among equals
  std::multimap<std::uint64_t, InFlight> inflight_;        // by ready time, FIFO among equals
  sc_core::sc_event wake_;
  std::vector<std::unique_ptr<sc_core::sc_event>> cqEvents_;
  std::vector<NvmeCommandRecord> records_;
  std::vector<std::uint8_t> buf_;
  StatsGroup stats_;
  Counter& doorbellsRung_;
  Counter& commands_;
  Counter& reads_;
  Counter& writes_;
  Counter& errors_;
  Counter& bytesOut_;
  Counter& bytesIn_;
  Counter& cqes_;
  Counter& msis_;
  Counter& cmbAccesses_;
  Counter& cqFullStalls_;
};

}  // namespace hmmsim
