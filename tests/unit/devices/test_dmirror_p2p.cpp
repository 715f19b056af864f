// dmirror imports too (models/devices/dmirror/dmirror_p2p.h): READ/WRITE/SNAPSHOT of one dmirror
// over another dmirror's device-private memory map it p2p through the RFC layer or fall back to
// RAM; a device-file mmap at HMM_DMIRROR_P2P_MMAP_OFFSET exports a special vma backed by device
// memory through a P2pBarManager; importers obey every invalidation (BAR reclaim included) and
// the P2pChecker, rule 3 included, watches every access. Bytes are compared exactly.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>

#include "tests/unit/devices/dmirror_p2p_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

/// A process range of `pages` pages filled with pattern `tag` and migrated to dmirror1.
Va onExporter(DmirrorP2pFixture& f, std::uint64_t pages, std::uint32_t tag) {
  const Va a = f.mapAnon(pages * kP);
  f.fill(a, pages, tag);
  REQUIRE(f.ioctl(1, HMM_DMIRROR_MIGRATE_TO_DEV, a, pages) == Errno::Ok);
  REQUIRE(f.onDevice(1, a, pages) == pages);
  return a;
}

DmirrorP2pParams smallAperture(std::uint64_t windows, bool reuseBeforeRevoke = false) {
  DmirrorP2pParams p;
  p.windowBytes = kP;  // one device page per window
  p.apertureBytes = windows * kP;
  p.reuseBeforeRevoke = reuseBeforeRevoke;
  return p;
}

}  // namespace

TEST_CASE("dmirror p2p: READ and WRITE of another dmirror's private memory map it p2p in place",
          "[dmirror][p2p]") {
  DmirrorP2pFixture f;
  const Va a = onExporter(f, 8, 0x11);
  HmmDmirrorCmd c;
  std::vector<std::uint8_t> got;
  REQUIRE(f.ioctl(0, HMM_DMIRROR_READ, a, 8, &got, nullptr, &c) == Errno::Ok);
  CHECK(got == DmirrorP2pFixture::pattern(8, 0x11));
  CHECK(c.cpages == 8);
  CHECK(c.faults == 1);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::DevmemP2p);
  CHECK(f.importer(0).dmaStats().devmemP2pPages.value() == 8);
  CHECK(f.dev(1).p2p()->bar().heldPages(f.pci("gpu0")) == 8);
  CHECK(f.onDevice(1, a, 8) == 8);  // nothing migrated
  // gpu0 and gpu1 share switch sw0: the importer got gpu1's bus addresses.
  const DmaAddr addr = f.importer(0).addrAt(a);
  CHECK(addr.value() >= f.dev(1).p2p()->bar().params().barBus.value());
  CHECK(addr.value() <
        f.dev(1).p2p()->bar().params().barBus.value() + f.dev(1).p2p()->bar().params().apertureBytes);
  // The importer's snapshot says the same; the exporter's sees its own pages.
  const std::vector<std::uint8_t> s0 = f.snapshot(0, a, 8);
  for (std::uint8_t b : s0) CHECK(b == (HMM_DMIRROR_PROT_DEV_PRIVATE_P2P | HMM_DMIRROR_PROT_WRITE));
  // WRITE goes to the exporter's memory: the exporter and then the CPU read the new bytes.
  const std::vector<std::uint8_t> w = DmirrorP2pFixture::pattern(8, 0x22);
  REQUIRE(f.ioctl(0, HMM_DMIRROR_WRITE, a, 8, nullptr, &w) == Errno::Ok);
  CHECK(f.onDevice(1, a, 8) == 8);
  CHECK(f.read(1, a, 8) == w);
  CHECK(f.cpu(a, 8) == w);  // CPU access migrates back to RAM: the importer was invalidated
  CHECK(f.dev(1).p2p()->bar().heldPages() == 0);
  CHECK(f.read(0, a, 8) == w);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::System);
  CHECK(f.checker.barChecks() >= 16);
  CHECK(f.violations.ok());
}

