// The platform seam (issue 12): a CPU core, DRAM and a PCIe fabric behind one system address map,
// with device memory at its BAR address in PhysMem. Bytes are followed end to end: written over
// PCIe, read by the CPU through its page table, and the other way round. Assertions after
// sc_start().
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include <systemc>
#include <tlm>

#include "hmm/memremap.h"
#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/system_address_map.h"
#include "models/cpu_mmu/system_bus.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/pcie_fabric.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kRamBytes = 256ull << 20;
constexpr Pa kBar(0x40'0000'0000ull);  // the GPU's BAR 0: 64-bit prefetchable
constexpr std::uint64_t kBarBytes = 64ull << 20;

// Device-coherent memory's driver half: frees are recorded (nothing in these tests frees).
class CoherentOps : public DevPagemapOps {
 public:
  void folioFree(Pfn) override { ++frees; }
  int frees = 0;
};

struct SeamParams {
  std::uint64_t rcLatencyPs = 200'000;
  std::uint64_t linkLatencyPs = 20'000;
  std::uint64_t barLatencyPs = 80'000;
};

PcieLinkParams gen4x16(std::uint64_t latencyPs) {
  PcieLinkParams l;
  l.config.gen = PcieGen::Gen4;
  l.config.lanes = 16;
  l.latencyPs = latencyPs;
  return l;
}

Bdf bdf(std::uint8_t bus) {
  return Bdf{0, bus, 0, 0};
}

// Root complex rc0: root port 0 -> switch sw -> {gpu (BAR, device-coherent memory), nic};
// root port 1 -> nic2. DRAM [0, 256 MiB) behind the root complex and on the system bus.
struct Seam {
  explicit Seam(const std::string& p, const SeamParams& sp = {})
      : pm(ram(), p + "phys_mem"),
        mm(pm, p + "proc0.mm"),
        dram((p + "dram").c_str(), DramParams{}, pm),
        fab(p + "fab"),
        bus((p + "bus").c_str(), map) {
    PcieRootComplexParams rcp;
    rcp.latencyPs = sp.rcLatencyPs;
    PcieMemoryTargetParams host;
    host.baseAddr = 0;
    host.sizeBytes = kRamBytes;
    rc = fab.addRootComplex("rc0", rcp, host, true);
    const PcieLinkParams l = gen4x16(sp.linkLatencyPs);
    sw = fab.addSwitch("sw", rc, l, PcieSwitchParams{});
    PcieMemoryTargetParams bar;
    bar.baseAddr = kBar.value();
    bar.sizeBytes = kBarBytes;
    bar.latencyPs = sp.barLatencyPs;
    gpu = fab.addEndpoint("gpu", sw, l, dma(1), bar);
    nic = fab.addEndpoint("nic", sw, l, dma(2));
    nic2 = fab.addEndpoint("nic2", rc, l, dma(3));
    fab.finalize();
    fab.rootComplex(rc).memOut.bind(dram.tSocket);
    // The GPU's memory is device-coherent and sits exactly at its BAR: one byte store.
    pgmap.type = MemoryType::DeviceCoherent;
    pgmap.ops = &ops;
    pgmap.owner = this;
    REQUIRE(memremapPagesAt(pm, pgmap, kBar, kBarBytes / kPageSize) == Errno::Ok);
    fab.memory(gpu).setBacking(&pm, kBar.value(), kBarBytes);
    REQUIRE(map.add(AddressRange{Pa(0), kRamBytes, 0, 0, "dram"}).empty());
    REQUIRE(map.add(AddressRange{kBar, kBarBytes, 1, kBar.value(), "rc0 mmio (gpu bar0)"}).empty());
    bus.iSocket.bind(dram.tSocket);
    bus.iSocket.bind(fab.rootComplex(rc).hostIn);
  }
  static PhysMemParams ram() {
    PhysMemParams r;
    r.ramSize = kRamBytes;
    return r;
  }
  static PcieDmaEngineParams dma(std::uint8_t b) {
    PcieDmaEngineParams d;
    d.requester = bdf(b);
    d.link.gen = PcieGen::Gen4;
    d.link.lanes = 16;
    return d;
  }
  // A present pte at `va` for device-coherent frame `pfn` (what migrating anonymous memory to
  // coherent device memory leaves: migrate_vma_pages).
  void mapCoherent(Va va, Pfn pfn) {
    pm.zoneDevicePageInit(pfn);
    Frame& f = pm.frame(pfn);
    f.clear(kFrameLocked);
    f.set(kFrameAnon);
    f.set(kFrameAnonExclusive);
    f.mapcount = 1;
    Vma* vma = mm.vmaLookup(va);
    REQUIRE(vma);
    f.mapping = &mm.anonVmaPrepare(*vma);
    f.index = vma->linearPageIndex(va);
    Pte* slot = mm.pageTable().ptePtr(va, true);
    REQUIRE(slot);
    *slot = Pte::mkPresent(pfn, true).mkNoExec();
    mm.addMmCounter(MmCounter::AnonPages, 1);
  }
  Va mmapAnon(std::uint64_t len, int flags = MAP_PRIVATE) {
    const VaResult r = mm.mmap(Va(0), len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    return r.addr;
  }
  // The BAR mapped into the process as a driver's mmap does (a shared mapping, remap_pfn_range:
  // VM_IO|VM_PFNMAP). A private one would COW the first store into RAM, as the kernel does.
  Va mmapBar(std::uint64_t barOffset, std::uint64_t len) {
    const Va va = mmapAnon(len, MAP_SHARED);
    REQUIRE(remapPfnRange(*mm.vmaLookup(va), va, pfnOf(kBar + barOffset), len) == Errno::Ok);
    return va;
  }
  void start(CpuProgram program, const std::string& p) {
    CpuCoreParams cp;
    cp.tlbHitCostPs = 0;
    core = std::make_unique<CpuCore>((p + "cpu0").c_str(), cp, mm, std::move(program));
    core->iSocket.bind(bus.tSocket);
  }

  PhysMem pm;
  Mm mm;
  Dram dram;
  PcieFabric fab;
  PcieFabric::NodeId rc = 0, sw = 0, gpu = 0, nic = 0, nic2 = 0;
  SystemAddressMap map;
  SystemBus bus;
  CoherentOps ops;
  DevPagemap pgmap;
  std::unique_ptr<CpuCore> core;
};

// An SC_THREAD running `body` with its own quantum keeper.
class Thread : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Thread);
  Thread(sc_core::sc_module_name n, std::function<void(tlm_utils::tlm_quantumkeeper&)> body)
      : sc_module(n), body_(std::move(body)) {
    SC_THREAD(run);
  }

 private:
  void run() {
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    body_(qk);
    qk.sync();
  }
  std::function<void(tlm_utils::tlm_quantumkeeper&)> body_;
};

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + seed);
  return v;
}

}  // namespace

