// dmirror's migration copies on the built platform take simulated time: the migrating thread (a
// driver thread's ioctl, a CPU's fault on a device-private page) waits copy_latency + 4 KiB at
// copy_bandwidth per page, measured against a twin machine whose copies are free (issue 12:
// "SystemC shells charge simulated time for ... migration copies"). Assertions after sc_start().
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPages = 8, kLen = kPages * kPageSize;
constexpr std::uint64_t kCpuLoadAtPs = 100'000'000;  // 100 us: after the migration to the device
constexpr std::uint64_t kBackAtPs = 200'000'000;     // 200 us: the rest goes back

PlatformDesc machine(bool freeCopies) {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0"});
  d.processes = {ProcessDesc{"proc0", {}}};
  CpuDesc cpu;
  cpu.name = "cpu0";
  cpu.process = "proc0";
  d.cpus.push_back(cpu);
  DmirrorDeviceParams dp;
  dp.dmirror.chunkBytes = 16ull << 20;
  dp.dmirror.capacityBytes = 32ull << 20;
  if (freeCopies) {
    dp.dmirror.copy.bytesPerSecond = 1e30;  // 4 KiB in 0 ps
    dp.dmirror.copy.perPageLatencyPs = 0;
  }
  d.devices = {DeviceDesc{"dmirror", "mirror0", "", dp}};
  return d;
}

/// One machine: a driver thread migrates 8 pages to the dmirror, the CPU loads one of them (its
/// fault migrates that page back), the driver migrates the rest back.
struct Run {
  Run(const std::string& name, bool freeCopies) : p(name, machine(freeCopies), builtinDevices()) {
    Mm& mm = p.process("proc0");
    base = mm.mmap(Va(0), kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
    out = mm.mmap(Va(0), kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
    const std::vector<std::uint8_t> bytes(kLen, 0x5a);
    REQUIRE(copyToUser(mm, base, bytes.data(), kLen) == Errno::Ok);
    p.startCpu("cpu0", {CpuOp::until(kCpuLoadAtPs), CpuOp::load(-1, (base + 3 * kPageSize).value(), 8)});
    DmirrorDevice& mirror = p.deviceAs<DmirrorPlatformDevice>("mirror0").dmirror();
    file = mirror.open(mm);
    driver =
        std::make_unique<QkThread>((name + "_drv").c_str(), [this, &mirror](tlm_utils::tlm_quantumkeeper&) {
          auto migrate = [&](unsigned cmd, std::uint64_t& took) {
            HmmDmirrorCmd c;
            c.addr = base.value();
            c.ptr = out.value();
            c.npages = kPages;
            const std::uint64_t t0 = sc_core::sc_time_stamp().value();
            errs.push_back(mirror.ioctl(*file, cmd, c));
            took = sc_core::sc_time_stamp().value() - t0;
            return c.cpages;
          };
          toDev = migrate(HMM_DMIRROR_MIGRATE_TO_DEV, toDevPs);
          sc_core::wait(sc_core::sc_time(double(kBackAtPs), sc_core::SC_PS) - sc_core::sc_time_stamp());
          toSys = migrate(HMM_DMIRROR_MIGRATE_TO_SYS, toSysPs);
        });
  }
  ~Run() { file.reset(); }
  std::uint64_t loadPs() {
    const CpuOpResult& r = p.cpu("cpu0").results().at(1);
    return (r.end - r.start).value();
  }

  Platform p;
  Va base, out;
  std::shared_ptr<File> file;
  std::unique_ptr<QkThread> driver;
  std::vector<Errno> errs;
  std::uint64_t toDev = 0, toSys = 0, toDevPs = 0, toSysPs = 0;
};

}  // namespace

TEST_CASE("on the platform dmirror's migration copies delay the migrating thread and a CPU's fault") {
  Run timed("timed", false), free("free", true);
  sc_core::sc_start();
  const MigrateCopyParams c;
  const std::uint64_t perPage = 256'000 + c.perPageLatencyPs;  // 4 KiB at 16 GB/s + 1 us
  REQUIRE(c.bytesPerSecond == 16e9);
  for (Run* r : {&timed, &free}) {
    CHECK(r->errs == std::vector<Errno>{Errno::Ok, Errno::Ok});
    CHECK(r->toDev == kPages);
    CHECK(r->toSys == kPages - 1);  // the CPU's fault brought page 3 back
    CHECK(r->p.cpu("cpu0").results().at(1).data == std::vector<std::uint8_t>(8, 0x5a));
    CHECK(r->p.violations().ok());
  }
  CHECK(timed.toDevPs - free.toDevPs == kPages * perPage);
  CHECK(timed.toSysPs - free.toSysPs == (kPages - 1) * perPage);
  CHECK(timed.loadPs() - free.loadPs() == perPage);  // migrate_to_ram of one page
  CHECK(timed.p.deviceAs<DmirrorPlatformDevice>("mirror0").dmirror().copier().pendingPs() == 0);
}
