// The RFC's p2p paths through hmm_range_fault and the importer's DMA-map step: special vmas
// (RFC 3/5, 5/5), device memory (RFC 4/5) with its fallback, and the address an importer gets
// under each p2pdma map type. Data is checked byte for byte through the PCIe route.

#include <catch2/catch.hpp>

#include "tests/unit/hmm/p2p_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;

/// hmmRangeFault over [start, end) for `importer` with the RFC's address array.
HmmStatus rangeFaultFor(P2pFixture& f, Device* importer, Va start, Va end, std::vector<unsigned long>& pfns,
                        std::vector<DmaAddr>& pas, unsigned long defaultFlags, HmmRange* out = nullptr) {
  const std::uint64_t n = (end - start) >> kPageShift;
  pfns.assign(n, 0);
  pas.assign(n, DmaAddr(0));
  HmmRange r;
  r.notifier = &f.sub;
  r.notifierSeq = f.sub.readBegin();
  r.start = start;
  r.end = end;
  r.hmmPfns = pfns.data();
  r.defaultFlags = defaultFlags;
  r.importer = importer;
  r.p2pAddrs = importer ? pas.data() : nullptr;
  MmapReadLock l(*f.mm);
  const HmmStatus st = hmmRangeFault(r);
  if (out) *out = r;
  return st;
}
}  // namespace

// ---- special vmas (RFC 3/5, 5/5) ---------------------------------------------------------------

TEST_CASE("without an importer a special vma keeps the VM_IO/VM_PFNMAP rules and p2pMap is not called",
          "[hmm][p2p]") {
  P2pFixture f;
  const Va a = f.mapSpecial(4);
  std::vector<unsigned long> pfns;
  std::vector<DmaAddr> pas;
  REQUIRE(rangeFaultFor(f, nullptr, a, a + 4 * kP, pfns, pas, 0) == HmmStatus::Ok);
  for (unsigned long e : pfns) CHECK(e == HMM_PFN_ERROR);
  CHECK(rangeFaultFor(f, nullptr, a, a + 4 * kP, pfns, pas, HMM_PFN_REQ_FAULT) == HmmStatus::Fault);
  CHECK(f.vmaExporter.mapCalls == 0);
}

TEST_CASE(
    "hmmRangeFault with an importer maps a special vma through p2pMap and marks the entries HMM_PFN_P2P",
    "[hmm][p2p]") {
  P2pFixture f;
  const Va a = f.mapSpecial(4);
  std::vector<unsigned long> pfns;
  std::vector<DmaAddr> pas;
  HmmStats st("hmm");
  HmmRange r;
  REQUIRE(rangeFaultFor(f, &f.pci("gpu0"), a, a + 4 * kP, pfns, pas, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
                        &r) == HmmStatus::Ok);
  CHECK(f.vmaExporter.mapCalls == 1);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(hmmPfnIsP2p(pfns[i]));
    CHECK((pfns[i] & HMM_PFN_WRITE) != 0);
    CHECK((pfns[i] & HMM_PFN_VALID) == 0);
  }
  // gpu0 and gpu1 share switch sw0: the addresses are gpu1's BAR bus addresses.
  CHECK(f.vmaExporter.lastType == P2pMapType::BusAddr);
  const BusAddr base = pciBusAddress(f.pci("gpu1"), kExportBar);
  for (DmaAddr p : pas)
    CHECK(
        (p.value() >= base.value() && p.value() - base.value() < pciResourceLen(f.pci("gpu1"), kExportBar)));
  // The caller owns them: undo.
  CHECK(hmmRangeP2pUnmap(r, a, a + 4 * kP) == Errno::Ok);
  CHECK(f.vmaExporter.grants.empty());
  CHECK(f.bar.used() == 0);
}

