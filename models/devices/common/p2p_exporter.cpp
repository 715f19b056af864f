// The exporter half of the RFC, shared by every exporting device. See p2p_exporter.h.
#include "models/devices/common/p2p_exporter.h"

#include <algorithm>
#include <sstream>

#include "hmm/hmm.h"
#include "hmm/memremap.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/rmap.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/topology.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

P2pBarParams barParams(PciDev& pci, const P2pExporterParams& p, std::uint64_t deviceMemBytes) {
  P2pBarParams b;
  // The aperture's first byte: pci_resource_start / pci_bus_address of the BAR plus the offset,
  // as pci_p2pdma_add_resource() places a provider's pages at offset within the BAR.
  b.barPa = pciResourceStart(pci, p.bar) + p.apertureOffset;
  b.barBus = pciBusAddress(pci, p.bar) + p.apertureOffset;
  b.apertureBytes = p.apertureBytes ? p.apertureBytes : pciResourceLen(pci, p.bar) - p.apertureOffset;
  b.windowBytes = p.windowBytes;
  b.deviceMemBytes = deviceMemBytes;
  b.policy = p.policy;
  b.importerCapPages = p.importerCapPages;
  b.reuseBeforeRevoke = p.reuseBeforeRevoke;
  return b;
}

}  // namespace

std::string P2pExporter::check(PciDev& pci, const P2pExporterParams& params, std::uint64_t deviceMemBytes) {
  std::ostringstream os;
  if (params.bar < 0 || params.bar > 5 || pciResourceLen(pci, params.bar) == 0) {
    os << "P2pExporterParams.bar " << params.bar << " is not a BAR of " << pci.name()
       << " (choose one with a memory resource)";
    return os.str();
  }
  const std::uint64_t len = pciResourceLen(pci, params.bar);
  if (params.apertureOffset >= len || params.windowBytes == 0 ||
      params.apertureOffset % params.windowBytes != 0) {
    os << "P2pExporterParams.apertureOffset " << params.apertureOffset
       << " must be a multiple of windowBytes (" << params.windowBytes << ") below the size of BAR "
       << params.bar << " of " << pci.name() << " (" << len << ")";
    return os.str();
  }
  if (params.apertureBytes > len - params.apertureOffset) {
    os << "P2pExporterParams.apertureBytes exceeds BAR " << params.bar << " of " << pci.name() << " (at most "
       << len - params.apertureOffset << " from apertureOffset " << params.apertureOffset << ")";
    return os.str();
  }
  return barParams(pci, params, deviceMemBytes).check();
}

P2pExporter::P2pExporter(const std::string& name, PciDev& pci, const P2pExporterParams& params,
                         std::uint64_t deviceMemBytes, P2pExportedMemory& mem, PhysMem& pm,
                         P2pDmaMapper& mapper, P2pChecker* checker)
    : name_(name),
      pci_(pci),
      params_(params),
      mem_(mem),
      pm_(pm),
      mapper_(mapper),
      checker_(checker),
      vmaRevoker_(params.specialPgoff),
      bar_(barParams(pci, params, deviceMemBytes), this, name + ".bar"),
      stats_(name + ".p2p"),
      devmemMaps_(stats_.counter("devmem_p2p_pages", "pages", "pages mapped by the devmem p2p_map")),
      devmemDeclined_(stats_.counter("devmem_p2p_declined", "calls", "devmem p2p_map calls that declined")),
      vmaMaps_(stats_.counter("vma_p2p_pages", "pages", "pages mapped by the special vma's p2p_map")),
      vmaRefused_(stats_.counter("vma_p2p_refused", "calls", "special-vma p2p_map calls refused")),
      unmapPages_(stats_.counter("p2p_unmap_pages", "pages", "pages given back by p2p_unmap")),
      revokeRounds_(stats_.counter("revoke_clear_rounds", "rounds", "CLEAR rounds over anonymous vmas")),
      peerAccesses_(stats_.counter("peer_accesses", "accesses", "peer accesses resolved through the BAR")),
      windowPrograms_(stats_.counter("window_programs", "windows", "BAR target windows reprogrammed")),
      windowProgramPs_(
          stats_.counter("window_program_ps", "ps", "time threads spent programming BAR windows")),
      rmapWalkPs_(stats_.counter("rmap_walk_ps", "ps", "time revokes spent in the rmap walk")) {
  const std::string bad = check(pci, params, deviceMemBytes);
  HMMSIM_ASSERT(bad.empty(), name << ": " << bad);
  if (checker_) checker_->registerBar(bar_, name_);
}

