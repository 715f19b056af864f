// NIC -> NVMe (RFC workload 1): the NIC writes SQEs into the NVMe controller's CMB submission
// queue and rings its doorbell, the controller's MSI goes to the NIC's mailbox and the NIC reaps
// the CQEs: no CPU in the data path (the CPU only set the queue up). The same I/Os driven by the
// CPU (SQE stores through the root complex, doorbell, interrupt, CQ reap) are the comparison.
// Data lands byte-exact both ways. Assertions after sc_start().
#include "tests/unit/devices/nic_nvme_fixture.h"

#include <catch2/catch.hpp>

#include "hmm/importer_mirror.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/nvme/nvme_export.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/topology_desc.h"
#include "sim/checker.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kCmb = kNvmeBar + (2ull << 20);
constexpr std::uint64_t kSq = kCmb, kCq = kCmb + 0x1000, kPrpLists = kCmb + 0x10000;
constexpr std::uint32_t kEntries = 64;
constexpr std::uint64_t kSrc = 0x0a00'0000ull, kDst = 0x0a80'0000ull, kHostPrpLists = 0x0d00'0000ull;
constexpr std::uint64_t kStartPs = 500'000'000, kSpacingPs = 200'000'000;

NvmeDriverParams driverParams() {
  NvmeDriverParams dp;
  dp.barBase = kNvmeBar;
  dp.adminSqPa = kAdminSq;
  dp.adminCqPa = kAdminCq;
  return dp;
}

// Eight 8 KiB writes, one 64 KiB write (a PRP list), then reads of the same blocks, one every
// kSpacingPs (queue depth 1: each I/O's latency alone).
std::vector<NicStorageRequest> requests() {
  std::vector<NicStorageRequest> r;
  auto add = [&r](bool write, std::uint64_t slba, std::uint32_t blocks, std::uint64_t off) {
    NicStorageRequest q;
    q.atPs = kStartPs + r.size() * kSpacingPs;
    q.write = write;
    q.slba = slba;
    q.blocks = blocks;
    q.dataAddr = (write ? kSrc : kDst) + off;
    r.push_back(q);
  };
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint64_t i = 0; i < 8; ++i) add(pass == 0, 16 * i, 2, i * 8192);
    add(pass == 0, 512, 16, 0x10'0000);
  }
  return r;
}

std::uint64_t bytesOf(const NicStorageRequest& q) {
  return q.blocks * 4096ull;
}

// The control path both machines share: enable, MSI-X vector 1 -> `msi`, queue pair 1 in the CMB.
bool setUp(NvmeDriver& d, std::uint64_t msi) {
  if (!d.enable()) return false;
  d.setMsix(1, msi, 1);
  return d.createIoQueuePair(1, kSq, kCq, kEntries, 1, true) == 0;
}

void fillSources(Machine& m, const std::vector<NicStorageRequest>& rq) {
  for (std::size_t i = 0; i < rq.size(); ++i)
    if (rq[i].write) {
      const auto b = pattern(bytesOf(rq[i]), static_cast<std::uint32_t>(i + 100));
      m.pm.write(Pa(rq[i].dataAddr), b.data(), b.size());
    }
}

void checkData(Machine& m, const std::vector<NicStorageRequest>& rq) {
  for (std::size_t i = 0; i < rq.size(); ++i) {
    if (rq[i].write) continue;
    const std::size_t w = i - rq.size() / 2;  // the write of the same blocks
    INFO("read " << i);
    CHECK(m.readPhys(rq[i].dataAddr, bytesOf(rq[i])) ==
          pattern(bytesOf(rq[w]), static_cast<std::uint32_t>(w + 100)));
  }
}