TEST_CASE("the CPU reads and writes a BAR mapped with remap_pfn_range through the root complex") {
  Seam s("");
  const Va bar = s.mmapBar(0x3000, 2 * kPageSize);
  const std::vector<std::uint8_t> dev = pattern(100, 3);
  s.pm.write(kBar + 0x3000 + 4000, dev.data(), dev.size());  // crosses into the second page
  s.start({CpuOp::load(-1, bar.value() + 4000, 100), CpuOp::store(-1, bar.value() + kPageSize + 8, 16, 0xc3),
           CpuOp::load(-1, bar.value() + kPageSize + 8, 16)},
          "");
  sc_core::sc_start();
  REQUIRE_FALSE(s.core->killed());
  const auto& r = s.core->results();
  REQUIRE(r.size() == 3);
  CHECK(r[0].err == Errno::Ok);
  CHECK(r[0].data == dev);
  CHECK(r[2].data == std::vector<std::uint8_t>(16, 0xc3));
  std::uint8_t back[16] = {};
  s.pm.read(kBar + 0x3000 + kPageSize + 8, back, sizeof back);  // the store landed in device memory
  CHECK(std::vector<std::uint8_t>(back, back + 16) == std::vector<std::uint8_t>(16, 0xc3));
  CHECK(s.fab.rootComplex(s.rc).stats().counterValue("host_requests") == 4);  // a load crossing pages is 2
  CHECK(s.fab.memory(s.gpu).stats().counterValue("bytes_read") == 116);
  CHECK(s.bus.stats().counterValue("decode_errors") == 0);
}