P2pExporter::~P2pExporter() {
  if (devmem_ && devmem_->p2pOps() == this) devmem_->setP2pOps(nullptr);
  bar_.setWindowObserver(nullptr);
  if (checker_) checker_->unregisterBar(bar_);
}

void P2pExporter::installDevmem(DeviceMemory& devmem) {
  devmem_ = &devmem;
  devmem.setP2pOps(this);
}

void P2pExporter::setWindowProgrammer(WindowProgrammer program) {
  program_ = std::move(program);
  if (!program_) {
    bar_.setWindowObserver(nullptr);
    return;
  }
  bar_.setWindowObserver([this](BarWindowIdx w, std::uint64_t chunk) { programWindow(w, chunk); });
  for (std::uint64_t w = 0; w < bar_.windowCount(); ++w) {
    std::uint64_t chunk = 0;
    if (bar_.chunkOfWindow(BarWindowIdx(w), &chunk)) programWindow(BarWindowIdx(w), chunk);
  }
}

void P2pExporter::programWindow(BarWindowIdx w, std::uint64_t chunk) {
  const std::uint64_t wb = bar_.params().windowBytes;
  const Errno rc = program_(w.value() * wb, chunk * wb, wb);
  HMMSIM_ASSERT(rc == Errno::Ok, name_ << ": BAR window " << w.value() << " -> chunk " << chunk
                                       << " was refused by the BAR: " << errnoName(rc));
  ++windowPrograms_;
  // An aperture covering device memory maps it 1:1 once (probe); a smaller one re-points windows.
  if (wait_ && bar_.params().apertureBytes < bar_.params().deviceMemBytes) {
    owedPs_ += params_.windowProgramPs;
    windowProgramPs_ += params_.windowProgramPs;
  }
}

void P2pExporter::settleWindowTime() {
  const std::uint64_t ps = owedPs_;
  owedPs_ = 0;
  if (ps != 0 && wait_) wait_(ps);
}

// ---- grants ---------------------------------------------------------------------------------

std::uint64_t P2pExporter::dmaMapPages(Device& importer, DevPage first, std::uint64_t n, const Pa* pa,
                                       DmaAddr* out, bool write) {
  const DmaDir dir = write ? DmaDir::Bidirectional : DmaDir::ToDevice;
  for (std::uint64_t i = 0; i < n; ++i) {
    const DmaAddr a =
        mapper_.map(pci_, params_.bar, importer, pa[i], kPageSize, dir, nullptr, params_.ignoreMapType);
    if (a == kDmaMappingError) {  // NOT_SUPPORTED between the two functions, IOVA space full
      bar_.unmap(importer, first + i, n - i);
      return i;
    }
    Grant& g = grants_[{&importer, a.value()}];
    if (g.toDevice + g.bidir) HMMSIM_ASSERT(g.page == first + i, "two device pages behind one p2p address");
    g.page = first + i;
    ++(write ? g.bidir : g.toDevice);
    out[i] = a;
  }
  return n;
}

bool P2pExporter::ungrant(Device& importer, DmaAddr addr) {
  auto it = grants_.find({&importer, addr.value()});
  if (it == grants_.end()) return false;
  Grant& g = it->second;
  const bool bidir = g.bidir != 0;
  const Errno rc = mapper_.unmap(importer, addr, kPageSize, bidir ? DmaDir::Bidirectional : DmaDir::ToDevice);
  HMMSIM_ASSERT(rc == Errno::Ok, "p2p DMA unmap of " << addr << " failed: " << errnoName(rc));
  bar_.unmap(importer, g.page, 1);
  --(bidir ? g.bidir : g.toDevice);
  if (g.toDevice + g.bidir == 0) grants_.erase(it);
  ++unmapPages_;
  return true;
}

// ---- devmem p2p ops (RFC 4/5) ---------------------------------------------------------------