TEST_CASE("a VM_MIXEDMAP vma is walked as today without an importer", "[hmm][p2p]") {
  // The mixedmap rule of current mainline is untouched: a MIXEDMAP anonymous-like mapping with
  // no importer does not call p2pMap (covered for VM_IO/VM_PFNMAP above; here the flag test).
  P2pFixture f;
  const Va a = f.mapSpecial(2);
  Vma* v = f.mm->vmaLookup(a);
  v->vmFlags = (v->vmFlags & ~(VM_IO | VM_PFNMAP)) | VM_MIXEDMAP;
  std::vector<unsigned long> pfns;
  std::vector<DmaAddr> pas;
  REQUIRE(rangeFaultFor(f, nullptr, a, a + 2 * kP, pfns, pas, 0) == HmmStatus::Ok);
  CHECK(f.vmaExporter.mapCalls == 0);
  REQUIRE(rangeFaultFor(f, &f.pci("gpu0"), a, a + 2 * kP, pfns, pas, HMM_PFN_REQ_FAULT) == HmmStatus::Ok);
  CHECK(f.vmaExporter.mapCalls == 1);
  CHECK(hmmPfnIsP2p(pfns[0]));
  HmmRange r;
  r.notifier = &f.sub;
  r.start = a;
  r.end = a + 2 * kP;
  r.hmmPfns = pfns.data();
  r.p2pAddrs = pas.data();
  r.importer = &f.pci("gpu0");
  CHECK(hmmRangeP2pUnmap(r, a, a + 2 * kP) == Errno::Ok);
}

TEST_CASE(
    "a refused special-vma p2pMap fills HMM_PFN_ERROR, returns Fault with the exporter's errno and maps "
    "nothing",
    "[hmm][p2p]") {
  P2pFixture f;
  const Va a = f.mapSpecial(4);
  f.vmaExporter.refuse = Errno::NoSpc;
  std::vector<unsigned long> pfns;
  std::vector<DmaAddr> pas;
  HmmRange r;
  CHECK(rangeFaultFor(f, &f.pci("gpu0"), a, a + 4 * kP, pfns, pas, HMM_PFN_REQ_FAULT, &r) ==
        HmmStatus::Fault);
  CHECK(r.p2pError == Errno::NoSpc);
  for (unsigned long e : pfns) CHECK(e == HMM_PFN_ERROR);
  CHECK(f.bar.used() == 0);
}

TEST_CASE("p2p maps made earlier in a walk that then fails are undone (no leak on Fault)", "[hmm][p2p]") {
  P2pFixture f;
  const Va a = f.mapSpecial(2);
  // A hole right after the special vma: REQ_FAULT there fails the walk.
  REQUIRE(f.mm->vmaLookup(a + 2 * kP) == nullptr);
  std::vector<unsigned long> pfns;
  std::vector<DmaAddr> pas;
  HmmStats st("hmm");
  pfns.assign(3, 0);
  pas.assign(3, DmaAddr(0));
  HmmRange r;
  r.notifier = &f.sub;
  r.notifierSeq = f.sub.readBegin();
  r.start = a;
  r.end = a + 3 * kP;
  r.hmmPfns = pfns.data();
  r.defaultFlags = HMM_PFN_REQ_FAULT;
  r.importer = &f.pci("gpu0");
  r.p2pAddrs = pas.data();
  {
    MmapReadLock l(*f.mm);
    CHECK(hmmRangeFault(r, &st) == HmmStatus::Fault);
  }
  CHECK(f.vmaExporter.pagesMapped == 2);
  CHECK(f.vmaExporter.pagesUnmapped == 2);
  CHECK(st.p2pUndone.value() == 1);
  CHECK(f.vmaExporter.grants.empty());
}

// ---- the DMA-map step: every kind, byte exact ------------------------------------------------------

TEST_CASE("the DMA-map step maps system memory with dmaMapPage and the IOVA reaches the page",
          "[hmm][p2p][dma_map]") {
  P2pFixture f;
  const Va a = f.mapAnon(8 * kP);
  f.fillPattern(a, 8, 0x1000);
  REQUIRE(f.mm->mprotect(a, 8 * kP, PROT_READ) == Errno::Ok);
  ImporterMirror& m = f.importer("gpu0", a, 8);
  REQUIRE(m.map(a, a + 8 * kP, false) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 8; ++i) {
    CHECK(m.kindAt(a + i * kP) == HmmDmaKind::System);
    CHECK(dmaLoad(m, a + i * kP) == 0x1000 + i);
  }
  CHECK(m.dmaStats().systemMaps.value() == 8);
  // The CPU mapping is read-only, so is the device's: a device write faults.
  std::uint64_t v = 7;
  CHECK_FALSE(m.dmaWrite(a, &v, sizeof v));
  CHECK(f.violations.ok());
}

TEST_CASE("a device write through a writable mapping lands in the process's page", "[hmm][p2p][dma_map]") {
  P2pFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2);
  ImporterMirror& m = f.importer("gpu2", a, 2);
  REQUIRE(m.map(a, a + 2 * kP, true) == HmmStatus::Ok);
  const std::uint64_t v = 0xfeedface;
  REQUIRE(m.dmaWrite(a + kP + 8, &v, sizeof v));
  CHECK(f.load(a + kP + 8) == 0xfeedface);
}