TEST_CASE("dmirror p2p: an exporter that declines (always refuse) makes READ fall back to RAM, byte-exact",
          "[dmirror][p2p]") {
  DmirrorP2pParams ex;
  ex.policy = BarPolicy::AlwaysRefuse;
  DmirrorP2pFixture f(ex);
  const Va a = onExporter(f, 4, 0x33);
  // SNAPSHOT never migrates: the declined pages stay remote device-private pages.
  for (std::uint8_t b : f.snapshot(0, a, 4))
    CHECK(b == (HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE | HMM_DMIRROR_PROT_WRITE));
  CHECK(f.onDevice(1, a, 4) == 4);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x33));
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::System);
  CHECK(f.importer(0).dmaStats().fallbackPages.value() == 4);
  CHECK(f.onDevice(1, a, 4) == 0);  // migrated back to RAM (the RFC's fallback)
  CHECK(f.dev(1).p2p()->stats().counterValue("devmem_p2p_declined") >= 1);
  CHECK(f.violations.ok());
}

namespace {

/// dmirror `imp` READs 4 pages of dmirror1's private memory; returns the importer's first address.
DmaAddr readPeer(DmirrorP2pFixture& f, unsigned imp, std::uint32_t tag) {
  const Va a = onExporter(f, 4, tag);
  CHECK(f.read(imp, a, 4) == DmirrorP2pFixture::pattern(4, tag));
  return f.importer(imp).kindAt(a) == HmmDmaKind::DevmemP2p ? f.importer(imp).addrAt(a) : DmaAddr(0);
}

bool inBar(DmirrorP2pFixture& f, DmaAddr a, bool bus) {
  const P2pBarParams& p = f.dev(1).p2p()->bar().params();
  const std::uint64_t base = bus ? p.barBus.value() : p.barPa.value();
  return a.value() >= base && a.value() - base < p.apertureBytes;
}

}  // namespace

TEST_CASE("dmirror p2p: the importer's address follows the map type under IOMMU on/off/passthrough",
          "[dmirror][p2p][map_type]") {
  for (IommuMode mode : {IommuMode::Translate, IommuMode::Off, IommuMode::Passthrough}) {
    INFO("iommu mode " << static_cast<int>(mode));
    DmirrorP2pFixture f({}, {}, mode);
    // gpu0 shares switch sw0 with gpu1: BUS_ADDR, the bus address, IOMMU or not.
    CHECK(f.mapper.mapType(f.pci("gpu1"), f.pci("gpu0")) == P2pMapType::BusAddr);
    CHECK(inBar(f, readPeer(f, 0, 0x41), true));
    // gpu2 is behind another root port: through the host bridge, an IOVA with the IOMMU
    // translating, the CPU physical address with it off or in passthrough.
    CHECK(f.mapper.mapType(f.pci("gpu1"), f.pci("gpu2")) == P2pMapType::ThruHostBridge);
    const DmaAddr a2 = readPeer(f, 2, 0x42);
    REQUIRE(a2 != DmaAddr(0));
    CHECK(inBar(f, a2, false) == (mode != IommuMode::Translate));
    CHECK(f.violations.ok());
  }
}

TEST_CASE("dmirror p2p: across root complexes the allow-list decides and off it devmem falls back to RAM",
          "[dmirror][p2p][map_type]") {
  {
    // gpu3 is behind the other host bridge (allow-listed ids): THRU_HOST_BRIDGE, p2p in place.
    DmirrorP2pFixture f;
    DmirrorDevice far(f.pm, 3, MemoryType::DevicePrivate, smallDmirror());
    REQUIRE(f.fabric.attach(far, f.pci("gpu3")) == "");
    std::shared_ptr<File> fd = far.open(*f.mm);
    const Va a = onExporter(f, 4, 0x43);
    HmmDmirrorCmd c;
    c.addr = a.value();
    c.ptr = f.mapAnon(4 * kP).value();
    c.npages = 4;
    REQUIRE(far.ioctl(*fd, HMM_DMIRROR_READ, c) == Errno::Ok);
    std::vector<std::uint8_t> got(4 * kP);
    REQUIRE(copyFromUser(*f.mm, got.data(), Va(c.ptr), got.size()) == Errno::Ok);
    CHECK(got == DmirrorP2pFixture::pattern(4, 0x43));
    CHECK(f.mapper.mapType(f.pci("gpu1"), f.pci("gpu3")) == P2pMapType::ThruHostBridge);
    CHECK(far.p2p()->importerOf(*far.handleOf(*fd))->kindAt(a) == HmmDmaKind::DevmemP2p);
    CHECK(f.onDevice(1, a, 4) == 4);
    fd.reset();
    CHECK(f.violations.ok());
  }
  {
    // Host bridges off the allow-list: NOT_SUPPORTED through the host bridge; the exporter
    // declines and the importer gets the pages in RAM. The same switch is unaffected.
    DmirrorP2pFixture f({}, {}, IommuMode::Translate, withHostBridgeIds(0x1234));
    CHECK(f.mapper.mapType(f.pci("gpu1"), f.pci("gpu2")) == P2pMapType::NotSupported);
    CHECK(readPeer(f, 2, 0x44) == DmaAddr(0));
    CHECK(f.importer(2).dmaStats().fallbackPages.value() == 4);
    CHECK(f.mapper.mapType(f.pci("gpu1"), f.pci("gpu0")) == P2pMapType::BusAddr);
    CHECK(readPeer(f, 0, 0x45) != DmaAddr(0));
    CHECK(f.violations.ok());
  }
}