TEST_CASE("a device-coherent page mapped in the process is read and written by the CPU at its device frame") {
  Seam s("");
  const Va va = s.mmapAnon(2 * kPageSize);
  const Pfn dpfn = pfnOf(kBar) + 5;
  s.mapCoherent(va + kPageSize, dpfn);
  const std::vector<std::uint8_t> dev = pattern(64, 11);
  s.pm.write(paOf(dpfn) + 128, dev.data(), dev.size());
  s.start(
      {CpuOp::load(-1, va.value() + kPageSize + 128, 64), CpuOp::store(-1, va.value() + kPageSize, 8, 0x7e),
       CpuOp::store(-1, va.value(), 8, 0x11), CpuOp::load(-1, va.value(), 8)},
      "");
  sc_core::sc_start();
  REQUIRE_FALSE(s.core->killed());
  const auto& r = s.core->results();
  CHECK(r[0].data == dev);
  CHECK(r[3].data == std::vector<std::uint8_t>(8, 0x11));  // the RAM page next to it still works
  std::uint8_t b[8] = {};
  s.pm.read(paOf(dpfn), b, 8);
  CHECK(std::vector<std::uint8_t>(b, b + 8) == std::vector<std::uint8_t>(8, 0x7e));
  CHECK(s.fab.memory(s.gpu).stats().counterValue("bytes_written") == 8);
  CHECK(s.dram.stats().counterValue("bytes_written") == 8);
}