std::uint64_t P2pExporter::p2pMap(DeviceMemory& devmem, Device& importer, Va /*addr*/,
                                  const unsigned long* hmmPfns, std::uint64_t npages, DmaAddr* pas,
                                  bool /*write*/) {
  HMMSIM_ASSERT(&devmem == devmem_, name_ << ": devmem p2p ops called for another device's memory");
  auto pageAt = [&](std::uint64_t j) -> std::optional<DevPage> {
    const std::optional<DevPage> p = mem_.devPageOf(hmmPfnToPfn(hmmPfns[j]));
    if (!p || p->value() >= devicePages()) return std::nullopt;  // not exported: declined
    return p;
  };
  std::uint64_t k = 0;
  while (k < npages) {
    const std::optional<DevPage> first = pageAt(k);
    if (!first) break;
    // One BAR request per run of consecutive device pages of one access kind (so a reclaim never
    // revokes a page this same run mapped). Each page's DMA direction follows its own entry: the
    // caller's `write` is the first page's (hmmRangeDmaMap passes its HMM_PFN_WRITE), so a mixed
    // run would otherwise map read-only pages writable or the reverse.
    auto writable = [&](std::uint64_t j) { return (hmmPfns[j] & HMM_PFN_WRITE) != 0; };
    const bool w = writable(k);
    std::uint64_t run = 1;
    while (k + run < npages && writable(k + run) == w) {
      const std::optional<DevPage> p = pageAt(k + run);
      if (!p || *p != *first + run) break;
      ++run;
    }
    scratch_.assign(run, Pa(0));
    const BarMapResult r = bar_.map(importer, *first, run, scratch_.data(), BarMapMode::Prefix);
    const std::uint64_t got = dmaMapPages(importer, *first, r.pages, scratch_.data(), pas + k, w);
    k += got;
    if (got < run) break;
  }
  settleWindowTime();  // the manager is done: the importer's thread waits for the programming
  if (k == 0) ++devmemDeclined_;
  devmemMaps_ += k;
  return k;
}

std::uint64_t P2pExporter::p2pUnmap(DeviceMemory& /*devmem*/, Device& importer, Va /*addr*/,
                                    const unsigned long* hmmPfns, std::uint64_t npages, const DmaAddr* pas) {
  std::uint64_t k = 0;
  for (; k < npages; ++k) {
    if (!mem_.devPageOf(hmmPfnToPfn(hmmPfns[k]))) break;
    if (!ungrant(importer, pas[k])) break;
  }
  return k;
}

// ---- the special vma (RFC 3/5) --------------------------------------------------------------

Errno P2pExporter::mmapSpecial(Vma& vma) {
  if (bar_.unplugged()) return Errno::NoDev;
  if (vma.vmPgoff < params_.specialPgoff) return Errno::Inval;
  const std::uint64_t first = vma.vmPgoff - params_.specialPgoff;
  for (std::uint64_t p = first; p < first + vma.pages(); ++p)
    if (!exported(DevPage(p))) return Errno::Inval;
  vma.vmOps = this;
  vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
  vmaRevoker_.track(vma);
  return Errno::Ok;
}

void P2pExporter::open(Vma& vma) {
  vmaRevoker_.track(vma);
}

void P2pExporter::close(Vma& vma) {
  vmaRevoker_.untrack(vma);
}

Errno P2pExporter::p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) {
  if (write && !(vma.vmFlags & VM_WRITE)) {
    ++vmaRefused_;
    return Errno::Perm;
  }
  const std::uint64_t n = (end - start) >> kPageShift;
  const DevPage first = vmaRevoker_.devPageOf(vma, start);
  for (std::uint64_t i = 0; i < n; ++i)
    if (!mem_.pfnOf(first + i)) {  // the backing was removed since the mmap
      ++vmaRefused_;
      return Errno::NoDev;
    }
  std::vector<Pa> cpu(n);
  const BarMapResult r = bar_.map(importer, first, n, cpu.data(), BarMapMode::AllOrNothing);
  settleWindowTime();
  if (!r.ok()) {
    ++vmaRefused_;
    return r.err();
  }
  const std::uint64_t got = dmaMapPages(importer, first, n, cpu.data(), pa, write);
  if (got < n) {  // nothing stays mapped (AllOrNothing)
    for (std::uint64_t i = 0; i < got; ++i) ungrant(importer, pa[i]);
    ++vmaRefused_;
    return Errno::OpNotSupp;
  }
  vmaMaps_ += n;
  return Errno::Ok;
}