TEST_CASE("dmirror p2p: a device-file mmap exports a special vma that importers reach through p2pMap only",
          "[dmirror][p2p][special]") {
  DmirrorP2pFixture f;
  // Device pages 16..19 of dmirror1, exporter-side bytes written through the device's own view.
  VaResult r = f.mm->mmap(Va(0), 4 * kP, PROT_READ | PROT_WRITE, MAP_SHARED, f.files[1],
                          HMM_DMIRROR_P2P_MMAP_OFFSET + 16 * kP);
  REQUIRE(r.ok());
  const Va s = r.addr;
  Vma* vma = f.mm->vmaLookup(s);
  REQUIRE(vma);
  CHECK((vma->vmFlags & (VM_IO | VM_PFNMAP)) == (VM_IO | VM_PFNMAP));
  const std::vector<std::uint8_t> exp = DmirrorP2pFixture::pattern(4, 0x55);
  for (std::uint64_t i = 0; i < 4; ++i)
    f.pm.write(paOf(*f.dev(1).p2p()->pfnOf(DevPage(16 + i))), exp.data() + i * kP, kP);
  // The CPU cannot touch it.
  std::uint8_t byte = 0;
  CHECK(copyFromUser(*f.mm, &byte, s, 1) == Errno::Fault);
  CHECK(f.read(0, s, 4) == exp);
  CHECK(f.importer(0).kindAt(s) == HmmDmaKind::VmaP2p);
  // SNAPSHOT requests no write access: the special vma's p2pMap maps the pages read-only.
  for (std::uint8_t b : f.snapshot(0, s, 4))
    CHECK(b == (HMM_DMIRROR_PROT_SPECIAL_P2P | HMM_DMIRROR_PROT_READ));
  const std::vector<std::uint8_t> w = DmirrorP2pFixture::pattern(4, 0x66);
  REQUIRE(f.ioctl(0, HMM_DMIRROR_WRITE, s, 4, nullptr, &w) == Errno::Ok);
  std::vector<std::uint8_t> dev(4 * kP);
  for (std::uint64_t i = 0; i < 4; ++i)
    f.pm.read(paOf(*f.dev(1).p2p()->pfnOf(DevPage(16 + i))), dev.data() + i * kP, kP);
  CHECK(dev == w);
  CHECK(f.dev(1).p2p()->bar().heldPages(f.pci("gpu0")) == 4);
  // munmap: the importer p2pUnmaps every page before the invalidation returns.
  REQUIRE(f.mm->munmap(s, 4 * kP) == Errno::Ok);
  CHECK(f.dev(1).p2p()->bar().heldPages() == 0);
  CHECK(f.importer(0).kindAt(s) == HmmDmaKind::None);
  CHECK(f.violations.ok());
}

