#include "models/devices/nvme/nvme_export.h"

#include "models/cpu_mmu/phys_mem.h"
#include "models/pcie/memory_target.h"

namespace hmmsim {

namespace {

P2pExporterParams exportParams() {
  P2pExporterParams p;
  p.bar = 0;
  p.policy = BarPolicy::Unlimited;
  return p;
}

}  // namespace

std::string NvmeExport::check(PciDev& pci, std::uint64_t barBytes) {
  return P2pExporter::check(pci, exportParams(), barBytes);
}

NvmeExport::NvmeExport(const std::string& name, PciDev& pci, Pa barPa, std::uint64_t barBytes, PhysMem& pm,
                       P2pDmaMapper& mapper, P2pChecker* checker)
    : first_(hmmsim::pfnOf(barPa)),
      pages_(barBytes >> kPageShift),
      exporter_(
          std::make_unique<P2pExporter>(name, pci, exportParams(), barBytes, *this, pm, mapper, checker)) {}

void NvmeExport::bindBarTarget(PcieMemoryTarget& target) {
  exporter_->bindBarTarget(target);
}

std::optional<DevPage> NvmeExport::devPageOf(Pfn pfn) {
  if (pfn < first_ || pfn - first_ >= pages_) return std::nullopt;
  return DevPage(pfn - first_);
}

std::optional<Pfn> NvmeExport::pfnOf(DevPage p) {
  if (p.value() >= pages_) return std::nullopt;
  return first_ + p.value();
}

Errno NvmeExport::mmap(File&, Vma& vma) {
  return exporter_->mmapSpecial(vma);
}

}  // namespace hmmsim
