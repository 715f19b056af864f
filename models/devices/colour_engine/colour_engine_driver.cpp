#include "models/devices/colour_engine/colour_engine_driver.h"

#include <string>
#include <utility>

#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"

namespace hmmsim {

ColourEngineDriver::ColourEngineDriver(std::string name, ColourEngine& hw, PhysMem& pm, PciDev& pci, Pa barPa,
                                       DmaMapping& dma, P2pDmaMapper& mapper,
                                       const ColourEngineDriverParams& params, P2pChecker* checker,
                                       ImporterDmaDirectory* directory)
    : name_(std::move(name)),
      hw_(hw),
      pm_(pm),
      pci_(pci),
      barPa_(barPa),
      dmaApi_(dma),
      params_(params),
      checker_(checker),
      directory_(directory) {
  const std::uint64_t bytes = hw.params().deviceMemoryBytes;
  const Errno rc = pm.addDeviceRangeAt(barPa, bytes >> kPageShift, nullptr, nullptr);
  HMMSIM_ASSERT(rc == Errno::Ok, "colour engine memory at "
                                     << barPa << ": " << pm.checkDeviceRangeAt(barPa, bytes >> kPageShift));
  const std::string err = P2pExporter::check(pci, params.exporter, bytes);
  HMMSIM_ASSERT(err.empty(), name_ << ": " << err);
  exporter_ = std::make_unique<P2pExporter>(name_, pci, params.exporter, bytes, *this, pm, mapper, checker);
  if (hw.bar()) {
    exporter_->bindBarTarget(*hw.bar());
    if (directory_)
      directory_->watchBar(
          *hw.bar(), [this](Pfn p) { return devPageOf(p); },
          [this](Mm& mm, Va va) { return exporter_->specialDevPage(mm, va); });
  }
}

ColourEngineDriver::~ColourEngineDriver() = default;

std::optional<DevPage> ColourEngineDriver::devPageOf(Pfn pfn) {
  const Pfn first = hmmsim::pfnOf(barPa_);
  if (pfn < first || pfn - first >= (hw_.params().deviceMemoryBytes >> kPageShift)) return std::nullopt;
  return DevPage(pfn - first);
}

std::optional<Pfn> ColourEngineDriver::pfnOf(DevPage p) {
  if (p.value() >= (hw_.params().deviceMemoryBytes >> kPageShift)) return std::nullopt;
  return hmmsim::pfnOf(barPa_) + p.value();
}

std::shared_ptr<File> ColourEngineDriver::openFile() {
  return openDeviceFile(pm_, *this, FMODE_READ | FMODE_WRITE, "/dev/" + name_);
}

Errno ColourEngineDriver::mmap(File& /*file*/, Vma& vma) {
  return exporter_->mmapSpecial(vma);
}

Errno ColourEngineDriver::bindAddressSpace(Mm& mm, Va start, std::uint64_t bytes) {
  if (dma_ || bytes == 0 || start.value() % kPageSize || bytes % kPageSize) return Errno::Inval;
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = this;
  imp.dma = &dmaApi_;
  dma_ = std::make_unique<ImporterDma>(name_ + ".dma", mm, imp, hw_.engine(), start, bytes >> kPageShift,
                                       params_.dma, checker_, directory_);
  return Errno::Ok;
}

FrameDmaPort* ColourEngineDriver::userPort(Va va, std::uint64_t bytes, bool deviceWrites, Errno& err) {
  const Va lo = dma_ ? dma_->mirror().start() : Va(0);
  const Va hi = lo + (dma_ ? dma_->mirror().pages() << kPageShift : 0);
  if (!dma_ || va.value() % kPageSize || va < lo || va > hi || bytes > std::uint64_t(hi - va)) {
    err = Errno::Inval;
    return nullptr;
  }
  std::unique_ptr<ImporterDmaPort>& p = ports_[{va.value(), bytes}];
  if (!p) {
    p = std::make_unique<ImporterDmaPort>(*dma_, va, bytes);
    const Va end = va + (((bytes + kPageSize - 1) >> kPageShift) << kPageShift);
    if (params_.prefault && dma_->mirror().map(va, end, deviceWrites) != HmmStatus::Ok) {
      ports_.erase({va.value(), bytes});
      err = Errno::Fault;
      return nullptr;
    }
  }
  return p.get();
}

Errno ColourEngineDriver::process(const ColourRequest& r) {
  if (!r.width || !r.height) return Errno::Inval;
  const std::uint64_t inBytes = std::uint64_t(r.width) * r.height * bytesPerPixel(r.inFormat);
  const std::uint64_t outBytes = std::uint64_t(r.width) * r.height * bytesPerPixel(r.outFormat);
  ColourJob job;
  Errno err = Errno::Ok;
  if (r.srcLocal) {
    const std::uint64_t mem = hw_.params().deviceMemoryBytes;
    if (r.srcOffset > mem || inBytes > mem - r.srcOffset) return Errno::Inval;
    std::unique_ptr<FrameDmaPort>& lp = localPorts_[{r.srcOffset, inBytes}];
    if (!lp) lp = hw_.localPort(r.srcOffset, inBytes);
    job.src = lp.get();
  } else {
    job.src = userPort(r.srcVa, inBytes, false, err);
    if (!job.src) return err;
  }
  job.dst = userPort(r.dstVa, outBytes, true, err);
  if (!job.dst) return err;
  job.width = r.width;
  job.height = r.height;
  job.inFormat = r.inFormat;
  job.outFormat = r.outFormat;
  job.tag = r.tag;
  hw_.submit(job);
  return Errno::Ok;
}

}  // namespace hmmsim
