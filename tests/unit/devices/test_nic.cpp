// The NIC alone (models/devices/nic): the transmit ring drives the wire at line rate with the
// bytes of the buffers, a slow PCIe link holds it below line rate, and monitoring mode reads a
// peer's memory periodically. Assertions after sc_start().
#include "tests/unit/devices/nic_nvme_fixture.h"

#include <catch2/catch.hpp>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/devices/common/importer_dma.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/topology_desc.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kTxRing = 0x0b00'0000ull;
constexpr std::uint64_t kTxData = 0x0a00'0000ull;
constexpr std::uint32_t kBuffers = 48;
constexpr std::uint16_t kBufBytes = 32768;

struct TxRun {
  std::unique_ptr<Machine> m;
  std::unique_ptr<CpuHost> cpu;
  std::vector<std::uint8_t> sent;  // the buffers' bytes in ring order
  std::uint32_t reclaimed = 0;
};

// A machine whose CPU queues kBuffers buffers of kBufBytes at `dataBase` (DRAM or the GPU's BAR)
// on the TX ring, rings the doorbell once, then reclaims after `reclaimAfterPs`.
std::unique_ptr<TxRun> txRun(const std::string& p, MachineParams mp, std::uint64_t dataBase,
                             std::uint64_t reclaimAfterPs) {
  auto r = std::make_unique<TxRun>();
  r->m = std::make_unique<Machine>(p, mp);
  r->sent = pattern(std::size_t(kBuffers) * kBufBytes, static_cast<std::uint32_t>(p.size()) + 1);
  r->m->pm.write(Pa(dataBase), r->sent.data(), r->sent.size());
  TxRun* run = r.get();
  r->cpu =
      std::make_unique<CpuHost>((p + "cpu").c_str(), r->m->bus, [run, dataBase, reclaimAfterPs](CpuHost& h) {
        NicDriverParams dp;
        dp.barBase = kNicBar;
        dp.txRingPa = kTxRing;
        NicDriver d(h, dp);
        d.setupTx();
        for (std::uint32_t i = 0; i < kBuffers; ++i)
          d.queue(dataBase + std::uint64_t(i) * kBufBytes, kBufBytes);
        d.kick();
        h.cpuWork(reclaimAfterPs);
        run->reclaimed = d.reclaim();
      });
  return r;
}

// Wire bits over the time from the first packet's first bit to the last packet's end, in Gb/s.
double wireGbps(const Nic& n) {
  const auto& ps = n.packets();
  double bits = 0;
  for (const auto& pk : ps) bits += (pk.bytes + n.params().packetOverheadBytes) * 8.0;
  return bits / static_cast<double>(ps.back().endPs - ps.front().startPs) * 1000.0;
}

}  // namespace