double mean(const std::vector<std::uint64_t>& v) {
  double s = 0;
  for (auto x : v) s += static_cast<double>(x);
  return s / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE(
    "the NIC drives the NVMe CMB queue and doorbell with no CPU in the data path, and beats the CPU doing "
    "the same") {
  const std::vector<NicStorageRequest> rq = requests();
  Machine nm("nicpath_"), cm("cpupath_");
  fillSources(nm, rq);
  fillSources(cm, rq);

  // NIC path: the CPU sets the queue up, points the CQ's MSI at the NIC's mailbox, hands the
  // queue to the NIC and is done.
  bool nicSetup = false;
  std::uint64_t cpuDonePs = 0;
  CpuHost ncpu("nicpath_cpu", nm.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    nicSetup = setUp(d, kNicBar + nic::kMailbox);
    NicQueueWriterParams qw;
    qw.queue.qid = 1;
    qw.queue.sqBase = kSq;
    qw.queue.cqBase = kCq;
    qw.queue.entries = kEntries;
    qw.sqDoorbell = kNvmeBar + nvme::sqTailDoorbell(1);
    qw.cqDoorbell = kNvmeBar + nvme::cqHeadDoorbell(1);
    qw.prpListBase = kPrpLists;
    nm.nic->startQueueWriter(qw, rq);
    cpuDonePs = h.nowPs();
  });

  // CPU path: the CPU submits each I/O when it arrives and takes the completion interrupt.
  bool cpuSetup = false;
  std::vector<std::uint64_t> cpuLatency;
  std::vector<std::uint16_t> cpuStatus;
  CpuHost ccpu("cpupath_cpu", cm.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    cpuSetup = setUp(d, kMsiMailbox);
    for (std::size_t i = 0; i < rq.size(); ++i) {
      h.cpuWork(rq[i].atPs - h.nowPs());
      const std::uint64_t bytes = bytesOf(rq[i]);
      std::uint64_t prp2 = 0;
      if (bytes > 8192) {
        std::vector<std::uint64_t> list;
        for (std::uint64_t a = rq[i].dataAddr + 4096; a < rq[i].dataAddr + bytes; a += 4096)
          list.push_back(a);
        prp2 = kHostPrpLists;
        h.store(prp2, list.data(), list.size() * 8);
      } else if (bytes > 4096) {
        prp2 = rq[i].dataAddr + 4096;
      }
      d.submit(1, nvme::Sqe::readWrite(rq[i].write, static_cast<std::uint16_t>(i), rq[i].slba, rq[i].blocks,
                                       rq[i].dataAddr, prp2));
      cpuStatus.push_back(d.waitCompletion(1).status);
      cpuLatency.push_back(h.nowPs() - rq[i].atPs);
    }
  });
  ccpu.connectInterrupt(1, cm.nvme->completionEvent(1));
  sc_core::sc_start();

  REQUIRE(nicSetup);
  REQUIRE(cpuSetup);
  // Every byte landed, both ways.
  checkData(nm, rq);
  checkData(cm, rq);
  // NIC path: every I/O completed successfully, and the CPU had finished before the first one.
  const auto& ios = nm.nic->ioRecords();
  REQUIRE(ios.size() == rq.size());
  std::vector<std::uint64_t> nicLatency;
  for (const auto& io : ios) {
    CHECK(io.done);
    CHECK(io.status == 0);
    CHECK(io.completePs > io.doorbellPs);
    nicLatency.push_back(io.completePs - io.arrivePs);
  }
  CHECK(cpuDonePs < kStartPs);
  CHECK(ncpu.interrupts == 0);
  CHECK(nm.nic->stats().counterValue("sqes_written") == rq.size());
  CHECK(nm.nic->stats().counterValue("cqes_seen") == rq.size());
  CHECK(nm.nic->stats().counterValue("mailbox_writes") == rq.size());  // the MSIs went to the NIC
  CHECK(nm.nic->stats().counterValue("dma_errors") == 0);
  CHECK(nm.readPhys(kMsiMailbox, 4) == std::vector<std::uint8_t>(4, 0));  // nothing for the CPU
  // The SQEs, doorbells, CQE reads and data all stayed under the switch.
  CHECK(nm.fab.rootComplex(nm.rc).stats().counterValue("p2p_transactions") == 0);
  // The controller saw the same commands both ways.
  CHECK(nm.nvme->stats().counterValue("reads") == 9);
  CHECK(nm.nvme->stats().counterValue("writes") == 9);
  CHECK(cm.nvme->stats().counterValue("reads") == 9);
  CHECK(cm.nvme->stats().counterValue("writes") == 9);
  for (auto s : cpuStatus) CHECK(s == 0);
  // Per-I/O latency: both pay the media; the CPU path adds its software and interrupt costs and
  // crosses the root complex for every SQE and doorbell.
  REQUIRE(cpuLatency.size() == nicLatency.size());
  const NvmeParams np;
  for (std::size_t i = 0; i < rq.size(); ++i) {
    INFO("I/O " << i << " nic " << nicLatency[i] << " cpu " << cpuLatency[i]);
    const std::uint64_t media = rq[i].write ? np.media.writeLatencyPs : np.media.readLatencyPs;
    CHECK(nicLatency[i] > media);
    CHECK(cpuLatency[i] > nicLatency[i]);
  }
  const NvmeDriverParams dp;
  CHECK(mean(cpuLatency) - mean(nicLatency) >
        static_cast<double>(dp.submitCostPs + dp.completionCostPs + 2'000'000));
  WARN("mean latency per I/O: NIC " << mean(nicLatency) / 1e6 << " us, CPU " << mean(cpuLatency) / 1e6
                                    << " us, ratio CPU/NIC " << mean(cpuLatency) / mean(nicLatency));
}

