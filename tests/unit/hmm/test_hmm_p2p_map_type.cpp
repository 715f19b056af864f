// The address an importer receives for a peer's memory follows the p2pdma map type between the two
// devices: bus address (BUS_ADDR), IOVA through the IOMMU or the CPU physical address
// (THRU_HOST_BRIDGE with the IOMMU on / off or passthrough), refusal (NOT_SUPPORTED: fallback for
// device memory, an error for a special vma). Every address is checked by routing a real DMA.

#include <catch2/catch.hpp>

#include "tests/unit/hmm/p2p_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;

struct Outcome {
  P2pMapType devmemType = P2pMapType::Unknown;
  P2pMapType vmaType = P2pMapType::Unknown;
  HmmDmaKind devmemKind = HmmDmaKind::None;
  DmaAddr devmemAddr;
  HmmStatus vmaStatus = HmmStatus::Inval;
  Errno vmaError = Errno::Ok;
  DmaAddr vmaAddr;
  Pa slotCpu;           // CPU physical address of the BAR slot of the special page
  bool dataOk = false;  // both read back byte exact (when mapped)
};

/// Maps a migrated anonymous page (peer devmem) and a special page for `importer`.
Outcome run(IommuMode mode, const TopologyDesc& desc, const std::string& importer) {
  P2pFixture f(mode, desc);
  Outcome o;
  const Va a = f.mapAnon(kP);
  f.store(a, 0x5151);
  f.migrateToDevice(a, a + kP);
  REQUIRE(f.pteAt(a).isDevicePrivateEntry());
  f.exporterStore(0, 0x7272);
  const Va s = f.mapSpecial(1);
  ImporterMirror& m = f.importer(importer, a, 1);
  REQUIRE(m.map(a, a + kP, false) == HmmStatus::Ok);
  o.devmemType = f.devmemExporter.lastType;
  o.devmemKind = m.kindAt(a);
  o.devmemAddr = m.addrAt(a);
  bool ok = dmaLoad(m, a) == 0x5151;
  ImporterMirror& ms = f.importer(importer, s, 1);
  o.vmaStatus = ms.map(s, s + kP, false);
  o.vmaError = ms.lastP2pError();
  o.vmaType = f.vmaExporter.lastType;
  if (o.vmaStatus == HmmStatus::Ok) {
    o.vmaAddr = ms.addrAt(s);
    ok = ok && dmaLoad(ms, s) == 0x7272;
    for (std::size_t i = 0; i < f.bar.slotPfn.size(); ++i)
      if (f.bar.slotPfn[i] == f.vmaExporter.frames[0]) o.slotCpu = f.bar.cpuOf(i);
  }
  o.dataOk = ok;
  CHECK(f.violations.ok());
  return o;
}

TopologyDesc withHostBridgeIds(std::uint16_t device) {
  TopologyDesc d = platform();
  for (auto& hb : d.hostBridges) hb.params.device = device;
  return d;
}
}  // namespace

TEST_CASE("a peer under the same switch gets gpu1's bus address (BUS_ADDR), IOMMU or not",
          "[hmm][p2p][map_type]") {
  for (IommuMode mode : {IommuMode::Translate, IommuMode::Off, IommuMode::Passthrough}) {
    const Outcome o = run(mode, platform(), "gpu0");
    CHECK(o.devmemType == P2pMapType::BusAddr);
    CHECK(o.vmaType == P2pMapType::BusAddr);
    CHECK(o.devmemKind == HmmDmaKind::DevmemP2p);
    REQUIRE(o.vmaStatus == HmmStatus::Ok);
    // The platform's windows have bus == CPU addresses: the bus address is the slot's address.
    CHECK(o.vmaAddr.value() == o.slotCpu.value());
    CHECK(o.dataOk);
  }
}

TEST_CASE("a peer behind another root port goes through the host bridge: an IOVA with the IOMMU on",
          "[hmm][p2p][map_type]") {
  const Outcome o = run(IommuMode::Translate, platform(), "gpu2");
  CHECK(o.devmemType == P2pMapType::ThruHostBridge);
  CHECK(o.vmaType == P2pMapType::ThruHostBridge);
  REQUIRE(o.vmaStatus == HmmStatus::Ok);
  CHECK(o.vmaAddr.value() != o.slotCpu.value());  // an IOVA, translated by the IOMMU
  CHECK(o.dataOk);
}

TEST_CASE(
    "through the host bridge with the IOMMU off or in passthrough the importer gets the CPU physical address",
    "[hmm][p2p][map_type]") {
  for (IommuMode mode : {IommuMode::Off, IommuMode::Passthrough}) {
    const Outcome o = run(mode, platform(), "gpu2");
    CHECK(o.vmaType == P2pMapType::ThruHostBridge);
    REQUIRE(o.vmaStatus == HmmStatus::Ok);
    CHECK(o.vmaAddr.value() == o.slotCpu.value());
    CHECK(o.dataOk);
  }
}

TEST_CASE("across root complexes the allow-listed host bridges give THRU_HOST_BRIDGE",
          "[hmm][p2p][map_type]") {
  const Outcome o = run(IommuMode::Translate, platform(), "gpu3");
  CHECK(o.devmemType == P2pMapType::ThruHostBridge);
  CHECK(o.devmemKind == HmmDmaKind::DevmemP2p);
  CHECK(o.vmaStatus == HmmStatus::Ok);
  CHECK(o.dataOk);
}

TEST_CASE("host bridges off the allow-list: device memory falls back to RAM, a special vma is an error",
          "[hmm][p2p][map_type]") {
  for (const char* imp : {"gpu2", "gpu3"}) {
    const Outcome o = run(IommuMode::Translate, withHostBridgeIds(0x1234), imp);
    CHECK(o.devmemType == P2pMapType::NotSupported);
    CHECK(o.devmemKind == HmmDmaKind::System);  // migrated back and mapped as RAM
    CHECK(o.vmaType == P2pMapType::NotSupported);
    CHECK(o.vmaStatus == HmmStatus::Fault);
    CHECK(o.vmaError == Errno::Fault);
    CHECK(o.dataOk);
  }
  // The same switch still works without any host bridge.
  const Outcome o = run(IommuMode::Translate, withHostBridgeIds(0x1234), "gpu0");
  CHECK(o.devmemType == P2pMapType::BusAddr);
}

TEST_CASE("ACS redirect on the switch ports sends same-switch peers through the host bridge",
          "[hmm][p2p][map_type]") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsCr);
  setPortAcs(d, "sw0.dp1", kPciAcsRr | kPciAcsCr);
  const Outcome on = run(IommuMode::Translate, d, "gpu0");
  CHECK(on.devmemType == P2pMapType::ThruHostBridge);
  REQUIRE(on.vmaStatus == HmmStatus::Ok);
  CHECK(on.vmaAddr.value() != on.slotCpu.value());
  CHECK(on.dataOk);
  // ACS redirect with a host bridge off the allow-list: refused.
  TopologyDesc d2 = withHostBridgeIds(0x1234);
  setPortAcs(d2, "sw0.dp0", kPciAcsRr | kPciAcsCr);
  setPortAcs(d2, "sw0.dp1", kPciAcsRr | kPciAcsCr);
  const Outcome off = run(IommuMode::Translate, d2, "gpu0");
  CHECK(off.devmemType == P2pMapType::NotSupported);
  CHECK(off.devmemKind == HmmDmaKind::System);
  CHECK(off.vmaStatus == HmmStatus::Fault);
}