TEST_CASE("the importer's own device memory maps to its local address", "[hmm][p2p][dma_map]") {
  P2pFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4, 0x500);
  f.migrateToDevice(a, a + 4 * kP);  // owner kDev0 = gpu1's memory
  ImporterMirror* m = nullptr;
  {
    ImporterMirrorParams p;
    f.importers.push_back(std::make_unique<ImporterMirror>(
        *f.mm,
        [&] {
          HmmDmaImporter imp = f.importerOf("gpu1");
          imp.owner = f.owner();
          return imp;
        }(),
        a, 4, p, &f.checker, "imp.gpu1"));
    m = f.importers.back().get();
    m->setResolver([&f](Device& d, DmaAddr x, const DeviceTranslation& t, bool w) {
      return f.resolve(d, x, t.kind, w);
    });
  }
  REQUIRE(m->map(a, a + 4 * kP, true) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 4; ++i) {
    CHECK(m->kindAt(a + i * kP) == HmmDmaKind::Local);
    CHECK(dmaLoad(*m, a + i * kP) == 0x500 + i);
  }
  CHECK(f.devmemExporter.mapCalls == 0);
  CHECK(f.migrateToRamCalls == 0);
}

TEST_CASE("devmem p2pMap accepted: a peer reads another device's private memory in place",
          "[hmm][p2p][devmem]") {
  P2pFixture f;
  const Va a = f.mapAnon(16 * kP);
  f.fillPattern(a, 16, 0xabc000);
  f.migrateToDevice(a, a + 16 * kP);
  REQUIRE(f.pteAt(a).isDevicePrivateEntry());
  ImporterMirror& m = f.importer("gpu0", a, 16);
  REQUIRE(m.map(a, a + 16 * kP, false) == HmmStatus::Ok);
  CHECK(f.devmemExporter.lastType == P2pMapType::BusAddr);
  for (std::uint64_t i = 0; i < 16; ++i) {
    CHECK(m.kindAt(a + i * kP) == HmmDmaKind::DevmemP2p);
    CHECK(dmaLoad(m, a + i * kP) == 0xabc000 + i);
  }
  // Nothing migrated: the CPU still sees device-private entries.
  CHECK(f.migrateToRamCalls == 0);
  CHECK(f.pteAt(a + 5 * kP).isDevicePrivateEntry());
  CHECK(m.dmaStats().devmemP2pPages.value() == 16);
  CHECK(f.devmemExporter.pagesMapped == 16);
  CHECK(f.violations.ok());
}

TEST_CASE("devmem p2pMap declined: the pages fall back to system memory and are mapped as RAM",
          "[hmm][p2p][devmem]") {
  P2pFixture f;
  const Va a = f.mapAnon(8 * kP);
  f.fillPattern(a, 8, 0x77000);
  f.migrateToDevice(a, a + 8 * kP);
  f.devmemExporter.decline = true;
  ImporterMirror& m = f.importer("gpu0", a, 8);
  REQUIRE(m.map(a, a + 8 * kP, false) == HmmStatus::Ok);
  CHECK(m.dmaStats().fallbackPages.value() == 8);
  CHECK(f.migrateToRamCalls == 8);
  for (std::uint64_t i = 0; i < 8; ++i) {
    CHECK(m.kindAt(a + i * kP) == HmmDmaKind::System);
    CHECK(dmaLoad(m, a + i * kP) == 0x77000 + i);
    CHECK(f.pteAt(a + i * kP).isPresent());
  }
  CHECK(f.devmemExporter.grants.empty());
}

TEST_CASE("a devmem p2pMap that maps only part of a run gets the rest declined and migrated",
          "[hmm][p2p][devmem]") {
  P2pFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4, 0x31000);
  f.migrateToDevice(a, a + 4 * kP);
  f.devmemExporter.maxPages = 2;  // maps two per call; the next call (for page 2) maps two more
  ImporterMirror& m = f.importer("gpu0", a, 4);
  REQUIRE(m.map(a, a + 4 * kP, false) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 4; ++i) {
    CHECK(m.kindAt(a + i * kP) == HmmDmaKind::DevmemP2p);
    CHECK(dmaLoad(m, a + i * kP) == 0x31000 + i);
  }
  CHECK(f.devmemExporter.mapCalls == 2);  // each call's count is the advance: no skipped entry
}