TEST_CASE(
    "through the RFC: the NIC maps the NVMe doorbells and CMB queue from a special-vma mmap and drives "
    "them") {
  // The kernel's view of the machine: nic and nvme under one switch; the hand-wired fabric uses
  // the BAR addresses enumeration gave them.
  TopologyDesc td = smallPlatform({"nic", "nvme"});
  for (auto& e : td.endpoints) {
    if (e.name == "nvme") e.functions[0].bars = {mem64pref(0, 4 * kMiB)};
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  }
  std::unique_ptr<Topology> topo = buildTopology(td);
  PciDev& nvmePci = *topo->findDev("nvme");
  PciDev& nicPci = *topo->findDev("nic");
  MachineParams mp;
  mp.nvmeBar = nvmePci.bar(0).bus.value();
  mp.nicBar = nicPci.bar(0).bus.value();
  mp.nic.barBytes = 1 * kMiB;
  mp.gpuBar = 0x80'0000'0000ull;
  Machine m("", mp);
  Iommu iommu("top.iommu", IommuParams{});
  DmaMapping dma("top.dma", iommu, DmaMappingParams{});
  P2pdma p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma");
  P2pDmaMapper mapper(p2pdma, dma, "top.p2p_dma");
  InvariantChecker violations;
  P2pChecker checker(violations);
  for (PciDev* d : {&nvmePci, &nicPci})
    REQUIRE(dma.attachDevice(*d, pciDmaDeviceParams(*d, *topo)) == Errno::Ok);
  // The NVMe driver exports BAR0 (doorbells, CMB) through its device file; a process maps it.
  REQUIRE(NvmeExport::check(nvmePci, mp.nvme.barBytes).empty());
  NvmeExport exp("nvme", nvmePci, Pa(mp.nvmeBar), mp.nvme.barBytes, m.pm, mapper, &checker);
  exp.bindBarTarget(m.fab.memory(m.nvmeNode));
  std::shared_ptr<File> file = openDeviceFile(m.pm, exp, FMODE_READ | FMODE_WRITE, "nvme0");
  auto mm = std::make_unique<Mm>(m.pm, "proc");
  const VaResult bar0 = mm->mmap(Va(0), mp.nvme.barBytes, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
  REQUIRE(bar0.ok());
  // The NIC driver registers that range with the NIC's importer (the importer pattern) and maps
  // the queue's pages ahead.
  HmmDmaImporter imp;
  imp.device = &nicPci;
  imp.dma = &dma;
  auto importer =
      std::make_unique<ImporterDma>("nic.dma", *mm, imp, m.fab.engine(m.nicNode), bar0.addr,
                                    mp.nvme.barBytes >> kPageShift, ImporterDmaParams{}, &checker);
  const std::uint64_t cmbOff = mp.nvme.cmbOffset;
  NicPeerQueueLayout layout;
  layout.bar0 = bar0.addr;
  layout.peerBar0Bus = mp.nvmeBar;
  layout.qid = 1;
  layout.sqOffset = cmbOff;
  layout.cqOffset = cmbOff + 0x1000;
  layout.prpListOffset = cmbOff + 0x10000;
  layout.entries = kEntries;
  const std::optional<NicQueueWriterParams> qw = importPeerQueue(*importer, layout);
  REQUIRE(qw);
  // The NIC gets process addresses in its importer's window; PRP2 carries the CMB's bus address.
  CHECK(qw->sqDoorbell == (bar0.addr + nvme::sqTailDoorbell(1)).value());
  CHECK(qw->queue.sqBase == (bar0.addr + cmbOff).value());
  CHECK(qw->prpListPeerBase == mp.nvmeBar + cmbOff + 0x10000);
  // Under one switch the exporter hands out bus addresses inside the NVMe's BAR0.
  const std::optional<DeviceTranslation> sqT = importer->mirror().translate(bar0.addr + cmbOff, true);
  REQUIRE(sqT);
  CHECK(sqT->addr.value() == mp.nvmeBar + cmbOff);
  CHECK(exp.exporter().stats().counterValue("vma_p2p_pages") > 0);

  const std::vector<NicStorageRequest> rq = requests();
  fillSources(m, rq);
  bool setup = false;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriverParams dp = driverParams();
    dp.barBase = mp.nvmeBar;
    NvmeDriver d(h, dp);
    setup = d.enable();
    d.setMsix(1, mp.nicBar + nic::kMailbox, 1);
    const std::uint64_t cmb = mp.nvmeBar + cmbOff;
    setup = setup && d.createIoQueuePair(1, cmb, cmb + 0x1000, kEntries, 1, true) == 0;
    m.nic->setQueueImporter(importer.get());
    m.nic->startQueueWriter(*qw, rq);
  });
  sc_core::sc_start();
  REQUIRE(setup);
  checkData(m, rq);
  CHECK(importer->stats().counterValue("device_faults") == 0);  // everything was mapped ahead
  for (const auto& io : m.nic->ioRecords()) {
    CHECK(io.done);
    CHECK(io.status == 0);
  }
  CHECK(m.nic->stats().counterValue("dma_errors") == 0);
  CHECK(cpu.interrupts == 0);
  // Teardown in the kernel's order: the importer lets go (p2pUnmap), then the process unmaps.
  m.nic->setQueueImporter(nullptr);
  importer.reset();
  CHECK(exp.exporter().grantCount() == 0);
  mm.reset();
  CHECK(violations.ok());
}
