// NIC -> NVMe (RFC workload 1) on a machine the platform builder (models/platform) builds from a
// PlatformDesc: devices "nvme" and "nic" created by type name. A kernel thread on the CPU brings
// the controller up, a process maps the controller's BAR0 special vma, the NIC's driver maps the
// queue through its importer mirror and hands it to the NIC, which then drives reads and writes
// with no CPU in the data path. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <systemc>

#include "hmm/importer_mirror.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/common/driver_host.h"
#include "models/devices/common/msi.h"
#include "models/devices/nic/nic_device.h"
#include "models/devices/nic/nic_driver.h"
#include "models/devices/nvme/nvme_device.h"
#include "models/devices/nvme/nvme_driver.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

/// A kernel thread of the platform's CPU: the driver half's DriverHost over Platform::driverAccess.
class PlatformHost : public sc_core::sc_module, public DriverHost {
 public:
  SC_HAS_PROCESS(PlatformHost);
  PlatformHost(sc_core::sc_module_name n, Platform& p, std::function<void(PlatformHost&)> body)
      : sc_module(n), p_(p), body_(std::move(body)) {
    SC_THREAD(run);
  }
  void store(std::uint64_t pa, const void* src, std::size_t len) override {
    access(true, pa, const_cast<void*>(src), len);
  }
  void load(std::uint64_t pa, void* dst, std::size_t len) override { access(false, pa, dst, len); }
  void cpuWork(std::uint64_t ps) override { wait(sc_core::sc_time(static_cast<double>(ps), sc_core::SC_PS)); }
  /// Interrupts come from the platform's controller: a handler calls raised() (one vector here).
  void waitInterrupt(std::uint16_t) override {
    while (pending_ == 0) wait(irq_);
    --pending_;
  }
  void raised() {
    ++pending_;
    irq_.notify(sc_core::SC_ZERO_TIME);
  }
  int errors = 0;

 private:
  void access(bool write, std::uint64_t pa, void* buf, std::size_t len) {
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    if (!p_.driverAccess(write, Pa(pa), static_cast<std::uint8_t*>(buf), len, d)) ++errors;
    wait(d);
  }
  void run() { body_(*this); }
  Platform& p_;
  std::function<void(PlatformHost&)> body_;
  int pending_ = 0;
  sc_core::sc_event irq_;
};

std::vector<std::uint8_t> bytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 31 + seed * 7 + (i >> 9));
  return v;
}

}  // namespace

TEST_CASE(
    "built by the platform: the NIC drives the NVMe queue it mapped from the controller's special vma") {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"nic", "nvme"});
  for (auto& e : d.topology.endpoints) {
    if (e.name == "nvme") e.functions[0].bars = {mem64pref(0, 4 * kMiB)};
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  }
  d.iommu.iommu.mode = IommuMode::Off;  // DMA addresses are physical: the buffers below are RAM
  d.processes = {ProcessDesc{"proc0", {}}};
  d.devices = {DeviceDesc{"nvme", "nvme", "nvme", {}}, DeviceDesc{"nic", "nic", "nic", {}}};
  Platform p("m", d, builtinDevices());
  NvmePlatformDevice& nvme = p.deviceAs<NvmePlatformDevice>("nvme");
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  const PciBar& bar0 = p.pci("nvme").bar(0);
  const std::uint64_t nvmeBar = bar0.bus.value(), cmb = nvmeBar + NvmeParams{}.cmbOffset;
  const std::uint64_t nicBar = p.pci("nic").bar(0).bus.value();
  constexpr std::uint32_t kEntries = 32;
  constexpr std::uint64_t kSrc = 0x0a00'0000ull, kDst = 0x0a80'0000ull;
  // Four 16 KiB writes (PRP lists in the CMB), then reads of the same blocks.
  std::vector<NicStorageRequest> rq;
  for (int pass = 0; pass < 2; ++pass)
    for (std::uint64_t i = 0; i < 4; ++i) {
      NicStorageRequest q;
      q.atPs = 400'000'000 + rq.size() * 150'000'000ull;
      q.write = pass == 0;
      q.slba = 100 + 4 * i;
      q.blocks = 4;
      q.dataAddr = (q.write ? kSrc : kDst) + i * 16384;
      rq.push_back(q);
      if (q.write)
        p.physMem().write(Pa(q.dataAddr), bytes(16384, static_cast<std::uint32_t>(i)).data(), 16384);
    }
  bool ready = false, imported = false, allDone = false;
  std::uint64_t grantsAfter = 1;
  std::shared_ptr<File> file;
  PlatformHost cpu("kthread", p, [&](PlatformHost& h) {
    NvmeDriverParams dp;
    dp.barBase = nvmeBar;
    dp.adminSqPa = 0x0e00'0000ull;
    dp.adminCqPa = 0x0e00'1000ull;
    NvmeDriver drv(h, dp);
    ready = drv.enable();
    drv.setMsix(1, nicBar + nic::kMailbox, 1);
    ready = ready && drv.createIoQueuePair(1, cmb, cmb + 0x1000, kEntries, 1, true) == 0;
    // The process maps the controller's BAR0 (special vma); the NIC driver mirrors it.
    Mm& mm = p.process("proc0");
    file = openDeviceFile(p.physMem(), nvme.exporter(), FMODE_READ | FMODE_WRITE, "nvme0");
    const VaResult va = mm.mmap(Va(0), bar0.size, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
    HmmDmaImporter imp;
    imp.device = &p.pci("nic");
    imp.dma = &p.dma();
    auto mirror = std::make_unique<ImporterMirror>(mm, imp, va.addr, bar0.size >> kPageShift,
                                                   ImporterMirrorParams{}, &p.checker(), "nic.importer");
    NicPeerQueueLayout l;
    l.bar0 = va.addr;
    l.sqOffset = cmb - nvmeBar;
    l.cqOffset = cmb - nvmeBar + 0x1000;
    l.prpListOffset = cmb - nvmeBar + 0x10000;
    l.entries = kEntries;
    const std::optional<NicQueueWriterParams> qw = importPeerQueue(*mirror, l);
    imported = qw.has_value();
    if (!imported) return;
    nic.startQueueWriter(*qw, rq);
    // Sleep until the NIC finished (the CPU takes no part in the I/O), then let go of the mapping.
    for (int i = 0; i < 100 && !allDone; ++i) {
      h.cpuWork(100'000'000);
      allDone = true;
      for (const auto& io : nic.ioRecords()) allDone = allDone && io.done;
    }
    mirror.reset();
    grantsAfter = nvme.exporter().exporter().grantCount();
  });
  sc_core::sc_start();
  REQUIRE(ready);
  REQUIRE(imported);
  CHECK(allDone);
  CHECK(cpu.errors == 0);
  for (std::size_t i = 0; i < rq.size(); ++i) {
    INFO("I/O " << i);
    CHECK(nic.ioRecords()[i].status == 0);
    if (rq[i].write) continue;
    std::vector<std::uint8_t> got(16384);
    p.physMem().read(Pa(rq[i].dataAddr), got.data(), got.size());
    CHECK(got == bytes(16384, static_cast<std::uint32_t>(i - 4)));
  }
  CHECK(nvme.controller().stats().counterValue("writes") == 4);
  CHECK(nvme.controller().stats().counterValue("reads") == 4);
  CHECK(nvme.exporter().exporter().stats().counterValue("vma_p2p_pages") > 0);
  CHECK(grantsAfter == 0);
  CHECK(nic.stats().counterValue("dma_errors") == 0);
  CHECK(p.violations().ok());
}

