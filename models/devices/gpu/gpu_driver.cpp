// The GPU's driver half. See gpu_driver.h.
#include "models/devices/gpu/gpu_driver.h"

#include <algorithm>
#include <sstream>

#include "hmm/migrate_device.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmap_lock.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/dma_engine.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/topology.h"
#include "sim/assert.h"
#include "sim/trace.h"

namespace hmmsim {

namespace {

constexpr std::uint64_t k2M = 2ull << 20;

P2pExporterParams exporterParams(const GpuDriverParams& p) {
  P2pExporterParams e;
  e.bar = p.bar;
  e.apertureOffset = p.barApertureOffset;
  e.apertureBytes = 0;  // the rest of the BAR (GpuParams::barBytes) from the offset
  e.windowBytes = p.barWindowBytes;
  e.policy = p.barPolicy;
  e.importerCapPages = p.importerCapPages;
  e.reuseBeforeRevoke = p.reuseBeforeRevoke;
  e.windowProgramPs = p.windowProgramPs;
  e.rmapWalkPagePs = p.rmapWalkPagePs;
  e.specialPgoff = p.vramMmapOffset >> kPageShift;
  return e;
}

DeviceMemoryParams devmemParams(const Gpu& hw, const GpuDriverParams& p) {
  DeviceMemoryParams d;
  d.type = MemoryType::DevicePrivate;
  d.chunkBytes = p.chunkBytes;
  d.capacityBytes = hw.params().vramBytes - p.kernelRegionBytes;
  d.preallocateFirstChunk = false;  // the constructor registers every chunk
  d.basePa = hw.params().vramPa;
  return d;
}

}  // namespace

std::string GpuDriver::check(const Gpu& hw, PciDev& pci, const GpuDriverParams& params) {
  std::ostringstream os;
  const std::uint64_t vram = hw.params().vramBytes;
  if (params.kernelRegionBytes % k2M != 0 || params.kernelRegionBytes >= vram)
    os << "GpuDriverParams.kernelRegionBytes: must be a multiple of 2 MiB below vramBytes, got "
       << params.kernelRegionBytes;
  else if (params.chunkBytes == 0 || (vram - params.kernelRegionBytes) % params.chunkBytes != 0)
    os << "GpuDriverParams.chunkBytes: must divide the HMM part of VRAM (" << vram - params.kernelRegionBytes
       << " bytes), got " << params.chunkBytes;
  else if (params.vramMmapOffset % kPageSize != 0)
    os << "GpuDriverParams.vramMmapOffset: must be page aligned, got " << params.vramMmapOffset;
  else if (params.bar >= 0 && params.bar <= 5 && pciResourceLen(pci, params.bar) != hw.params().barBytes())
    os << "GpuDriverParams.bar: BAR " << params.bar << " of " << pci.name() << " has "
       << pciResourceLen(pci, params.bar) << " bytes, the GPU's BAR has " << hw.params().barBytes();
  if (!os.str().empty()) return os.str();
  std::string d = devmemParams(hw, params).check();
  if (!d.empty()) return d;
  return P2pExporter::check(pci, exporterParams(params), vram);
}

GpuDriver::GpuDriver(const std::string& name, Gpu& hw, PciDev& pci, P2pDmaMapper& mapper, P2pChecker* checker,
                     const GpuDriverParams& params, ImporterDmaDirectory* directory)
    : name_(name),
      hw_(hw),
      pci_(pci),
      mapper_(mapper),
      params_(params),
      vramFirst_(hmmsim::pfnOf(hw.params().vramPa)),
      vramPages_(hw.params().vramBytes >> kPageShift),
      copier_(hw.physMem(), params.copy, name + ".copy"),
      checker_(checker),
      directory_(directory),
      stats_(name),
      toVram_(stats_.counter("migrated_to_vram", "pages", "pages migrated to VRAM")),
      toRam_(stats_.counter("migrated_to_ram", "pages", "pages migrated back to system memory")),
      faults_(
          stats_.counter("migrate_to_ram_faults", "faults", "CPU faults on the GPU's device-private pages")) {
  const std::string bad = check(hw, pci, params);
  HMMSIM_ASSERT(bad.empty(), name << ": " << bad);
  PhysMem& pm = hw.physMem();
  devmem_ = std::make_unique<DeviceMemory>(pm, devmemParams(hw, params), owner(), name + ".devmem");
  while (devmem_->addChunk() == Errno::Ok) {
  }
  devmem_->setMigrateToRam([this](VmFault& vmf) { return devmemFault(vmf); });
  const Errno rc = pm.addDeviceRangeAt(hw.params().vramPa + kernelRegionOffset(),
                                       params.kernelRegionBytes >> kPageShift, nullptr, nullptr);
  HMMSIM_ASSERT(rc == Errno::Ok, name << ": cannot register the kernel region of VRAM: "
                                      << pm.checkDeviceRangeAt(hw.params().vramPa + kernelRegionOffset(),
                                                               params.kernelRegionBytes >> kPageShift));
  exporter_ = std::make_unique<P2pExporter>(name, pci, exporterParams(params), hw.params().vramBytes, *this,
                                            pm, mapper, checker);
  exporter_->installDevmem(*devmem_);
  exporter_->bindBarTarget(hw.bar());
}

GpuDriver::~GpuDriver() {
  dma_.reset();
  exporter_.reset();
  hw_.physMem().removeDeviceRange(vramFirst_ + (kernelRegionOffset() >> kPageShift));
}

std::shared_ptr<File> GpuDriver::open() {
  return openDeviceFile(hw_.physMem(), *this, FMODE_READ | FMODE_WRITE, name_);
}

Errno GpuDriver::mmap(File& /*file*/, Vma& vma) {
  return exporter_->mmapSpecial(vma);
}

// ---- the GPU as importer ------------------------------------------------------------------------

Errno GpuDriver::bindAddressSpace(Mm& mm, Va start, std::uint64_t bytes) {
  if (dma_ || bytes == 0 || !start.isAligned(kPageSize) || bytes % kPageSize != 0) return Errno::Inval;
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = owner();
  imp.dma = &mapper_.dma();
  imp.localAddress = [this](Pfn pfn) { return DmaAddr(vramOffsetOf(pfn)); };
  dma_ = std::make_unique<ImporterDma>(name_ + ".importer", mm, imp, hw_.dmaEngine(), start,
                                       bytes >> kPageShift, params_.dma, checker_, directory_);
  Gpu& hw = hw_;
  dma_->setLocalMemory(
      [&hw](DmaAddr a, std::uint64_t len, std::uint8_t* data, bool write, std::uint64_t startPs) {
        return hw.vramAccess(a.value(), len, data, write, startPs);
      });
  return Errno::Ok;
}

void GpuDriver::releaseAddressSpace() {
  dma_.reset();
}

Errno GpuDriver::launch(const GpuVaKernel& k) {
  if (!dma_ || k.bytes == 0 || k.bytes % 8 != 0 || k.in.value() % 8 != 0) return Errno::Inval;
  const Va lo = dma_->mirror().start();
  const Va hi = lo + (dma_->mirror().pages() << kPageShift);
  auto inside = [&](Va a, std::uint64_t n) { return a >= lo && a <= hi && n <= std::uint64_t(hi - a); };
  if (!inside(k.in, k.bytes)) return Errno::Inval;
  if (k.outToVa ? (k.out.value() % 8 != 0 || !inside(k.out, k.outBytes()))
                : (k.outVramOffset % 8 != 0 || k.outVramOffset < kernelRegionOffset() ||
                   k.outVramOffset > hw_.params().vramBytes ||
                   k.outBytes() > hw_.params().vramBytes - k.outVramOffset))
    return Errno::Inval;
  if (hw_.computeBusy()) return Errno::Busy;
  if (params_.prefault) {
    auto map = [&](Va a, std::uint64_t n, bool write) {
      return dma_->mirror().map(a.alignDown(kPageSize), (a + n).alignUp(kPageSize), write);
    };
    if (map(k.in, k.bytes, false) != HmmStatus::Ok) return Errno::Fault;
    if (k.outToVa && map(k.out, k.outBytes(), true) != HmmStatus::Ok) return Errno::Fault;
  }
  hw_.launchVa(k, *dma_);
  return Errno::Ok;
}

std::optional<DevPage> GpuDriver::devPageOf(Pfn pfn) {
  if (!isVram(pfn)) return std::nullopt;
  return DevPage(pfn - vramFirst_);
}

std::optional<Pfn> GpuDriver::pfnOf(DevPage p) {
  if (p.value() >= vramPages_) return std::nullopt;
  return vramFirst_ + p.value();
}

// ---- migration ------------------------------------------------------------------------------

bool GpuDriver::allocAndCopy(MigrateVma& args, bool toVram, std::vector<Copy>* copies) {
  PhysMem& pm = hw_.physMem();
  bool ok = true;
  for (unsigned long i = 0; i < args.npages; ++i) {
    const unsigned long s = args.src[i];
    if (!(s & MIGRATE_PFN_MIGRATE)) continue;
    const std::optional<Pfn> spage = migratePfnToPfn(s);
    if (!toVram && (!spage || !isVram(*spage))) continue;  // not ours (kernel: WARN_ON + skip)
    const std::optional<Pfn> dpage = toVram ? devmem_->allocPage() : migrateAllocSystemFolio(pm, 0);
    if (!dpage) {
      ok = false;
      continue;
    }
    if (spage)
      copier_.copyFolio(*dpage, *spage);
    else
      copier_.clearFolio(*dpage);
    args.dst[i] = migratePfn(*dpage) | (s & MIGRATE_PFN_WRITE);
    if (copies) {
      const Pfn vram = toVram ? *dpage : *spage;
      // An empty source is cleared in VRAM: VRAM time only, at host address 0 (no PCIe read).
      const std::uint64_t host = toVram ? (spage ? paOf(*spage).value() : ~0ull) : paOf(*dpage).value();
      copies->push_back({host, vramOffsetOf(vram)});
    }
  }
  return ok;
}

Errno GpuDriver::migrate(Mm& mm, Va start, Va end, bool toVram, tlm_utils::tlm_quantumkeeper* qk,
                         std::uint64_t* migrated) {
  if (!start.isAligned(kPageSize) || !end.isAligned(kPageSize) || end <= start) return Errno::Inval;
  if (mm.exited()) return Errno::Inval;
  std::vector<unsigned long> src(kPagesPerPmd), dst(kPagesPerPmd);
  std::vector<Copy> copies;
  std::uint64_t moved = 0;
  Errno ret = Errno::Ok;
  const std::uint64_t t0 = nowPs(qk);
  {
    MmapReadLock lock(mm);
    for (Va addr = start; addr < end && ret == Errno::Ok;) {
      Vma* vma = mm.vmaLookup(addr);
      if (!vma || addr < vma->vmStart) {
        ret = Errno::Inval;
        break;
      }
      Va next = std::min(end, addr.alignDown(kPmdSize) + kPmdSize);
      next = std::min(next, vma->vmEnd);
      std::fill(src.begin(), src.end(), 0UL);
      std::fill(dst.begin(), dst.end(), 0UL);
      MigrateVma args;
      args.vma = vma;
      args.src = src.data();
      args.dst = dst.data();
      args.start = addr;
      args.end = next;
      args.pgmapOwner = owner();
      args.flags = toVram ? MIGRATE_VMA_SELECT_SYSTEM : MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
      ret = migrateVmaSetup(args);
      if (ret != Errno::Ok) break;
      if (!allocAndCopy(args, toVram, qk ? &copies : nullptr)) ret = Errno::NoMem;
      // The copy engine runs between setup and pages, as the driver's copy does: the sources are
      // still allocated and unmapped (migration entries), the destinations not yet mapped.
      if (qk) {
        charge(copies, toVram, *qk);
        copies.clear();
      }
      migrateVmaPages(args);
      for (unsigned long i = 0; i < args.npages; ++i)
        if ((args.src[i] & MIGRATE_PFN_MIGRATE) && (args.dst[i] & MIGRATE_PFN_VALID)) ++moved;
      migrateVmaFinalize(args);
      addr = next;
    }
  }
  (toVram ? toVram_ : toRam_) += moved;
  if (migrated) *migrated = moved;
  if (qk) copier_.takePendingPs();  // charged on the copy engine instead
  TraceSink* trace = hw_.dmaEngine().timelineTrace();
  if (trace != nullptr && trace->on(TraceCategory::HmmMigrate)) {
    std::ostringstream args;
    args << "[" << start << ", " << end << "): " << moved << " pages moved, " << errnoName(ret);
    trace->slice(TraceCategory::HmmMigrate, "device." + name_ + ".migrate",
                 toVram ? "migrate to VRAM" : "migrate to RAM", t0, nowPs(qk) - t0, args.str());
  }
  return ret;
}

std::uint64_t GpuDriver::nowPs(const tlm_utils::tlm_quantumkeeper* qk) {
  const sc_core::sc_time now = sc_core::sc_time_stamp() + (qk ? qk->get_local_time() : sc_core::SC_ZERO_TIME);
  return now.value();
}

Errno GpuDriver::migrateToVram(Mm& mm, Va start, Va end, tlm_utils::tlm_quantumkeeper* qk,
                               std::uint64_t* migrated) {
  return migrate(mm, start, end, true, qk, migrated);
}

Errno GpuDriver::migrateToRam(Mm& mm, Va start, Va end, tlm_utils::tlm_quantumkeeper* qk,
                              std::uint64_t* migrated) {
  return migrate(mm, start, end, false, qk, migrated);
}

void GpuDriver::charge(const std::vector<Copy>& copies, bool toVram, tlm_utils::tlm_quantumkeeper& qk) {
  for (std::size_t i = 0; i < copies.size();) {
    std::size_t j = i + 1;
    while (j < copies.size() && copies[j].vram == copies[j - 1].vram + kPageSize &&
           (copies[i].host == ~0ull ? copies[j].host == ~0ull
                                    : copies[j].host == copies[j - 1].host + kPageSize))
      ++j;
    const std::uint64_t bytes = (j - i) << kPageShift;
    if (copies[i].host == ~0ull) {  // cleared pages: VRAM writes only
      hw_.clear(copies[i].vram, bytes, qk);
    } else {
      // The copy engine reaches system memory through the DMA API (dma_map_page of the run).
      DmaMapping& dma = mapper_.dma();
      const DmaDir dir = toVram ? DmaDir::ToDevice : DmaDir::FromDevice;
      const DmaAddr at = dma.dmaMapPage(pci_, Pa(copies[i].host), bytes, dir);
      HMMSIM_ASSERT(at != kDmaMappingError, name_ << ": the copy engine cannot map system memory");
      hw_.copy(toVram, at.value(), copies[i].vram, bytes, qk);
      dmaUnmap(at, bytes, dir, qk);
    }
    i = j;
  }
  qk.sync();
}

void GpuDriver::dmaUnmap(DmaAddr at, std::uint64_t bytes, DmaDir dir, tlm_utils::tlm_quantumkeeper& qk) {
  // dma_unmap_page returns once the IOMMU invalidated the mapping (strict mode; a lazy unmap
  // costs nothing now and its flush whoever fills the queue): the caller waits for it.
  DmaMapping& dma = mapper_.dma();
  const std::uint64_t before = dma.iommu().invalidationPs();
  dma.dmaUnmapPage(pci_, at, bytes, dir);
  qk.inc(sc_core::sc_time::from_value(dma.iommu().invalidationPs() - before));
}

Errno GpuDriver::copyVramToUser(Mm& mm, Va dst, std::uint64_t vramOffset, std::uint64_t bytes,
                                tlm_utils::tlm_quantumkeeper& qk) {
  const std::uint64_t vram = hw_.params().vramBytes;
  if (bytes == 0 || vramOffset > vram || bytes > vram - vramOffset) return Errno::Inval;
  const Va first = dst.alignDown(kPageSize);
  const std::size_t n = static_cast<std::size_t>(((dst + bytes).alignUp(kPageSize) - first) >> kPageShift);
  std::vector<Pfn> pages(n);
  const GupResult g = pinUserPages(mm, first, n, kFollWrite, pages.data());
  if (g.nrPages < n) {
    if (g.nrPages > 0) unpinUserPages(mm, pages.data(), g.nrPages);
    return Errno::Fault;
  }
  DmaMapping& dma = mapper_.dma();
  Errno ret = Errno::Ok;
  for (std::uint64_t done = 0; done < bytes && ret == Errno::Ok;) {
    // One run: the user bytes from dst + done that are physically contiguous.
    const std::uint64_t off = (dst + done) - first;
    std::size_t page = static_cast<std::size_t>(off >> kPageShift);
    const Pa pa = paOf(pages[page]) + (off & (kPageSize - 1));
    std::uint64_t len = std::min(bytes - done, kPageSize - (off & (kPageSize - 1)));
    while (done + len < bytes && pages[page + 1].value() == pages[page].value() + 1) {
      ++page;
      len += std::min(bytes - done - len, kPageSize);
    }
    const DmaAddr at = dma.dmaMapPage(pci_, pa, len, DmaDir::FromDevice);
    HMMSIM_ASSERT(at != kDmaMappingError, name_ << ": the copy engine cannot map system memory");
    if (hw_.copy(false, at.value(), vramOffset + done, len, qk) != CplStatus::SuccessfulCompletion)
      ret = Errno::Io;
    dmaUnmap(at, len, DmaDir::FromDevice, qk);
    done += len;
  }
  qk.sync();
  unpinUserPages(mm, pages.data(), n);
  return ret;
}

VmFaultResult GpuDriver::devmemFault(VmFault& vmf) {
  // migrate_to_ram of the faulting page (4 KiB: the GPU's device pages are never compound).
  ++faults_;
  MigrateVma args;
  unsigned long src = 0, dst = 0;
  args.vma = vmf.vma;
  args.src = &src;
  args.dst = &dst;
  args.start = vmf.address;
  args.end = vmf.address + kPageSize;
  args.pgmapOwner = owner();
  args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
  args.faultPage = vmf.page;
  if (migrateVmaSetup(args) != Errno::Ok) return VmFaultResult::Sigbus;
  // A CPU thread's fault waits for the copy engine (nouveau_dmem_migrate_to_ram waits for its
  // fence), between setup and pages as migrate() does; outside an SC_THREAD nothing can wait.
  const sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
  const bool timed = h.valid() && h.proc_kind() == sc_core::SC_THREAD_PROC_;
  std::vector<Copy> copies;
  const bool ok = allocAndCopy(args, false, timed ? &copies : nullptr);
  if (timed && !copies.empty()) {
    if (vmf.vma->vmMm != nullptr)
      vmf.vma->vmMm->blocker().current().mightSleep("migrate_to_ram: wait for the copy", LockSite::here());
    SeqQuantumKeeper qk;
    qk.reset();
    charge(copies, false, qk);
    copier_.takePendingPs();  // charged on the copy engine instead
  }
  migrateVmaPages(args);
  if ((src & MIGRATE_PFN_MIGRATE) && (dst & MIGRATE_PFN_VALID)) ++toRam_;
  migrateVmaFinalize(args);
  return ok ? VmFaultResult::None : VmFaultResult::Oom;
}

}  // namespace hmmsim