TEST_CASE("the importer reaches a special vma's bytes that the CPU never maps", "[hmm][p2p][special]") {
  P2pFixture f;
  for (std::uint64_t i = 0; i < 8; ++i) f.exporterStore(i, 0xd00d0000 + i);
  const Va a = f.mapSpecial(8);
  ImporterMirror& m = f.importer("gpu0", a, 8);
  REQUIRE(m.map(a, a + 8 * kP, true) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 8; ++i) {
    CHECK(m.kindAt(a + i * kP) == HmmDmaKind::VmaP2p);
    CHECK(dmaLoad(m, a + i * kP) == 0xd00d0000 + i);
  }
  const std::uint64_t v = 0x1234;
  REQUIRE(m.dmaWrite(a + 3 * kP, &v, sizeof v));
  CHECK(f.exporterLoad(3) == 0x1234);
  CHECK(f.pteAt(a).isNone());  // no CPU mapping at all
  CHECK(f.violations.ok());
}

TEST_CASE("a special vma refusing the importer fails the map with Fault and the exporter's errno",
          "[hmm][p2p][special]") {
  P2pFixture f;
  const Va a = f.mapSpecial(2);
  f.vmaExporter.readOnly = true;
  ImporterMirror& m = f.importer("gpu0", a, 2);
  CHECK(m.map(a, a + 2 * kP, true) == HmmStatus::Fault);
  CHECK(m.lastP2pError() == Errno::Perm);
  CHECK(m.kindAt(a) == HmmDmaKind::None);
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  CHECK(m.kindAt(a) == HmmDmaKind::VmaP2p);
}

TEST_CASE(
    "one range mixing system memory, peer device memory and a special vma maps each kind and unmaps each "
    "once",
    "[hmm][p2p][dma_map]") {
  P2pFixture f;
  // Place three mappings back to back: anon (system), anon migrated (peer devmem), special.
  const Va a = f.mapAnon(8 * kP);
  f.fillPattern(a, 8, 0x100);
  f.migrateToDevice(a + 4 * kP, a + 8 * kP);
  Va s = Va(0);
  {
    VaResult r = f.mm->mmap(
        a + 8 * kP, 4 * kP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
        f.devFile ? f.devFile
                  : (f.devFile = openDeviceFile(f.pm, f.vmaExporter, FMODE_READ | FMODE_WRITE, "x")),
        0);
    REQUIRE(r.ok());
    s = r.addr;
  }
  REQUIRE(s == a + 8 * kP);
  for (std::uint64_t i = 0; i < 4; ++i) f.exporterStore(i, 0x900 + i);
  ImporterMirror& m = f.importer("gpu2", a, 12);
  REQUIRE(m.map(a, a + 12 * kP, false) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 12; ++i) {
    const HmmDmaKind want = i < 4 ? HmmDmaKind::System : i < 8 ? HmmDmaKind::DevmemP2p : HmmDmaKind::VmaP2p;
    CHECK(m.kindAt(a + i * kP) == want);
    CHECK(dmaLoad(m, a + i * kP) == (i < 8 ? 0x100 + i : 0x900 + i - 8));
  }
  // The 8 peer pages are mapped one by one; the 4 system pages are linked into the mirror's IOVA
  // range (ImporterMirrorParams::iovaLink, the default: hmm_dma_map_pfn since 6.16).
  const std::uint64_t liveBefore = f.dma.stats().counterValue("maps") - f.dma.stats().counterValue("unmaps");
  CHECK(liveBefore == 8);
  CHECK(f.dma.stats().counterValue("iova_links") == 4);
  m.unmapAll();
  CHECK(f.dma.stats().counterValue("maps") == f.dma.stats().counterValue("unmaps"));
  CHECK(f.dma.stats().counterValue("iova_unlinks") == 4);
  CHECK(m.dmaStats().systemUnmaps.value() == 4);
  CHECK(m.dmaStats().devmemUnmaps.value() == 4);
  CHECK(m.dmaStats().vmaUnmaps.value() == 4);
  CHECK(f.devmemExporter.pagesUnmapped == 4);
  CHECK(f.vmaExporter.pagesUnmapped == 4);
  CHECK(f.bar.used() == 0);
  m.unmapAll();  // nothing left: undoes nothing twice
  CHECK(f.dma.stats().counterValue("bad_unmaps") == 0);
}
