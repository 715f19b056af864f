#pragma once
// Fixture of the dmirror p2p tests: the reference PCIe platform (tests/unit/pcie/topology_fixtures.h:
// gpu0 and gpu1 under switch sw0, gpu2 behind another root port, gpu3 behind another host
// bridge), an IOMMU + DMA API, p2pdma, the RFC checker, and dmirror devices attached to a
// DmirrorP2pFabric: dmirror0 on gpu0 (the importer in most tests), dmirror1 on gpu1 (the
// exporter), dmirror2 on gpu2 (a second importer). One process address space and one open handle
// per device.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror.h"
#include "models/devices/dmirror/dmirror_p2p.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology_desc.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

inline constexpr std::uint64_t kP = kPageSize;

inline DmirrorParams smallDmirror() {
  DmirrorParams p;
  p.chunkBytes = 16ull << 20;
  p.capacityBytes = 64ull << 20;
  return p;
}

inline PhysMemParams ram512() {
  PhysMemParams p;
  p.ramSize = 512ull << 20;
  return p;
}

/// The platform with every host bridge's device id set to `device` (0x1234: off the p2pdma
/// host-bridge allow-list).
inline TopologyDesc withHostBridgeIds(std::uint16_t device) {
  TopologyDesc d = platform();
  for (auto& hb : d.hostBridges) hb.params.device = device;
  return d;
}

inline IommuParams iommuMode(IommuMode mode) {
  IommuParams p;
  p.mode = mode;
  return p;
}

struct DmirrorP2pFixture {
  /// `exporter`: how dmirror1 exports; `importer`: how dmirror0 and dmirror2 behave.
  explicit DmirrorP2pFixture(const DmirrorP2pParams& exporter = {}, const DmirrorP2pParams& importer = {},
                             IommuMode mode = IommuMode::Translate, TopologyDesc desc = platform())
      : pm(ram512()),
        topo(buildTopology(desc)),
        router(*topo, "top.route"),
        iommu("top.iommu", iommuMode(mode)),
        dma("top.dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma"),
        mapper(p2pdma, dma, "top.p2p_dma"),
        checker(violations),
        fabric(router, iommu, dma, mapper, &checker) {
    router.setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    iommu.setChecker(&violations);
    for (const char* n : {"gpu0", "gpu1", "gpu2", "gpu3"})
      REQUIRE(dma.attachDevice(pci(n), pciDmaDeviceParams(pci(n), *topo)) == Errno::Ok);
    const char* gpus[] = {"gpu0", "gpu1", "gpu2"};
    for (unsigned i = 0; i < 3; ++i) {
      devs.push_back(std::make_unique<DmirrorDevice>(pm, i, MemoryType::DevicePrivate, smallDmirror()));
      REQUIRE(fabric.attach(*devs[i], pci(gpus[i]), i == 1 ? exporter : importer) == "");
    }
    mm = std::make_unique<Mm>(pm, "proc");
    for (auto& d : devs) files.push_back(d->open(*mm));
  }
  ~DmirrorP2pFixture() {
    files.clear();  // release: handles give back what they imported
    mm.reset();
    devs.clear();
  }

  PciDev& pci(const std::string& n) { return *topo->findDev(n); }
  DmirrorDevice& dev(unsigned i) { return *devs[i]; }
  Dmirror& handle(unsigned i) { return *devs[i]->handleOf(*files[i]); }
  ImporterMirror& importer(unsigned i) {
    ImporterMirror* m = devs[i]->p2p()->importerOf(handle(i));
    REQUIRE(m);
    return *m;
  }

  Va mapAnon(std::uint64_t len, int prot = PROT_READ | PROT_WRITE) {
    VaResult r = mm->mmap(Va(0), len, prot, MAP_PRIVATE | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// Fill [a, a + pages) with words tag*0x10000 + word index (CPU stores).
  void fill(Va a, std::uint64_t pages, std::uint32_t tag) {
    std::vector<std::uint32_t> w(pages * kP / 4);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = tag * 0x10000 + static_cast<std::uint32_t>(i);
    REQUIRE(copyToUser(*mm, a, w.data(), pages * kP) == Errno::Ok);
  }
  static std::vector<std::uint8_t> pattern(std::uint64_t pages, std::uint32_t tag) {
    std::vector<std::uint8_t> b(pages * kP);
    for (std::size_t i = 0; i < b.size() / 4; ++i) {
      const std::uint32_t v = tag * 0x10000 + static_cast<std::uint32_t>(i);
      std::memcpy(&b[i * 4], &v, 4);
    }
    return b;
  }
  /// One ioctl of device `i` over [a, a + pages) with a fresh user buffer; returns the errno and
  /// the buffer's bytes after the call in `out`.
  Errno ioctl(unsigned i, unsigned cmdNr, Va a, std::uint64_t pages, std::vector<std::uint8_t>* out = nullptr,
              const std::vector<std::uint8_t>* in = nullptr, HmmDmirrorCmd* cmdOut = nullptr) {
    const std::uint64_t bufLen = std::max<std::uint64_t>(pages * kP, kP);
    if (bufLen > bufLen_) {
      buf = mapAnon(bufLen);
      bufLen_ = bufLen;
    }
    if (in) REQUIRE(copyToUser(*mm, buf, in->data(), in->size()) == Errno::Ok);
    HmmDmirrorCmd c;
    c.addr = a.value();
    c.ptr = buf.value();
    c.npages = pages;
    const Errno r = dev(i).ioctl(*files[i], cmdNr, c);
    if (out) {
      out->assign(cmdNr == HMM_DMIRROR_SNAPSHOT ? pages : pages * kP, 0);
      REQUIRE(copyFromUser(*mm, out->data(), buf, out->size()) == Errno::Ok);
    }
    if (cmdOut) *cmdOut = c;
    return r;
  }
  std::vector<std::uint8_t> read(unsigned i, Va a, std::uint64_t pages) {
    std::vector<std::uint8_t> out;
    REQUIRE(ioctl(i, HMM_DMIRROR_READ, a, pages, &out) == Errno::Ok);
    return out;
  }
  std::vector<std::uint8_t> snapshot(unsigned i, Va a, std::uint64_t pages) {
    std::vector<std::uint8_t> out;
    REQUIRE(ioctl(i, HMM_DMIRROR_SNAPSHOT, a, pages, &out) == Errno::Ok);
    return out;
  }
  /// The CPU's view of [a, a + pages).
  std::vector<std::uint8_t> cpu(Va a, std::uint64_t pages) {
    std::vector<std::uint8_t> b(pages * kP);
    REQUIRE(copyFromUser(*mm, b.data(), a, b.size()) == Errno::Ok);
    return b;
  }
  /// Pages of [a, a + pages) now in dmirror `i`'s device memory (the CPU page table's entries).
  std::uint64_t onDevice(unsigned i, Va a, std::uint64_t pages) {
    std::vector<std::uint8_t> s;
    std::uint64_t n = 0;
    REQUIRE(ioctl(i, HMM_DMIRROR_SNAPSHOT, a, pages, &s) == Errno::Ok);
    for (std::uint8_t b : s) n += (b & 0xf0) == HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
    return n;
  }

  PhysMem pm;
  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  InvariantChecker violations;
  P2pChecker checker;
  DmirrorP2pFabric fabric;
  std::vector<std::unique_ptr<DmirrorDevice>> devs;
  std::unique_ptr<Mm> mm;
  std::vector<std::shared_ptr<File>> files;
  Va buf;
  std::uint64_t bufLen_ = 0;
};

}  // namespace hmmsim::test