TEST_CASE("dmirror p2p: special-vma errors are the uapi's (EINVAL without p2p or chunk, EPERM, EFAULT)",
          "[dmirror][p2p][special]") {
  DmirrorP2pFixture f;
  // Beyond the registered chunk (16 MiB = 4096 pages; one chunk preallocated).
  VaResult r =
      f.mm->mmap(Va(0), kP, PROT_READ, MAP_SHARED, f.files[1], HMM_DMIRROR_P2P_MMAP_OFFSET + 4096 * kP);
  CHECK(r.err == Errno::Inval);
  // A read-only special vma: READ works, WRITE fails (p2pMap's EPERM surfaces as EPERM or EFAULT).
  r = f.mm->mmap(Va(0), 2 * kP, PROT_READ, MAP_SHARED, f.files[1], HMM_DMIRROR_P2P_MMAP_OFFSET);
  REQUIRE(r.ok());
  CHECK(f.read(0, r.addr, 2).size() == 2 * kP);
  const std::vector<std::uint8_t> w(2 * kP, 0x7);
  const Errno e = f.ioctl(0, HMM_DMIRROR_WRITE, r.addr, 2, nullptr, &w);
  CHECK((e == Errno::Perm || e == Errno::Fault));
  // The exporter unplugged: later maps fail, nothing dangles.
  REQUIRE(f.mm->munmap(r.addr, 2 * kP) == Errno::Ok);
  r = f.mm->mmap(Va(0), 2 * kP, PROT_READ, MAP_SHARED, f.files[1], HMM_DMIRROR_P2P_MMAP_OFFSET);
  REQUIRE(r.ok());
  REQUIRE(f.read(0, r.addr, 2).size() == 2 * kP);
  CHECK(f.dev(1).p2p()->bar().heldPages() == 2);
  f.dev(1).p2p()->bar().unplug();
  CHECK(f.dev(1).p2p()->bar().heldPages() == 0);
  CHECK(f.importer(0).kindAt(r.addr) == HmmDmaKind::None);
  CHECK(f.ioctl(0, HMM_DMIRROR_READ, r.addr, 2) == Errno::Fault);
  CHECK(f.violations.ok());
}

TEST_CASE(
    "dmirror p2p: BAR reclaim under LRU pressure revokes the first importer, which re-maps and reads the "
    "right bytes",
    "[dmirror][p2p][bar]") {
  DmirrorP2pFixture f(smallAperture(4));
  const Va a = onExporter(f, 4, 0x71);
  const Va b = onExporter(f, 4, 0x72);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x71));
  CHECK(f.dev(1).p2p()->bar().heldPages(f.pci("gpu0")) == 4);
  // dmirror2 needs the 4 windows: dmirror0's hold is revoked (CLEAR rounds over its range).
  CHECK(f.read(2, b, 4) == DmirrorP2pFixture::pattern(4, 0x72));
  CHECK(f.dev(1).p2p()->bar().heldPages(f.pci("gpu0")) == 0);
  CHECK(f.dev(1).p2p()->bar().heldPages(f.pci("gpu2")) == 4);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::None);
  CHECK(f.dev(1).p2p()->stats().counterValue("revoke_clear_rounds") >= 1);
  // Predictable: dmirror0 maps again (revoking dmirror2 in turn) and reads the same bytes.
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x71));
  CHECK(f.read(2, b, 4) == DmirrorP2pFixture::pattern(4, 0x72));
  CHECK(f.onDevice(1, a, 4) == 4);
  CHECK(f.onDevice(1, b, 4) == 4);
  CHECK(f.checker.barChecks() >= 16);
  CHECK(f.violations.ok());
}

TEST_CASE("dmirror p2p: an exporter reusing a BAR window before revoking its importers is caught by rule 3",
          "[dmirror][p2p][bar][checker]") {
  DmirrorP2pFixture f(smallAperture(4, /*reuseBeforeRevoke=*/true));
  const Va a = onExporter(f, 4, 0x81);
  const Va b = onExporter(f, 4, 0x82);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x81));
  CHECK(f.read(2, b, 4) == DmirrorP2pFixture::pattern(4, 0x82));  // windows re-pointed, no revoke
  CHECK(f.dev(1).p2p()->bar().stats().counterValue("forced_reuse_pages") == 4);
  CHECK(f.violations.ok());
  // dmirror0 was never told: its translations still point at the windows, which now show b's pages.
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::DevmemP2p);
  const std::vector<std::uint8_t> wrong = f.read(0, a, 4);
  CHECK(wrong == DmirrorP2pFixture::pattern(4, 0x82));  // the bytes of the other range
  CHECK(f.violations.count(CheckRule::OutsideBarWindow) == 4);
  REQUIRE(!f.violations.violations().empty());
  const std::string cause = f.violations.violations().front().cause;
  INFO(cause);
  CHECK(cause.find("hmm_dmirror1") != std::string::npos);
  CHECK(cause.find("maps page") != std::string::npos);
}

