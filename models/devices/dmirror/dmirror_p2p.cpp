// dmirror's p2p half (exporter and importer). See dmirror_p2p.h.
#include "models/devices/dmirror/dmirror_p2p.h"

#include <algorithm>
#include <vector>

#include "hmm/hmm.h"
#include "hmm/hmm_dma_map.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/rmap.h"
#include "models/cpu_mmu/vma.h"
#include "models/devices/dmirror/dmirror.h"
#include "models/devices/dmirror/dmirror_snapshot_notifier.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

constexpr std::uint64_t kSpecialPgoff = HMM_DMIRROR_P2P_MMAP_OFFSET >> kPageShift;

/// Importer windows are rounded out to this. Unit: bytes.
constexpr std::uint64_t kImportWindowAlign = 2ull << 20;

}  // namespace

// ------------------------------------------------------------------------------------------
// DmirrorP2p
// ------------------------------------------------------------------------------------------

DmirrorP2p::DmirrorP2p(DmirrorDevice& dev, PciDev& pci, const DmirrorP2pParams& params, DmaMapping& dma,
                       P2pDmaMapper& mapper, P2pChecker* checker, ImporterMirror::Resolver resolver)
    : dev_(dev),
      pci_(pci),
      params_(params),
      dma_(dma),
      checker_(checker),
      resolver_(std::move(resolver)),
      exporter_(dev.name(), pci, exporterParams(params), dev.params().capacityBytes, *this, dev.physMem(),
                mapper, checker) {
  exporter_.installDevmem(dev_.devmem());
}

DmirrorP2p::~DmirrorP2p() {
  importers_.clear();  // gives back everything the handles imported
}

P2pExporterParams DmirrorP2p::exporterParams(const DmirrorP2pParams& p) {
  P2pExporterParams e;
  e.bar = p.bar;
  e.apertureBytes = p.apertureBytes;
  e.windowBytes = p.windowBytes;
  e.policy = p.policy;
  e.importerCapPages = p.importerCapPages;
  e.reuseBeforeRevoke = p.reuseBeforeRevoke;
  e.specialPgoff = kSpecialPgoff;
  return e;
}

std::optional<DevPage> DmirrorP2p::devPageOf(Pfn pfn) {
  DeviceMemory& mem = dev_.devmem();
  const std::uint64_t perChunk = dev_.params().chunkBytes >> kPageShift;
  for (std::size_t i = 0; i < mem.chunkCount(); ++i) {
    const DeviceMemory::Chunk& c = mem.chunk(i);
    if (!c.live || !c.pgmap.contains(pfn)) continue;
    const std::uint64_t p = i * perChunk + (pfn - c.pgmap.pfnFirst);
    // Chunks re-added after a RELEASE get new indexes: beyond the BAR's device memory they are
    // not exported (declined: the importer falls back to RAM).
    if (p >= exporter_.devicePages()) return std::nullopt;
    return DevPage(p);
  }
  return std::nullopt;
}

void DmirrorP2p::revokeChunk(std::size_t i) {
  const std::uint64_t perChunk = dev_.params().chunkBytes >> kPageShift;
  exporter_.revokePages(DevPage(i * perChunk), perChunk);
}

std::optional<Pfn> DmirrorP2p::pfnOf(DevPage p) {
  DeviceMemory& mem = dev_.devmem();
  const std::uint64_t perChunk = dev_.params().chunkBytes >> kPageShift;
  const std::uint64_t i = p.value() / perChunk;
  if (i >= mem.chunkCount() || !mem.chunk(i).live) return std::nullopt;
  return mem.chunk(i).pgmap.pfnFirst + (p.value() % perChunk);
}

// ---- importer -------------------------------------------------------------------------------

HmmDmaImporter DmirrorP2p::importerDesc() {
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = dev_.owner();
  imp.dma = &dma_;
  imp.localAddress = [](Pfn p) { return DmaAddr(paOf(p).value()); };
  return imp;
}

ImporterMirror* DmirrorP2p::importerOf(const Dmirror& d) {
  auto it = importers_.find(&d);
  return it == importers_.end() ? nullptr : it->second.get();
}

ImporterMirror& DmirrorP2p::importerFor(Dmirror& d, Va start, Va end) {
  std::unique_ptr<ImporterMirror>& m = importers_[&d];
  if (m && start >= m->start() && end <= m->start() + (m->pages() << kPageShift)) return *m;
  const Va lo = start.alignDown(kImportWindowAlign);
  const Va hi = (end + (kImportWindowAlign - 1)).alignDown(kImportWindowAlign);
  m.reset();  // unmaps the old window first
  m = std::make_unique<ImporterMirror>(d.mm(), importerDesc(), lo, (hi - lo) >> kPageShift, params_.importer,
                                       checker_, std::string(dev_.name()) + ".importer");
  m->setResolver(resolver_);
  return *m;
}