TEST_CASE("a CPU load from a BAR costs the root complex both ways, the links and the device memory") {
  // Three platforms in one simulation, differing in one latency each: the load's time moves by
  // exactly what the fabric's model says (root complex and links crossed twice, memory once).
  SeamParams base, slowRc, slowLink;
  slowRc.rcLatencyPs = base.rcLatencyPs + 300'000;
  slowLink.linkLatencyPs = base.linkLatencyPs + 50'000;
  SeamParams slowBar = base;
  slowBar.barLatencyPs = base.barLatencyPs + 40'000;
  std::vector<std::unique_ptr<Seam>> seams;
  const SeamParams ps[] = {base, slowRc, slowLink, slowBar};
  for (int i = 0; i < 4; ++i) {
    const std::string p = "p" + std::to_string(i) + "_";
    seams.push_back(std::make_unique<Seam>(p, ps[i]));
    const Va bar = seams.back()->mmapBar(0, kPageSize);
    // The first load takes the TLB miss; the second is the one timed; then a posted store.
    seams.back()->start({CpuOp::load(-1, bar.value(), 64), CpuOp::load(-1, bar.value() + 64, 64),
                         CpuOp::store(-1, bar.value() + 128, 64, 1)},
                        p);
  }
  sc_core::sc_start();
  auto loadPs = [&](int i) {
    const auto& r = seams[i]->core->results()[1];
    return (r.end - r.start).value();
  };
  auto storePs = [&](int i) {
    const auto& r = seams[i]->core->results()[2];
    return (r.end - r.start).value();
  };
  // Root complex 200 ns in + out, 2 links (root port -> switch -> gpu) each way 20 ns, switch
  // 150 ns each way, memory 80 ns: at least 2*200 + 4*20 + 2*150 + 80 = 860 ns plus serialisation.
  CHECK(loadPs(0) >= 860'000);
  CHECK(loadPs(0) < 900'000);
  CHECK(loadPs(1) - loadPs(0) == 2 * 300'000);
  CHECK(loadPs(2) - loadPs(0) == 4 * 50'000);
  CHECK(loadPs(3) - loadPs(0) == 40'000);
  // A store is posted: the CPU waits for the root complex only (and re-walks once: the loads
  // left a clean TLB entry, which a store may not use).
  const std::uint64_t walk = CpuCoreParams{}.tlbMissCostPs;
  CHECK(storePs(0) == base.rcLatencyPs + walk);
  CHECK(storePs(1) == slowRc.rcLatencyPs + walk);
  CHECK(storePs(2) == storePs(0));
}

TEST_CASE("a load from an address no range of the system map holds ends in SIGBUS") {
  Seam s("");
  const Va hole = s.mmapAnon(kPageSize);
  REQUIRE(remapPfnRange(*s.mm.vmaLookup(hole), hole, pfnOf(Pa(0x80'0000'0000ull)), kPageSize) == Errno::Ok);
  s.start({CpuOp::load(-1, hole.value(), 8)}, "");
  sc_core::sc_start();
  CHECK(s.core->killed());
  CHECK(s.core->results()[0].err == Errno::Fault);
  CHECK(s.bus.stats().counterValue("decode_errors") == 1);
}

TEST_CASE("an MMIO doorbell registered on a BAR offset sees the CPU's store and answers its load") {
  Seam s("");
  std::vector<std::uint64_t> rings;
  std::vector<std::uint64_t> ringTimes;
  REQUIRE(s.fab.memory(s.gpu).registerMmio(
              0x10'0000, 0x1000,
              [&](const MmioAccess& a) {
                if (a.isWrite) {
                  std::uint64_t v = 0;
                  std::memcpy(&v, a.data, std::min<std::uint64_t>(a.len, 8));
                  rings.push_back(a.offset << 32 | v);
                  ringTimes.push_back(a.timePs);
                } else {
                  for (std::uint64_t i = 0; i < a.len; ++i) a.data[i] = static_cast<std::uint8_t>(0xd0 + i);
                }
              },
              "doorbells") == Errno::Ok);
  CHECK(s.fab.memory(s.gpu).registerMmio(
            0x10'0800, 0x1000, [](const MmioAccess&) {}, "overlap") == Errno::Inval);
  const Va regs = s.mmapBar(0x10'0000, kPageSize);
  s.start({CpuOp::store(-1, regs.value() + 0x40, 4, 0x05), CpuOp::load(-1, regs.value() + 0x80, 4)}, "");
  sc_core::sc_start();
  REQUIRE_FALSE(s.core->killed());
  REQUIRE(rings.size() == 1);
  CHECK(rings[0] == (0x40ull << 32 | 0x05050505ull));
  // The doorbell rings after the write crossed the root complex, two links and the switch.
  CHECK(ringTimes[0] > s.core->results()[0].end.value());
  CHECK(s.core->results()[1].data == std::vector<std::uint8_t>({0xd0, 0xd1, 0xd2, 0xd3}));
  std::uint8_t b[4] = {};
  s.pm.read(kBar + 0x10'0040, b, 4);  // MMIO does not touch device memory
  CHECK(std::vector<std::uint8_t>(b, b + 4) == std::vector<std::uint8_t>(4, 0));
  CHECK(s.fab.memory(s.gpu).stats().counterValue("mmio_accesses") == 2);
}

TEST_CASE("a peer DMA write into the GPU's BAR under one switch lands in its device-coherent page") {
  Seam s("");
  const Va va = s.mmapAnon(kPageSize);
  const Pfn dpfn = pfnOf(kBar) + 9;
  s.mapCoherent(va, dpfn);
  const std::vector<std::uint8_t> out = pattern(3000, 5);
  std::vector<std::uint8_t> viaNic2(3000);
  CplStatus ws = CplStatus::CompleterAbort, rs = CplStatus::CompleterAbort;
  std::uint64_t writeDone = 0;
  Thread t("dma", [&](tlm_utils::tlm_quantumkeeper& qk) {
    ws = s.fab.engine(s.nic).write(paOf(dpfn).value() + 100, out.size(), out.data(), qk);
    writeDone = sc_core::sc_time_stamp().value() + qk.get_local_time().value();
    // The other NIC reads the same bytes back through the root complex (p2p between root ports).
    rs = s.fab.engine(s.nic2).read(paOf(dpfn).value() + 100, viaNic2.size(), viaNic2.data(), qk);
  });
  // The CPU reads the page after the DMA finished (a compute op keeps it off the bus until then).
  s.start({CpuOp::compute(100'000'000), CpuOp::load(-1, va.value() + 100, 3000)}, "");
  sc_core::sc_start();
  CHECK(ws == CplStatus::SuccessfulCompletion);
  CHECK(rs == CplStatus::SuccessfulCompletion);
  CHECK(writeDone < 100'000'000);
  CHECK(viaNic2 == out);
  CHECK(s.core->results()[1].data == out);
  std::vector<std::uint8_t> direct(3000);
  s.pm.read(paOf(dpfn) + 100, direct.data(), direct.size());
  CHECK(direct == out);
  // Under the switch the write stayed local; nic2's read crossed the root complex.
  CHECK(s.fab.engine(s.nic).stats().counterValue("mwr_tlps") >= 12);
  CHECK(s.fab.rootComplex(s.rc).stats().counterValue("p2p_transactions") ==
        s.fab.engine(s.nic2).stats().counterValue("mrd_tlps"));
}

TEST_CASE("a BAR smaller than its device memory is a window the exporter can point anywhere in it") {
  // 1 GiB of VRAM in PhysMem at its own physical address; a 256 MiB BAR aperture over it.
  PhysMemParams rp;
  rp.ramSize = kRamBytes;
  PhysMem pm(rp, "phys_mem");
  const Pa vram(0x48'0000'0000ull);
  constexpr std::uint64_t kVram = 1ull << 30, kAperture = 256ull << 20;
  REQUIRE(pm.addDeviceRangeAt(vram, kVram / kPageSize, nullptr, nullptr) == Errno::Ok);
  PcieFabric fab("fab");
  PcieMemoryTargetParams host;
  host.sizeBytes = kRamBytes;
  const auto rc = fab.addRootComplex("rc0", PcieRootComplexParams{}, host);
  PcieMemoryTargetParams bar;
  bar.baseAddr = kBar.value();
  bar.sizeBytes = kAperture;
  const auto gpu = fab.addEndpoint("gpu", rc, gen4x16(20'000), Seam::dma(1), bar);
  const auto nic = fab.addEndpoint("nic", rc, gen4x16(20'000), Seam::dma(2));
  fab.finalize();
  PcieMemoryTarget& t = fab.memory(gpu);
  t.setBacking(&pm, vram.value(), kVram);
  // Window [0, 2 MiB) of the aperture now shows VRAM [512 MiB, +2 MiB); the rest is identity.
  REQUIRE(t.mapWindow(0, 512ull << 20, 2ull << 20) == Errno::Ok);
  CHECK(t.windowOffset(0x10) == (512ull << 20) + 0x10);
  CHECK(t.windowOffset((2ull << 20) + 0x10) == (2ull << 20) + 0x10);
  CHECK(t.mapWindow(0, kVram - 4096, 8192) == Errno::Inval);      // past the device memory
  CHECK(t.mapWindow(kAperture - 4096, 0, 8192) == Errno::Inval);  // past the aperture
  CHECK(t.mapWindow(100, 0, 4096) == Errno::Inval);               // unaligned
  const std::vector<std::uint8_t> a = pattern(6000, 1), b = pattern(500, 9);
  CplStatus s1 = CplStatus::CompleterAbort, s2 = CplStatus::CompleterAbort, s3 = CplStatus::CompleterAbort;
  std::vector<std::uint8_t> back(6000);
  Thread th("dma", [&](tlm_utils::tlm_quantumkeeper& qk) {
    // Crosses the window's edge at 2 MiB: the first part lands at 512 MiB, the rest at 2 MiB.
    s1 = fab.engine(nic).write(kBar.value() + (2ull << 20) - 1000, a.size(), a.data(), qk);
    s2 = fab.engine(nic).write(kBar.value() + 0x10, b.size(), b.data(), qk);
    s3 = fab.engine(nic).read(kBar.value() + (2ull << 20) - 1000, back.size(), back.data(), qk);
  });
  sc_core::sc_start();
  CHECK(s1 == CplStatus::SuccessfulCompletion);
  CHECK(s2 == CplStatus::SuccessfulCompletion);
  CHECK(s3 == CplStatus::SuccessfulCompletion);
  CHECK(back == a);
  std::vector<std::uint8_t> got(1000);
  pm.read(vram + (512ull << 20) + (2ull << 20) - 1000, got.data(), got.size());
  CHECK(got == std::vector<std::uint8_t>(a.begin(), a.begin() + 1000));
  got.resize(5000);
  pm.read(vram + (2ull << 20), got.data(), got.size());
  CHECK(got == std::vector<std::uint8_t>(a.begin() + 1000, a.end()));
  got.resize(500);
  pm.read(vram + (512ull << 20) + 0x10, got.data(), got.size());
  CHECK(got == b);
  // Retarget the window: the same aperture bytes now show other VRAM (zeros), the old data stays.
  REQUIRE(t.mapWindow(0, 4ull << 20, 2ull << 20) == Errno::Ok);
  std::vector<std::uint8_t> peeked(500);
  t.peek(kBar.value() + 0x10, peeked.data(), peeked.size());
  CHECK(peeked == std::vector<std::uint8_t>(500, 0));
  pm.read(vram + (512ull << 20) + 0x10, got.data(), got.size());
  CHECK(got == b);
  // Only touched VRAM frames hold bytes: 1 (a, before the edge) + 2 (a, after it) + 1 (b).
  CHECK(pm.dataPages() == 4);
}