TEST_CASE(
    "dmirror p2p: exporter revoke, window move and reset invalidate the importer, maps during the reset "
    "fall back (devmem) or fail (special vma) and afterwards the same bytes come back",
    "[dmirror][p2p][bar]") {
  DmirrorP2pFixture f;
  const Va a = onExporter(f, 4, 0x91);
  VaResult r = f.mm->mmap(Va(0), 2 * kP, PROT_READ | PROT_WRITE, MAP_SHARED, f.files[1],
                          HMM_DMIRROR_P2P_MMAP_OFFSET + 100 * kP);
  REQUIRE(r.ok());
  const Va s = r.addr;
  const std::vector<std::uint8_t> sp = DmirrorP2pFixture::pattern(2, 0x92);
  REQUIRE(f.ioctl(0, HMM_DMIRROR_WRITE, s, 2, nullptr, &sp) == Errno::Ok);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x91));
  P2pBarManager& bar = f.dev(1).p2p()->bar();
  CHECK(bar.heldPages(f.pci("gpu0")) == 6);
  // Revoke the special vma's pages only: exactly those two are invalidated and given back.
  const BarRevokeResult rv = bar.revokeRange(DevPage(100), 2);
  CHECK(rv.pagesRevoked == 2);
  CHECK(rv.pagesPinned == 0);
  CHECK(f.importer(0).kindAt(s) == HmmDmaKind::None);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::DevmemP2p);
  CHECK(bar.heldPages(f.pci("gpu0")) == 4);
  CHECK(f.read(0, s, 2) == sp);
  // Move the window holding the devmem pages: its importer is revoked first, then re-maps at the
  // window's new address and reads the same bytes.
  BarWindowIdx from;
  REQUIRE(bar.windowOf(*f.dev(1).p2p()->devPageOf(f.importer(0).translate(a, false)->pfn), &from));
  const DmaAddr before = f.importer(0).addrAt(a);
  const BarRevokeResult mv = bar.moveWindow(from, BarWindowIdx(bar.windowCount() - 1));
  REQUIRE(mv.err == Errno::Ok);
  CHECK(mv.pagesRevoked >= 4);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::None);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x91));
  CHECK(f.importer(0).addrAt(a) != before);
  // Reset: everything revoked; during it devmem falls back to RAM and the special vma fails.
  const BarRevokeResult rs = bar.resetBegin();
  CHECK(rs.pagesPinned == 0);
  CHECK(bar.heldPages() == 0);
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::None);
  CHECK(f.importer(0).kindAt(s) == HmmDmaKind::None);
  CHECK(f.ioctl(0, HMM_DMIRROR_READ, s, 2) == Errno::Fault);
  CHECK(f.read(0, a, 4) == DmirrorP2pFixture::pattern(4, 0x91));
  CHECK(f.importer(0).kindAt(a) == HmmDmaKind::System);
  CHECK(f.onDevice(1, a, 4) == 0);
  bar.resetEnd();
  CHECK(f.read(0, s, 2) == sp);
  CHECK(f.importer(0).kindAt(s) == HmmDmaKind::VmaP2p);
  CHECK(f.violations.ok());
}

