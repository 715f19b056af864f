#pragma once
// A small platform for the NVMe and NIC tests, wired by hand like test_platform_seam: DRAM and a
// system bus in front of root complex rc0; rc0 -> switch sw -> {nvme (BAR0: registers, MSI-X,
// CMB), nic (BAR0: registers), gpu (BAR: 64 MiB of device memory)}. BAR bytes live in PhysMem.
// A CpuHost is a kernel thread on a CPU: loads and stores by physical address through the system
// bus, CPU time, and interrupts (a vector fires when the NVMe controller's completion event
// does, plus the interrupt latency: the platform's MSI routing stands in here).
// Include this first in a test (it needs SystemC's dynamic processes).
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <systemc>
#include <tlm>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/system_address_map.h"
#include "models/cpu_mmu/system_bus.h"
#include "models/devices/nic/nic.h"
#include "models/devices/nic/nic_driver.h"
#include "models/devices/nvme/nvme.h"
#include "models/devices/nvme/nvme_driver.h"
#include "models/pcie/pcie_fabric.h"

namespace hmmsim {
namespace test {

constexpr std::uint64_t kRamBytes = 256ull << 20;
constexpr std::uint64_t kNvmeBar = 0x40'0000'0000ull;
constexpr std::uint64_t kNicBar = 0x40'1000'0000ull;
constexpr std::uint64_t kGpuBar = 0x40'2000'0000ull;
constexpr std::uint64_t kGpuBarBytes = 64ull << 20;
constexpr std::uint64_t kMsiMailbox = 0x0f00'0000ull;  // MSI writes land here (DRAM)
constexpr std::uint64_t kAdminSq = 0x0e00'0000ull;
constexpr std::uint64_t kAdminCq = 0x0e00'1000ull;

inline PcieLinkParams gen4(std::uint32_t lanes) {
  PcieLinkParams l;
  l.config.gen = PcieGen::Gen4;
  l.config.lanes = lanes;
  return l;
}

inline PcieDmaEngineParams dmaParams(std::uint8_t bus, std::uint32_t lanes) {
  PcieDmaEngineParams d;
  d.requester = Bdf{0, bus, 0, 0};
  d.link.gen = PcieGen::Gen4;
  d.link.lanes = lanes;
  return d;
}

struct MachineParams {
  NvmeParams nvme;
  NicParams nic;
  std::uint32_t nvmeLanes = 16;
  std::uint32_t nicLanes = 16;
  PcieGen nicGen = PcieGen::Gen4;    ///< the NIC's link
  PcieGen gpuGen = PcieGen::Gen4;    ///< the GPU's link
  std::uint64_t nvmeBar = kNvmeBar;  ///< BAR addresses (as an enumeration assigned them)
  std::uint64_t nicBar = kNicBar;
  std::uint64_t gpuBar = kGpuBar;
};

struct Machine {
  explicit Machine(const std::string& p, MachineParams mp = {})
      : pm(ram(), p + "phys_mem"),
        dram((p + "dram").c_str(), DramParams{}, pm),
        fab(p + "fab"),
        bus((p + "bus").c_str(), map) {
    PcieMemoryTargetParams host;
    host.sizeBytes = kRamBytes;
    rc = fab.addRootComplex("rc0", PcieRootComplexParams{}, host, true);
    sw = fab.addSwitch("sw", rc, gen4(16), PcieSwitchParams{});
    mp.nvme.barBase = mp.nvmeBar;
    PcieMemoryTargetParams nb;
    nb.baseAddr = mp.nvmeBar;
    nb.sizeBytes = mp.nvme.barBytes;
    nvmeNode = fab.addEndpoint("nvme", sw, gen4(mp.nvmeLanes), dmaParams(2, mp.nvmeLanes), nb);
    mp.nic.barBase = mp.nicBar;
    PcieMemoryTargetParams cb;
    cb.baseAddr = mp.nicBar;
    cb.sizeBytes = mp.nic.barBytes;
    PcieLinkParams nicLink = gen4(mp.nicLanes);
    nicLink.config.gen = mp.nicGen;
    PcieDmaEngineParams nicDma = dmaParams(3, mp.nicLanes);
    nicDma.link.gen = mp.nicGen;
    nicNode = fab.addEndpoint("nic", sw, nicLink, nicDma, cb);
    PcieMemoryTargetParams gb;
    gb.baseAddr = mp.gpuBar;
    gb.sizeBytes = kGpuBarBytes;
    PcieLinkParams gpuLink = gen4(16);
    gpuLink.config.gen = mp.gpuGen;
    gpuNode = fab.addEndpoint("gpu", sw, gpuLink, dmaParams(4, 16), gb);
    fab.finalize();
    fab.rootComplex(rc).memOut.bind(dram.tSocket);
    // BAR bytes in PhysMem: the NVMe BAR0 (its CMB is device memory) and the GPU's memory.
    REQUIRE(pm.addDeviceRangeAt(Pa(mp.nvmeBar), mp.nvme.barBytes / kPageSize, nullptr, nullptr) == Errno::Ok);
    fab.memory(nvmeNode).setBacking(&pm, mp.nvmeBar, mp.nvme.barBytes);
    REQUIRE(pm.addDeviceRangeAt(Pa(mp.gpuBar), kGpuBarBytes / kPageSize, nullptr, nullptr) == Errno::Ok);
    fab.memory(gpuNode).setBacking(&pm, mp.gpuBar, kGpuBarBytes);
    REQUIRE(map.add(AddressRange{Pa(0), kRamBytes, 0, 0, "dram"}).empty());
    REQUIRE(
        map.add(AddressRange{Pa(mp.nvmeBar), mp.nvme.barBytes, 1, mp.nvmeBar, "rc0 mmio (nvme)"}).empty());
    REQUIRE(map.add(AddressRange{Pa(mp.nicBar), mp.nic.barBytes, 1, mp.nicBar, "rc0 mmio (nic)"}).empty());
    REQUIRE(map.add(AddressRange{Pa(mp.gpuBar), kGpuBarBytes, 1, mp.gpuBar, "rc0 mmio (gpu)"}).empty());
    bus.iSocket.bind(dram.tSocket);
    bus.iSocket.bind(fab.rootComplex(rc).hostIn);
    nvme = std::make_unique<NvmeController>((p + "nvme").c_str(), mp.nvme, fab.engine(nvmeNode),
                                            fab.memory(nvmeNode), pm, mp.nvmeBar);
    nic = std::make_unique<Nic>((p + "nic").c_str(), mp.nic, fab.engine(nicNode), fab.memory(nicNode));
  }
  static PhysMemParams ram() {
    PhysMemParams r;
    r.ramSize = kRamBytes;
    return r;
  }
  std::vector<std::uint8_t> readPhys(std::uint64_t pa, std::size_t n) const {
    std::vector<std::uint8_t> v(n);
    pm.read(Pa(pa), v.data(), n);
    return v;
  }