void DmirrorP2p::handleClosed(Dmirror& d) {
  importers_.erase(&d);
}

Errno DmirrorP2p::copy(Dmirror& d, HmmDmirrorCmd& cmd, std::uint8_t* bounce, bool write) {
  if (d.mm().exited()) return Errno::Fault;
  const Va start(cmd.addr);
  const Va end(cmd.addr + (cmd.npages << kPageShift));
  ImporterMirror& m = importerFor(d, start, end);
  std::uint64_t cpages = 0;
  Errno ret = Errno::Ok;
  // The READ/WRITE loop of lib/test_hmm.c: DMA through the device page table; at the first page
  // without a usable translation, fault (map) from there to the end and go on.
  for (Va va = start; va < end;) {
    if (!m.translate(va, write)) {
      const HmmStatus st = m.map(va, end, write);
      if (st != HmmStatus::Ok) {
        ret = hmmStatusToErrno(st);
        break;
      }
      ++cmd.faults;
      ++dev_.deviceFaults_;
      continue;
    }
    const std::uint64_t id = *m.beginDma(va, write);
    const bool ok = m.transferDma(id, bounce + (va - start), kPageSize);
    m.endDma(id);
    if (!ok) {
      ret = Errno::Fault;  // the platform could not reach the address (IOMMU fault, no window)
      break;
    }
    ++cpages;
    va = va + kPageSize;
  }
  cmd.cpages = cpages;
  return ret;
}

Errno DmirrorP2p::read(Dmirror& d, HmmDmirrorCmd& cmd, std::vector<std::uint8_t>& bounce) {
  return copy(d, cmd, bounce.data(), false);
}

Errno DmirrorP2p::write(Dmirror& d, HmmDmirrorCmd& cmd, const std::vector<std::uint8_t>& bounce) {
  return copy(d, cmd, const_cast<std::uint8_t*>(bounce.data()), true);
}

Errno DmirrorP2p::snapshot(Dmirror& d, HmmDmirrorCmd& cmd) {
  Mm& mm = d.mm();
  if (mm.exited()) return Errno::Inval;
  const Va start(cmd.addr);
  const Va end(cmd.addr + (cmd.npages << kPageShift));
  constexpr std::uint64_t kChunk = kDmirrorSnapshotChunkPages;
  std::vector<unsigned long> pfns(kChunk);
  std::vector<DmaAddr> addrs(kChunk);
  std::vector<HmmDmaKind> kinds(kChunk);
  std::vector<std::uint8_t> perm(kChunk);
  const HmmDmaImporter imp = importerDesc();
  SleepingMutex& lock = d.mirror().updateLock();
  DmirrorSnapshotNotifierOps ops(lock);
  Va uptr(cmd.ptr);
  for (Va addr = start; addr < end;) {
    const Va next = std::min(end, addr + (kChunk << kPageShift));
    const std::uint64_t n = (next - addr) >> kPageShift;
    MmuIntervalNotifier sub;
    Errno ret = mmuIntervalNotifierInsert(sub, mm, addr, next - addr, ops);
    if (ret != Errno::Ok) return ret;
    HmmRange range;
    range.notifier = &sub;
    range.start = addr;
    range.end = next;
    range.hmmPfns = pfns.data();
    range.devPrivateOwner = dev_.owner();
    range.importer = &pci_;
    range.p2pAddrs = addrs.data();
    unsigned retries = 0;
    for (;;) {
      if (retries++ > dev_.params().maxRetries) {
        ret = Errno::Busy;
        break;
      }
      std::fill(pfns.begin(), pfns.end(), 0UL);
      std::fill(kinds.begin(), kinds.end(), HmmDmaKind::None);
      range.notifierSeq = sub.readBegin();
      HmmStatus st;
      {
        MmapReadLock mmapLock(mm);
        st = hmmRangeFault(range);
      }
      if (st == HmmStatus::Busy) continue;
      if (st != HmmStatus::Ok) {
        ret = hmmStatusToErrno(st);
        break;
      }
      // Probe the foreign device-private pages: does their exporter map them for us?
      PhysMem& pm = mm.physMem();
      for (std::uint64_t i = 0; i < n; ++i) {
        if (hmmPfnIsP2p(pfns[i])) {
          kinds[i] = HmmDmaKind::VmaP2p;
          continue;
        }
        if (!(pfns[i] & HMM_PFN_VALID)) continue;
        const Pfn pfn = hmmPfnToPfn(pfns[i]);
        const DevPagemap* pg = pm.isDevicePfn(pfn) ? pm.frame(pfn).pgmap : nullptr;
        if (!isDevicePrivate(pg) || pg->owner == dev_.owner()) continue;
        DevmemP2pOps* ops2 = devmemP2pOps(pg);
        if (ops2 && ops2->p2pMap(*devmemOfPgmap(pg), pci_, addr + (i << kPageShift), &pfns[i], 1, &addrs[i],
                                 (pfns[i] & HMM_PFN_WRITE) != 0) == 1)
          kinds[i] = HmmDmaKind::DevmemP2p;
      }
      lock.lock();
      const bool retry = sub.readRetry(range.notifierSeq);
      if (!retry)
        for (std::uint64_t i = 0; i < n; ++i) {
          const std::uint8_t rw = (pfns[i] & HMM_PFN_WRITE) ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
          if (kinds[i] == HmmDmaKind::VmaP2p)
            perm[i] = HMM_DMIRROR_PROT_SPECIAL_P2P | rw;
          else if (kinds[i] == HmmDmaKind::DevmemP2p)
            perm[i] = HMM_DMIRROR_PROT_DEV_PRIVATE_P2P | rw;
          else
            perm[i] = dev_.mkentry(pfns[i]);
        }
      lock.unlock();
      // Nothing stays mapped: a snapshot only looks.
      hmmRangeDmaUnmap(range, imp, addrs.data(), kinds.data(), addr, next);
      if (!retry) break;
    }
    sub.remove();
    if (ret != Errno::Ok) return ret;
    if (copyToUser(mm, uptr, perm.data(), n) != Errno::Ok) return Errno::Fault;
    cmd.cpages += n;
    uptr = uptr + n;
    addr = next;
  }
  return Errno::Ok;
}