TEST_CASE(
    "built by the platform: the CPU drives NVMe I/O and takes its completions as MSIs through the interrupt "
    "controller") {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"nvme"});
  for (auto& e : d.topology.endpoints)
    if (e.name == "nvme") e.functions[0].bars = {mem64pref(0, 4 * kMiB)};
  d.iommu.iommu.mode = IommuMode::Off;
  d.devices = {DeviceDesc{"nvme", "nvme", "nvme", {}}};
  Platform p("m", d, builtinDevices());
  NvmePlatformDevice& nvme = p.deviceAs<NvmePlatformDevice>("nvme");
  const std::uint64_t nvmeBar = p.pci("nvme").bar(0).bus.value(), cmb = nvmeBar + NvmeParams{}.cmbOffset;
  constexpr std::uint64_t kBuf = 0x0a00'0000ull, kBack = 0x0a80'0000ull;
  const std::vector<std::uint8_t> data = bytes(8192, 5);
  p.physMem().write(Pa(kBuf), data.data(), data.size());
  std::unique_ptr<PlatformHost> cpu;
  std::uint64_t handled = 0;
  // The driver's completion vector: its handler (on the CPU's driver thread) wakes the kthread.
  const MsiMessage msg = p.interrupts().allocateVector("nvme.q1", 500'000, [&](IrqContext&) {
    ++handled;
    cpu->raised();
  });
  std::vector<nvme::Cqe> cqes;
  cpu = std::make_unique<PlatformHost>("kthread", p, [&](PlatformHost& h) {
    NvmeDriverParams dp;
    dp.barBase = nvmeBar;
    dp.adminSqPa = 0x0e00'0000ull;
    dp.adminCqPa = 0x0e00'1000ull;
    NvmeDriver drv(h, dp);
    if (!drv.enable()) return;
    drv.setMsix(1, msg.address, msg.data);
    if (drv.createIoQueuePair(1, cmb, cmb + 0x1000, 16, 1, true) != 0) return;
    drv.submit(1, nvme::Sqe::readWrite(true, 1, 7, 2, kBuf, kBuf + 4096));
    cqes.push_back(drv.waitCompletion(1));
    drv.submit(1, nvme::Sqe::readWrite(false, 2, 7, 2, kBack, kBack + 4096));
    cqes.push_back(drv.waitCompletion(1));
  });
  sc_core::sc_start();
  REQUIRE(cqes.size() == 2);
  CHECK(cqes[0].status == 0);
  CHECK(cqes[1].status == 0);
  CHECK(cqes[1].cid == 2);
  std::vector<std::uint8_t> got(8192);
  p.physMem().read(Pa(kBack), got.data(), got.size());
  CHECK(got == data);
  CHECK(handled == 2);  // one MSI per completion reached the controller and ran the handler
  CHECK(p.interrupts().handled(msg.data) == 2);
  CHECK(nvme.controller().stats().counterValue("msis") == 2);
  CHECK(cpu->errors == 0);
}
