// The GPU + NIC workloads' shared parts. See gpu_nic_parts.h.
#include "models/platform/gpu_nic_parts.h"

#include <vector>

#include "models/cpu_mmu/memory.h"
#include "sim/config.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}
}  // namespace

GpuNicParts::GpuNicParts(Platform& p, const std::string& gpu, const std::string& nic,
                         const std::string& process)
    : p_(p), gpuName_(gpu), nicName_(nic) {
  gpu_ = dynamic_cast<GpuPlatformDevice*>(&p.device(gpu));
  nic_ = dynamic_cast<NicPlatformDevice*>(&p.device(nic));
  if (!gpu_) fail("gpu", "device \"" + gpu + "\" is not a gpu");
  if (!nic_) fail("nic", "device \"" + nic + "\" is not a nic");
  for (const DeviceDesc& d : p.desc().devices)
    if (d.name == nic) nicEndpoint_ = d.endpoint;
  mm_ = &p.process(process);
}

GpuNicParts::~GpuNicParts() {
  nic_->nic().setMonitorImporter(nullptr);
  nic_->nic().setTxImporter(nullptr);
  importer_.reset();  // before the process exits (the platform's teardown)
}

Va GpuNicParts::mapVram(std::uint64_t offset, std::uint64_t bytes) {
  if (!file_) file_ = gpu_->driver().open();
  const VaResult r = mm_->mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file_,
                               gpu_->driver().params().vramMmapOffset + offset);
  if (!r.ok()) fail("gpu", "mmap of the GPU's VRAM failed");
  return r.addr;
}

Va GpuNicParts::processBuffer(const WorkloadPlacement& place, const PlaceableRegion& r) {
  std::optional<Va> at = placedRegion(p_, place, r);
  if (!at) {
    const VaResult m = mm_->mmap(Va(0), r.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!m.ok()) fail("process", "cannot map " + std::to_string(r.bytes) + " bytes of anonymous memory");
    at = m.addr;
  }
  const std::vector<std::uint8_t> zeros(r.bytes);
  if (copyToUser(*mm_, *at, zeros.data(), r.bytes) != Errno::Ok)
    fail("process", "cannot populate " + r.name + " (system RAM or the hugetlb pool too small?)");
  return *at;
}

ImporterDmaParams GpuNicParts::importerParams() const {
  return ImporterDmaParams::withFaultAround(nic_->nic().params().faultAroundPages);
}

std::unique_ptr<ImporterDma> GpuNicParts::newImporter(const std::string& name, Va start,
                                                      std::uint64_t bytes) {
  HmmDmaImporter imp;
  imp.device = &p_.pci(nicEndpoint_);
  imp.dma = &p_.dma();
  return std::make_unique<ImporterDma>(name, *mm_, imp, p_.fabric().engine(nicEndpoint_), start,
                                       bytes >> kPageShift, importerParams(), &p_.checker(), &p_.directory());
}

ImporterDma& GpuNicParts::importerOver(Va start, std::uint64_t bytes) {
  importer_ = newImporter(nicName_ + ".dma", start, bytes);
  if (importer_->mirror().map(start, start + bytes, false) != HmmStatus::Ok)
    fail("nic", "the NIC's importer cannot map its range");
  return *importer_;
}

void GpuNicParts::addStats(StatsRegistry& r) const {
  r.add("device." + gpuName_, gpu_->gpu().stats());
  r.add("device." + gpuName_ + ".bar", gpu_->gpu().bar().stats());
  r.add("device." + gpuName_ + ".bar_manager", gpu_->driver().exporter().bar().stats());
  r.add("device." + nicName_, nic_->nic().stats());
  if (importer_) r.add("device." + nicName_ + ".importer", importer_->stats());
}

}  // namespace hmmsim
