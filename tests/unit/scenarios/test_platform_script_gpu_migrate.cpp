// A platform script's `migrate` by a GPU takes simulated time (issue 12: "SystemC shells charge
// simulated time for ... migration copies"): the script's event thread waits for the driver's
// copies on the GPU's copy engine, exactly as long as a thread calling the driver with its quantum
// keeper does on a twin machine. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "scenarios/platform_script_run.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"
#include "tests/unit/platform/mapping_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPages = 64, kLen = kPages * kPageSize;
constexpr std::uint64_t kToVramAtPs = 1'000'000'000, kToRamAtPs = 2'000'000'000;  // 1 ms, 2 ms

PlatformDesc machine() {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0"});
  d.processes = {ProcessDesc{"proc0", {}, {mapping("buf", MapKind::Anon, kLen)}}};
  d.devices = {DeviceDesc{"gpu", "gpu0", "gpu0", GpuDeviceParams{}}};
  return d;
}

/// A machine whose process mapping "buf" holds 0x6b bytes.
struct Machine {
  explicit Machine(const std::string& name) : desc(machine()), p(name, desc, builtinDevices()) {
    const std::vector<std::uint8_t> bytes(kLen, 0x6b);
    REQUIRE(copyToUser(mm(), buf(), bytes.data(), kLen) == Errno::Ok);
  }
  Mm& mm() { return p.process("proc0"); }
  Va buf() { return p.mapping("proc0", "buf")->start; }
  GpuDriver& gpu() { return p.deviceAs<GpuPlatformDevice>("gpu0").driver(); }
  std::vector<std::uint8_t> bytes() {
    std::vector<std::uint8_t> b(kLen);
    REQUIRE(copyFromUser(mm(), b.data(), buf(), kLen) == Errno::Ok);
    return b;
  }

  PlatformDesc desc;
  Platform p;
};

}  // namespace

TEST_CASE("a platform script gpu migrate waits for its copies as a driver call with a quantum keeper does") {
  // The script: to VRAM at 1 ms, back at 2 ms.
  Machine scripted("scripted");
  const std::vector<scenario::PlatformOp> ops = scenario::parsePlatformScript(
      ConfigNode::loadString("- {op: migrate, region: buf, device: gpu0, at: 1ms}\n"
                             "- {op: migrate, region: buf, device: gpu0, to: ram, at: 2ms}\n",
                             "s.yaml")
          .elements(),
      {{"buf", "proc0"}}, scripted.desc);
  scenario::PlatformScriptRunner runner(scripted.p, nullptr, ops);
  runner.start();
  // The twin: a thread calls the driver at the same times with its quantum keeper.
  Machine twin("twin");
  std::uint64_t toVramPs = 0, toRamPs = 0, moved = 0, back = 0;
  QkThread th("twin_thread", [&](tlm_utils::tlm_quantumkeeper& qk) {
    auto at = [&](std::uint64_t ps) {
      qk.sync();
      sc_core::wait(sc_core::sc_time::from_value(ps) - sc_core::sc_time_stamp());
    };
    auto now = [&] { return (sc_core::sc_time_stamp() + qk.get_local_time()).value(); };
    at(kToVramAtPs);
    twin.gpu().migrateToVram(twin.mm(), twin.buf(), twin.buf() + kLen, &qk, &moved);
    toVramPs = now() - kToVramAtPs;
    at(kToRamAtPs);
    twin.gpu().migrateToRam(twin.mm(), twin.buf(), twin.buf() + kLen, &qk, &back);
    toRamPs = now() - kToRamAtPs;
  });
  sc_core::sc_start();
  runner.finish();
  std::vector<std::string> failures;
  runner.check(failures);
  CHECK(failures.empty());
  CHECK(moved == kPages);
  CHECK(back == kPages);
  const StatsGroup& s = runner.stats();
  CHECK(s.counterValue("migrations") == 2);
  CHECK(s.counterValue("migrated_pages") == 2 * kPages);
  // 256 KiB each way over a Gen4 x16 link (below 32 GB/s): at least 8 us per migration.
  CHECK(toVramPs >= kLen * 1000 / 32);
  CHECK(toRamPs >= kLen * 1000 / 32);
  CHECK(s.counterValue("migrate_ps") == toVramPs + toRamPs);
  CHECK(scripted.gpu().hw().stats().counterValue("copy_bytes_to_vram") == kLen);
  CHECK(scripted.gpu().hw().stats().counterValue("copy_bytes_from_vram") == kLen);
  CHECK(scripted.bytes() == std::vector<std::uint8_t>(kLen, 0x6b));
  CHECK(twin.bytes() == std::vector<std::uint8_t>(kLen, 0x6b));
  CHECK(scripted.p.violations().ok());
}