TEST_CASE(
    "the NIC sends a TX ring at 100, 200 and 400 Gb/s line rate within 1 % with the buffers' bytes on the "
    "wire") {
  // 100 and 200 Gb/s from host memory over Gen4 x16; 400 Gb/s streams a result out of the GPU's
  // memory (RFC workload 3) with Gen5 x16 links on the NIC and the GPU.
  MachineParams p100, p200, p400;
  p100.nic.lineRateGbps = 100;
  p200.nic.lineRateGbps = 200;
  p400.nic.lineRateGbps = 400;
  p400.nicGen = PcieGen::Gen5;
  p400.gpuGen = PcieGen::Gen5;
  std::vector<std::unique_ptr<TxRun>> runs;
  runs.push_back(txRun("r100_", p100, kTxData, 300'000'000));
  runs.push_back(txRun("r200_", p200, kTxData, 300'000'000));
  runs.push_back(txRun("r400_", p400, kGpuBar + 0x10'0000, 300'000'000));
  sc_core::sc_start();
  const double rates[] = {100, 200, 400};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    INFO("line rate " << rates[i]);
    const Nic& nic = *runs[i]->m->nic;
    CHECK(nic.wire() == runs[i]->sent);
    CHECK(nic.packets().size() == kBuffers * (kBufBytes / 4096));
    CHECK(wireGbps(nic) == Approx(rates[i]).epsilon(0.01));
    // Payload rate: the line rate less the per-packet overhead.
    const auto& ps = nic.packets();
    const double payload =
        runs[i]->sent.size() * 8.0 / static_cast<double>(ps.back().endPs - ps.front().startPs) * 1000;
    CHECK(payload == Approx(rates[i] * 4096 / (4096 + 38)).epsilon(0.01));
    CHECK(runs[i]->reclaimed == kBuffers);  // every descriptor's DD was written back
    CHECK(runs[i]->cpu->busErrors == 0);
    CHECK(runs[i]->m->nic->stats().counterValue("dma_errors") == 0);
  }
  // The 400 Gb/s stream read the GPU's memory under the switch, never crossing the root complex.
  CHECK(runs[2]->m->fab.rootComplex(runs[2]->m->rc).stats().counterValue("p2p_transactions") == 0);
  CHECK(runs[2]->m->fab.memory(runs[2]->m->gpuNode).stats().counterValue("bytes_read") ==
        runs[2]->sent.size());
}

TEST_CASE("a NIC behind a Gen4 x4 link cannot fill a 100 Gb/s wire") {
  MachineParams mp;
  mp.nicLanes = 4;
  auto r = txRun("", mp, kTxData, 300'000'000);
  sc_core::sc_start();
  CHECK(r->m->nic->wire() == r->sent);
  // Gen4 x4 carries about 63 Gb/s of raw bits, less after TLP overheads.
  CHECK(wireGbps(*r->m->nic) < 64.0);
  CHECK(wireGbps(*r->m->nic) > 40.0);
}

TEST_CASE("monitoring mode reads a peer's memory every period and sees it change as the peer computes") {
  Machine m("");
  constexpr std::uint64_t kPeriod = 10'000'000, kProgress = kGpuBar + 0x2000;
  constexpr std::uint32_t kSamples = 12;
  NicMonitorParams mp;
  mp.addr = kProgress;
  mp.bytes = 64;
  mp.periodPs = kPeriod;
  mp.samples = kSamples;
  mp.startPs = kPeriod;
  m.nic->startMonitor(mp);
  // The GPU's compute writes its progress counter k into its memory at k * period + period / 2.
  CpuHost gpu("gpu_compute", m.bus, [&](CpuHost& h) {
    for (std::uint32_t k = 1; k <= kSamples; ++k) {
      h.cpuWork(k * kPeriod + kPeriod / 2 - h.nowPs());
      m.pm.write(Pa(kProgress), &k, 4);
    }
  });
  sc_core::sc_start();
  const auto& s = m.nic->monitorSamples();
  REQUIRE(s.size() == kSamples);
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    INFO("sample " << i);
    CHECK(s[i].ok);
    CHECK(s[i].issuePs == (i + 1) * kPeriod);
    std::uint32_t v = 0;
    std::memcpy(&v, s[i].data.data(), 4);
    CHECK(v == i);  // sample i + 1 at (i + 1) period sees the counter written at i + 1/2 periods
    CHECK(s[i].donePs - s[i].issuePs == s[0].donePs - s[0].issuePs);  // an unloaded read, same each time
    CHECK(s[i].donePs - s[i].issuePs < 2'000'000);
  }
  CHECK(m.nic->stats().counterValue("monitor_samples") == kSamples);
  CHECK(m.fab.rootComplex(m.rc).stats().counterValue("p2p_transactions") == 0);
}

TEST_CASE(
    "the NIC sends a process VA range through the importer path at line rate with the bytes the process "
    "wrote") {
  // The kernel's view: the NIC under a switch; the hand-wired fabric uses its enumerated BAR.
  TopologyDesc td = smallPlatform({"nic"});
  for (auto& e : td.endpoints)
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  std::unique_ptr<Topology> topo = buildTopology(td);
  PciDev& nicPci = *topo->findDev("nic");
  MachineParams mp;
  mp.nicBar = nicPci.bar(0).bus.value();
  mp.nic.barBytes = 1 * kMiB;
  mp.nvmeBar = 0x80'0000'0000ull;
  mp.gpuBar = 0x80'1000'0000ull;
  Machine m("", mp);
  IommuParams ip;
  ip.mode = IommuMode::Off;  // the hand-wired root complex has no translation stage
  Iommu iommu("iommu", ip);
  DmaMapping dma("dma", iommu, DmaMappingParams{});
  REQUIRE(dma.attachDevice(nicPci, pciDmaDeviceParams(nicPci, *topo)) == Errno::Ok);
  // The process writes the bytes it will send into anonymous memory.
  auto mm = std::make_unique<Mm>(m.pm, "proc");
  const std::uint64_t len = std::uint64_t(kBuffers) * kBufBytes;
  const VaResult buf = mm->mmap(Va(0), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(buf.ok());
  const std::vector<std::uint8_t> data = pattern(len, 77);
  REQUIRE(copyToUser(*mm, buf.addr, data.data(), data.size()) == Errno::Ok);
  HmmDmaImporter imp;
  imp.device = &nicPci;
  imp.dma = &dma;
  auto idma = std::make_unique<ImporterDma>("nic.dma", *mm, imp, m.fab.engine(m.nicNode), buf.addr,
                                            len >> kPageShift);
  m.nic->setTxImporter(idma.get());
  // The driver registers the range and prefetches its translations (an ODP NIC's
  // ibv_advise_mr(PREFETCH)): the device page table is filled through hmmRangeFault, so packets
  // do not fault one page at a time.
  REQUIRE(idma->mirror().map(buf.addr, buf.addr + len, false) == HmmStatus::Ok);
  ScBlocker blocker;
  mm->notifierSubscriptions().setBlocker(blocker);
  std::uint32_t reclaimed = 0;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NicDriverParams dp;
    dp.barBase = mp.nicBar;
    dp.txRingPa = kTxRing;
    NicDriver d(h, dp);
    d.setupTx();
    for (std::uint32_t i = 0; i < kBuffers; ++i)
      d.queue(buf.addr.value() + std::uint64_t(i) * kBufBytes, kBufBytes);
    d.kick();
    h.cpuWork(300'000'000);
    reclaimed = d.reclaim();
    m.nic->setTxImporter(nullptr);
  });
  sc_core::sc_start();
  CHECK(m.nic->wire() == data);
  CHECK(reclaimed == kBuffers);
  CHECK(m.nic->stats().counterValue("dma_errors") == 0);
  // Every packet found its translation; the wire ran at line rate.
  CHECK(idma->stats().counterValue("device_faults") == 0);
  CHECK(idma->stats().counterValue("bytes") == len);
  CHECK(wireGbps(*m.nic) == Approx(100.0).epsilon(0.01));
  CHECK(idma->mirror().stats().counterValue("device_faults") == 0);
  mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
  idma.reset();  // every burst completed: the importer lets go without waiting
  mm.reset();
  mm.reset();
}