Errno P2pExporter::p2pUnmap(Vma& /*vma*/, Device& importer, Va start, Va end, const DmaAddr* pa) {
  Errno rc = Errno::Ok;
  for (std::uint64_t i = 0; i < ((end - start) >> kPageShift); ++i)
    if (!ungrant(importer, pa[i])) rc = Errno::Inval;
  return rc;
}

// ---- revocation -----------------------------------------------------------------------------

void P2pExporter::revoke(DevPage first, std::uint64_t npages, BarEvent why) {
  // Special vmas: unmap_mapping_range of the file pages (CLEAR rounds on each vma).
  vmaRevoker_.revoke(first, npages, why);
  // Device-private pages in anonymous vmas: the rmap walk finds where they are mapped; one
  // CLEAR round per mapping, the CPU entries untouched (the data stays in device memory).
  struct Where {
    Mm* mm;
    Va start, end;
  };
  std::vector<Where> where;
  std::uint64_t walked = 0;
  for (std::uint64_t p = first.value(); p < first.value() + npages; ++p) {
    const std::optional<Pfn> pfn = mem_.pfnOf(DevPage(p));
    if (!pfn || pm_.frame(*pfn).refcount() == 0) continue;
    ++walked;
    const Pfn head = pm_.compoundHead(*pfn);
    rmapWalkAnon(pm_, head, [&](const RmapMapping& m) {
      const Va va = m.va + ((*pfn - head) << kPageShift);
      if (m.level == PtLevel::Pte || va.alignDown(ptLevelSize(m.level)) == m.va)
        where.push_back({m.mm, va, va + kPageSize});
    });
  }
  // The walk's time passes before the rounds it finds (the hook may sleep: the importers'
  // invalidations inside the rounds do too).
  if (wait_ && walked != 0) {
    rmapWalkPs_ += walked * params_.rmapWalkPagePs;
    wait_(walked * params_.rmapWalkPagePs);
  }
  for (std::size_t i = 0; i < where.size();) {  // merge adjacent pages of one mm
    std::size_t j = i + 1;
    Va end = where[i].end;
    while (j < where.size() && where[j].mm == where[i].mm && where[j].start == end) end = where[j++].end;
    ++revokeRounds_;
    where[i].mm->notifyRange(MmuNotifierEvent::Clear, where[i].start, end);
    i = j;
  }
}

BarRevokeResult P2pExporter::revokePages(DevPage first, std::uint64_t npages) {
  if (first.value() >= devicePages()) return {};
  return bar_.revokeRange(first, std::min(npages, devicePages() - first.value()));
}

// ---- peer accesses --------------------------------------------------------------------------

std::optional<DevPage> P2pExporter::specialDevPage(Mm& mm, Va va) {
  const Vma* v = mm.vmaLookup(va);
  if (!v || v->vmOps != static_cast<VmOperations*>(this)) return std::nullopt;
  return vmaRevoker_.devPageOf(*v, va);
}

BarAccessCheck P2pExporter::checkPeerAccess(const Device& importer, BusAddr bus, std::uint64_t len,
                                            const DevPage* expected) {
  if (checker_) checker_->barAccess(importer, bus, len, expected);
  // The hardware reaches whatever the live window maps (a window re-pointed without revoke
  // serves another page's bytes: the checker reported it above); `expected` is the checker's.
  return bar_.checkAccess(bus, len);
}

std::optional<Pa> P2pExporter::resolvePeer(const Device& importer, BusAddr bus, const DevPage* expected) {
  ++peerAccesses_;
  const BarAccessCheck c = checkPeerAccess(importer, bus, 1, expected);
  if (!c.inAperture || !c.legal) return std::nullopt;
  const std::optional<Pfn> pfn = mem_.pfnOf(c.page);
  if (!pfn) return std::nullopt;
  const std::uint64_t off = (bus - bar_.params().barBus) & (kPageSize - 1);
  return paOf(*pfn) + off;
}

}  // namespace hmmsim