// ------------------------------------------------------------------------------------------
// DmirrorP2pFabric
// ------------------------------------------------------------------------------------------

DmirrorP2pFabric::DmirrorP2pFabric(Router& router, Iommu& iommu, DmaMapping& dma, P2pDmaMapper& mapper,
                                   P2pChecker* checker)
    : router_(router), iommu_(iommu), dma_(dma), mapper_(mapper), checker_(checker) {}

DmirrorP2pFabric::~DmirrorP2pFabric() {
  for (DmirrorDevice* d : std::vector<DmirrorDevice*>(devices_)) detach(*d);
}

std::string DmirrorP2pFabric::attach(DmirrorDevice& dev, PciDev& pci, const DmirrorP2pParams& params) {
  if (dev.p2p()) return std::string(dev.name()) + ": already attached to a p2p fabric";
  const std::string bad =
      P2pExporter::check(pci, DmirrorP2p::exporterParams(params), dev.params().capacityBytes);
  if (!bad.empty()) return std::string(dev.name()) + ": " + bad;
  dev.attachP2p(std::make_unique<DmirrorP2p>(
      dev, pci, params, dma_, mapper_, checker_,
      [this](Device& imp, DmaAddr a, const DeviceTranslation& t, bool w) { return resolve(imp, a, t, w); }));
  dev.p2p()->fabric = this;
  devices_.push_back(&dev);
  return "";
}

void DmirrorP2pFabric::detach(DmirrorDevice& dev) {
  auto it = std::find(devices_.begin(), devices_.end(), &dev);
  if (it == devices_.end()) return;
  devices_.erase(it);
  dev.attachP2p(nullptr);
}

std::optional<Pa> DmirrorP2pFabric::resolve(Device& importer, DmaAddr a, const DeviceTranslation& t,
                                            bool write) {
  if (t.kind == HmmDmaKind::Local) return Pa(a.value());
  PciDev* req = toPciDev(&importer);
  if (!req) return std::nullopt;
  if (t.kind == HmmDmaKind::System && iommu_.mode() == IommuMode::Translate) {
    // Upstream to RAM through the IOMMU's IOTLB and walker.
    const IommuTranslation tr = iommu_.translate(req->bdf(), Iova(a.value()), write, 0);
    if (!tr.ok) return std::nullopt;
    return tr.pa;
  }
  TlpRouteAttrs at;
  at.write = write;
  const Route r = router_.routeRequest(*req, a.value(), at);
  if (!r.ok()) return std::nullopt;
  if (r.end == RouteEnd::SystemMemory) return Pa(r.targetAddr);
  for (DmirrorDevice* d : devices_) {
    DmirrorP2p& x = *d->p2p();
    if (r.target != &x.pci() || r.targetBar != x.barIndex()) continue;
    ++peerAccesses_;
    std::optional<DevPage> expected;
    if (t.kind == HmmDmaKind::DevmemP2p) expected = x.devPageOf(t.pfn);
    return x.exporter().resolvePeer(importer, BusAddr(r.targetAddr), expected ? &*expected : nullptr);
  }
  return std::nullopt;
}

}  // namespace hmmsim