TEST_CASE("monitoring mode reads a process VA through the importer path and sees the process's stores") {
  TopologyDesc td = smallPlatform({"nic"});
  for (auto& e : td.endpoints)
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  std::unique_ptr<Topology> topo = buildTopology(td);
  PciDev& nicPci = *topo->findDev("nic");
  MachineParams mp;
  mp.nicBar = nicPci.bar(0).bus.value();
  mp.nic.barBytes = 1 * kMiB;
  mp.nvmeBar = 0x80'0000'0000ull;
  mp.gpuBar = 0x80'1000'0000ull;
  Machine m("", mp);
  IommuParams ip;
  ip.mode = IommuMode::Off;
  Iommu iommu("iommu", ip);
  DmaMapping dma("dma", iommu, DmaMappingParams{});
  REQUIRE(dma.attachDevice(nicPci, pciDmaDeviceParams(nicPci, *topo)) == Errno::Ok);
  auto mm = std::make_unique<Mm>(m.pm, "proc");
  const VaResult page = mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  REQUIRE(page.ok());
  const std::uint32_t zero = 0;
  REQUIRE(copyToUser(*mm, page.addr, &zero, 4) == Errno::Ok);
  HmmDmaImporter imp;
  imp.device = &nicPci;
  imp.dma = &dma;
  auto idma = std::make_unique<ImporterDma>("nic.mon", *mm, imp, m.fab.engine(m.nicNode), page.addr, 1);
  // The driver prefetches the translation (else the first sample pays a device fault and reads late).
  REQUIRE(idma->mirror().map(page.addr, page.addr + kPageSize, false) == HmmStatus::Ok);
  ScBlocker blocker;
  mm->notifierSubscriptions().setBlocker(blocker);
  m.nic->setMonitorImporter(idma.get());
  constexpr std::uint64_t kPeriod = 10'000'000;
  constexpr std::uint32_t kSamples = 8;
  NicMonitorParams mon;
  mon.addr = page.addr.value();
  mon.bytes = 64;
  mon.periodPs = kPeriod;
  mon.samples = kSamples;
  mon.startPs = kPeriod;
  m.nic->startMonitor(mon);
  // The process's progress counter k is stored at k * period + period / 2.
  CpuHost proc("proc", m.bus, [&](CpuHost& h) {
    for (std::uint32_t k = 1; k <= kSamples; ++k) {
      h.cpuWork(k * kPeriod + kPeriod / 2 - h.nowPs());
      REQUIRE(copyToUser(*mm, page.addr, &k, 4) == Errno::Ok);
    }
  });
  sc_core::sc_start();
  const auto& s = m.nic->monitorSamples();
  REQUIRE(s.size() == kSamples);
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    INFO("sample " << i);
    CHECK(s[i].ok);
    std::uint32_t v = 0;
    std::memcpy(&v, s[i].data.data(), 4);
    CHECK(v == i);
  }
  CHECK(idma->stats().counterValue("transfers") == kSamples);
  CHECK(idma->stats().counterValue("device_faults") == 0);
  m.nic->setMonitorImporter(nullptr);
  mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
  idma.reset();
  mm.reset();
}