namespace {

/// A seeded storm against a correct exporter (small LRU aperture) and two correct importers:
/// READ/WRITE through either importer, CPU writes, munmap/mmap, mprotect, migrations both ways,
/// exporter revokes, window moves, defragment. Every READ is compared with a shadow copy; the
/// checker must stay silent.
void storm(std::uint64_t seed) {
  INFO("seed " << seed);
  DmirrorP2pFixture f(smallAperture(6));
  constexpr std::uint64_t kPages = 12;
  Va a = f.mapAnon(kPages * kP);
  std::vector<std::uint8_t> shadow(kPages * kP);
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return static_cast<std::uint64_t>(rng() % n); };
  auto refill = [&](std::uint64_t first, std::uint64_t n, std::uint32_t tag) {
    const std::vector<std::uint8_t> p = DmirrorP2pFixture::pattern(n, tag);
    REQUIRE(copyToUser(*f.mm, a + first * kP, p.data(), p.size()) == Errno::Ok);
    std::copy(p.begin(), p.end(), shadow.begin() + first * kP);
  };
  refill(0, kPages, 1);
  for (int step = 0; step < 300; ++step) {
    const std::uint64_t first = pick(kPages);
    const std::uint64_t n = 1 + pick(std::min<std::uint64_t>(4, kPages - first));
    const Va r = a + first * kP;
    const unsigned imp = pick(2) ? 0 : 2;
    INFO("step " << step << " first " << first << " n " << n);
    switch (pick(10)) {
      case 0:
      case 1: {
        std::vector<std::uint8_t> got;
        REQUIRE(f.ioctl(imp, HMM_DMIRROR_READ, r, n, &got) == Errno::Ok);
        REQUIRE(std::equal(got.begin(), got.end(), shadow.begin() + first * kP));
        break;
      }
      case 2: {
        const std::vector<std::uint8_t> w = DmirrorP2pFixture::pattern(n, 0x100 + step);
        const Errno we = f.ioctl(imp, HMM_DMIRROR_WRITE, r, n, nullptr, &w);
        if (we != Errno::Ok) {
          for (const Violation& v : f.violations.violations()) UNSCOPED_INFO(InvariantChecker::format(v));
          UNSCOPED_INFO("kind " << hmmDmaKindName(f.importer(imp).kindAt(r)) << " addr "
                                << f.importer(imp).addrAt(r) << " lastP2pError "
                                << errnoName(f.importer(imp).lastP2pError()) << " imp " << imp);
        }
        REQUIRE(we == Errno::Ok);
        std::copy(w.begin(), w.end(), shadow.begin() + first * kP);
        break;
      }
      case 3:
      case 4: {
        // ENOENT: a page already in device memory whose exporter-side PTE an invalidation
        // erased (the kernel's read-back after migrate_vma reports it the same way).
        const Errno e = f.ioctl(1, HMM_DMIRROR_MIGRATE_TO_DEV, r, n);
        REQUIRE((e == Errno::Ok || e == Errno::NoEnt));
        break;
      }
      case 5:
        REQUIRE(f.ioctl(1, HMM_DMIRROR_MIGRATE_TO_SYS, r, n) == Errno::Ok);
        break;
      case 6:
        refill(first, n, 0x200 + step);  // CPU stores (migrate_to_ram of device pages)
        break;
      case 7:
        REQUIRE(f.mm->mprotect(r, n * kP, PROT_READ) == Errno::Ok);
        REQUIRE(f.mm->mprotect(r, n * kP, PROT_READ | PROT_WRITE) == Errno::Ok);
        break;
      case 8:
        f.dev(1).p2p()->bar().revokeRange(DevPage(0),
                                          f.dev(1).p2p()->bar().params().deviceMemBytes >> kPageShift);
        break;
      case 9:
        f.dev(1).p2p()->bar().defragment();
        break;
    }
  }
  // Every page read back byte-exact through both importers at the end.
  std::vector<std::uint8_t> got;
  REQUIRE(f.ioctl(0, HMM_DMIRROR_READ, a, kPages, &got) == Errno::Ok);
  CHECK(got == shadow);
  REQUIRE(f.ioctl(2, HMM_DMIRROR_READ, a, kPages, &got) == Errno::Ok);
  CHECK(got == shadow);
  // The storm did reach the p2p paths: peer pages mapped, windows reclaimed (revoking importers).
  CHECK(f.importer(0).dmaStats().devmemP2pPages.value() + f.importer(2).dmaStats().devmemP2pPages.value() >
        0);
  CHECK(f.dev(1).p2p()->bar().stats().counterValue("reclaims") > 0);
  CHECK(f.checker.barChecks() > 0);
  for (const Violation& v : f.violations.violations()) UNSCOPED_INFO(InvariantChecker::format(v));
  CHECK(f.violations.ok());
}

}  // namespace

TEST_CASE("dmirror p2p storm: a correct exporter and correct importers are never flagged (seeds 1-6)",
          "[dmirror][p2p][storm]") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) storm(seed);
}

TEST_CASE("dmirror p2p soak: HMMSIM_P2P_SOAK_SEEDS=N runs seeds 1000..1000+N-1 (hand-run)",
          "[dmirror][p2p][storm][soak]") {
  const char* env = std::getenv("HMMSIM_P2P_SOAK_SEEDS");
  const std::uint64_t n = env ? std::strtoull(env, nullptr, 10) : 0;
  for (std::uint64_t seed = 1000; seed < 1000 + n; ++seed) storm(seed);
  SUCCEED("ran " << n << " soak seeds");
}
