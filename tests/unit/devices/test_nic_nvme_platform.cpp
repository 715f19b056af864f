// NIC -> NVMe (RFC workload 1) on a machine the platform builder (models/platform) builds from a
// PlatformDesc: devices "nvme" and "nic" created by type name, driven by the NvmeViaNic workload
// (models/platform/nvme_via_nic.h). P2p: a kernel thread brings the controller up, a process maps
// the controller's BAR0 special vma, the NIC's driver maps the queue through its importer mirror
// and hands it to the NIC, which then drives writes and reads with no CPU in the data path. Cpu:
// the CPU takes the NIC's receive interrupt and submits into a host-memory queue. The last test
// drives the NVMe driver half directly from a CPU thread. Assertions after sc_start().
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
#include "models/platform/nvme_via_nic.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/nic_nvme_platform_desc.h"
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

/// Runs `w` to the end and checks what every run of nicNvmeWorkload must give: the controller
/// up, every command done without a bus error, check() clean, all 8 commands exact.
void runClean(NvmeViaNic& w) {
  w.start();
  sc_core::sc_start();
  w.finish();
  REQUIRE(w.ready());
  CHECK(w.done());
  CHECK(w.busErrors() == 0);
  std::vector<std::string> failures;
  w.check("", failures);
  CHECK(failures.empty());
  CHECK(w.stats().counterValue("commands_exact") == 8);
}

}  // namespace

TEST_CASE(
    "built by the platform: the NIC drives the NVMe queue it mapped from the controller's special vma") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  NvmePlatformDevice& nvme = p.deviceAs<NvmePlatformDevice>("nvme");
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::P2p));
  w.start();
  sc_core::sc_start();
  w.finish();
  REQUIRE(w.ready());
  REQUIRE(w.imported());
  CHECK(w.done());
  CHECK(w.busErrors() == 0);
  for (std::size_t i = 0; i < w.ios().size(); ++i) {
    INFO("I/O " << i);
    CHECK(w.ios()[i].done);
    CHECK(w.ios()[i].status == 0);
    CHECK(nic.ioRecords()[i].status == 0);
  }
  std::vector<std::string> failures;
  w.check("", failures);
  CHECK(failures.empty());
  CHECK(w.stats().counterValue("commands_exact") == 8);  // media after the writes, buffers after the reads
  CHECK(nvme.controller().stats().counterValue("writes") == 4);
  CHECK(nvme.controller().stats().counterValue("reads") == 4);
  CHECK(nvme.exporter().exporter().stats().counterValue("vma_p2p_pages") > 0);
  CHECK(w.grantsAfterRelease() == 0);
  CHECK(nic.stats().counterValue("dma_errors") == 0);
  CHECK(nic.stats().counterValue("sqes_written") == 8);
  // No CPU in the data path: no interrupt, no submission byte in system memory.
  CHECK(p.interrupts().stats().counterValue("interrupts") == 0);
  CHECK(w.stats().counterValue("cpu_interrupts") == 0);
  CHECK(w.queueSystemMemoryBytes() == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("built by the platform: the CPU takes the NIC's receive interrupt and submits to a host SQ") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  NvmePlatformDevice& nvme = p.deviceAs<NvmePlatformDevice>("nvme");
  Nic& nic = p.deviceAs<NicPlatformDevice>("nic").nic();
  NvmeViaNic w(p, nicNvmeWorkload(NvmeViaNicPath::Cpu));
  runClean(w);
  CHECK(nvme.controller().stats().counterValue("writes") == 4);
  CHECK(nvme.controller().stats().counterValue("reads") == 4);
  CHECK(nvme.controller().stats().counterValue("msis") == 8);
  CHECK(nic.stats().counterValue("rx_msis") == 8);
  CHECK(nic.stats().counterValue("sqes_written") == 0);
  // One receive and one completion interrupt per request (they are 150 us apart).
  CHECK(p.interrupts().stats().counterValue("handled") == 16);
  CHECK(w.stats().counterValue("cpu_interrupts") == 16);
  CHECK(w.stats().counterValue("cpu_handler_ps") >= 8 * (2'000'000 + 1'000'000 + 500'000));
  // Request records, SQEs, PRP lists and CQEs cross system memory.
  CHECK(w.queueSystemMemoryBytes() >= 8 * (32 + 64 + 16));
  CHECK(p.violations().ok());
}

TEST_CASE("nvme_via_nic check() names a read whose buffer differs from the blocks stored") {
  Platform p("m", nicNvmeDesc(), builtinDevices());
  NvmeViaNicParams wp = nicNvmeWorkload(NvmeViaNicPath::Cpu);
  wp.op = NvmeViaNicOp::Read;
  wp.commands = 4;
  wp.intervalPs = 2'000'000;
  NvmeViaNic w(p, wp);
  w.start();
  sc_core::sc_start();
  REQUIRE(w.done());
  // One byte of request 2's buffer changes after its read completed: the check must see it.
  std::uint8_t b = 0;
  const Pa at = Pa(w.requestBuffer(2) + 100);
  p.physMem().read(at, &b, 1);
  b ^= 0xff;
  p.physMem().write(at, &b, 1);
  w.finish();
  CHECK(w.stats().counterValue("commands") == 4);
  CHECK(w.stats().counterValue("commands_exact") == 3);
  std::vector<std::string> failures;
  w.check("at: ", failures);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0] == "at: request 2 (read): the data differs from what was sent");
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

namespace {
/// One run of `path` with the IOMMU translating: the queues, PRP lists, receive ring and data
/// buffers are mapped through the DMA API, so the devices see IOVAs, not physical addresses.
void runTranslated(NvmeViaNicPath path, std::uint64_t maps) {
  PlatformDesc d = nicNvmeDesc();
  d.iommu.iommu.mode = IommuMode::Translate;
  Platform p("m", d, builtinDevices());
  NvmeViaNic w(p, nicNvmeWorkload(path));
  for (std::size_t i = 0; i < w.ios().size(); ++i) {
    INFO("buffer " << i);
    CHECK(w.requestBufferDma(i) != w.requestBuffer(i));  // an IOVA
  }
  runClean(w);  // 8 commands exact: every byte through the IOMMU, both ways
  const StatsGroup& io = p.iommu().stats();
  CHECK(io.counterValue("maps") == maps);
  CHECK(io.counterValue("translations") >= 8 * 4);  // every 4 KiB data page at least
  CHECK(io.counterValue("faults") == 0);
  CHECK(p.violations().ok());
}
}  // namespace

TEST_CASE("nvme_via_nic p2p with the IOMMU translating: data buffers and admin queues at IOVAs") {
  runTranslated(NvmeViaNicPath::P2p, 8 + 2);  // the buffers, the admin SQ and CQ
}

TEST_CASE("nvme_via_nic cpu with the IOMMU translating: queues, PRPs, rx ring and buffers at IOVAs") {
  runTranslated(NvmeViaNicPath::Cpu, 8 + 2 + 4);  // and the I/O SQ, CQ, PRP lists, receive ring
}