  PhysMem pm;
  Dram dram;
  PcieFabric fab;
  SystemAddressMap map;
  SystemBus bus;
  PcieFabric::NodeId rc = 0, sw = 0, nvmeNode = 0, nicNode = 0, gpuNode = 0;
  std::unique_ptr<NvmeController> nvme;
  std::unique_ptr<Nic> nic;
};

/// A kernel thread on a CPU running `body` (see the file comment).
class CpuHost : public sc_core::sc_module, public DriverHost {
 public:
  tlm_utils::simple_initiator_socket<CpuHost> iSocket{"iSocket"};
  SC_HAS_PROCESS(CpuHost);
  CpuHost(sc_core::sc_module_name n, SystemBus& bus, std::function<void(CpuHost&)> body,
          std::uint64_t interruptLatencyPs = 2'000'000)
      : sc_module(n), body_(std::move(body)), irqLatencyPs_(interruptLatencyPs) {
    iSocket.bind(bus.tSocket);
    SC_THREAD(run);
  }
  /// Vector `v` fires whenever `ev` is notified.
  void connectInterrupt(std::uint16_t v, sc_core::sc_event& ev) {
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.set_sensitivity(&ev);
    o.dont_initialize();
    sc_core::sc_spawn(
        [this, v]() {
          ++pending_[v];
          irq_.notify(sc_core::SC_ZERO_TIME);
        },
        sc_core::sc_gen_unique_name("irq"), &o);
  }
  void store(std::uint64_t pa, const void* src, std::size_t len) override {
    transport(true, pa, const_cast<void*>(src), len);
  }
  void load(std::uint64_t pa, void* dst, std::size_t len) override { transport(false, pa, dst, len); }
  void cpuWork(std::uint64_t ps) override { wait(sc_core::sc_time(static_cast<double>(ps), sc_core::SC_PS)); }
  void waitInterrupt(std::uint16_t v) override {
    while (pending_[v] == 0) wait(irq_);
    pending_[v] = 0;
    cpuWork(irqLatencyPs_);
    ++interrupts;
  }
  std::uint64_t nowPs() const { return sc_core::sc_time_stamp().value(); }
  int busErrors = 0;
  int interrupts = 0;

 private:
  void transport(bool write, std::uint64_t pa, void* buf, std::size_t len) {
    tlm::tlm_generic_payload gp;
    gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
    gp.set_address(pa);
    gp.set_data_ptr(static_cast<unsigned char*>(buf));
    gp.set_data_length(static_cast<unsigned>(len));
    gp.set_streaming_width(static_cast<unsigned>(len));
    gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    iSocket->b_transport(gp, d);
    if (!gp.is_response_ok()) ++busErrors;
    wait(d);
  }
  void run() { body_(*this); }
  std::function<void(CpuHost&)> body_;
  std::uint64_t irqLatencyPs_;
  std::map<std::uint16_t, int> pending_;
  sc_core::sc_event irq_;
};

inline std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    v[i] = static_cast<std::uint8_t>(x >> 24);
  }
  return v;
}

}  // namespace test
}  // namespace hmmsim
