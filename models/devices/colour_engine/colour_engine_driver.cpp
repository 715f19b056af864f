#include "models/devices/colour_engine/colour_engine_driver.h"

#include <string>

#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"

namespace hmmsim {

ColourEngineDriver::ColourEngineDriver(ColourEngine& hw, PhysMem& pm, PciDev& pci, int bar, Pa barPa,
                                       DmaMapping& dma, P2pDmaMapper& mapper,
                                       const ColourEngineDriverParams& params, P2pChecker* checker)
    : hw_(hw),
      pm_(pm),
      pci_(pci),
      bar_(bar),
      barPa_(barPa),
      dma_(dma),
      mapper_(mapper),
      params_(params),
      checker_(checker) {
  const Errno rc = pm.addDeviceRangeAt(barPa, hw.params().deviceMemoryBytes >> kPageShift, nullptr, nullptr);
  HMMSIM_ASSERT(rc == Errno::Ok,
                "colour engine memory at "
                    << barPa << ": "
                    << pm.checkDeviceRangeAt(barPa, hw.params().deviceMemoryBytes >> kPageShift));
}

ColourEngineDriver::~ColourEngineDriver() = default;

std::shared_ptr<File> ColourEngineDriver::openFile() {
  return openDeviceFile(pm_, *this, FMODE_READ | FMODE_WRITE, std::string("/dev/") + hw_.name());
}

Errno ColourEngineDriver::mmap(File& /*file*/, Vma& vma) {
  if (((vma.vmPgoff + vma.pages()) << kPageShift) > hw_.params().deviceMemoryBytes) return Errno::Inval;
  vma.vmOps = this;
  vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
  return Errno::Ok;
}

Errno ColourEngineDriver::p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) {
  if (write && !(vma.vmFlags & VM_WRITE)) return Errno::Perm;
  const std::uint64_t n = (end - start) >> kPageShift;
  const std::uint64_t first = vma.vmPgoff + ((start - vma.vmStart) >> kPageShift);
  const DmaDir dir = write ? DmaDir::Bidirectional : DmaDir::ToDevice;
  for (std::uint64_t i = 0; i < n; ++i) {
    const DmaAddr a = mapper_.map(pci_, bar_, importer, barPa_ + ((first + i) << kPageShift), kPageSize, dir);
    if (a == kDmaMappingError) {  // NOT_SUPPORTED between the two functions: nothing stays mapped
      p2pUnmap(vma, importer, start, start + (i << kPageShift), pa);
      return Errno::OpNotSupp;
    }
    pa[i] = a;
    grants_[{&importer, a.value()}].push_back(dir);
  }
  return Errno::Ok;
}

Errno ColourEngineDriver::p2pUnmap(Vma& /*vma*/, Device& importer, Va start, Va end, const DmaAddr* pa) {
  Errno rc = Errno::Ok;
  for (std::uint64_t i = 0; i < ((end - start) >> kPageShift); ++i) {
    auto it = grants_.find({&importer, pa[i].value()});
    if (it == grants_.end()) {
      rc = Errno::Inval;
      continue;
    }
    const DmaDir dir = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) grants_.erase(it);
    const Errno u = mapper_.unmap(importer, pa[i], kPageSize, dir);
    HMMSIM_ASSERT(u == Errno::Ok, "p2p unmap of " << pa[i] << ": " << errnoName(u));
  }
  return rc;
}

std::size_t ColourEngineDriver::grants() const {
  std::size_t n = 0;
  for (const auto& g : grants_) n += g.second.size();
  return n;
}

MirrorDmaPort* ColourEngineDriver::portOf(Va va, bool deviceWrites) {
  for (auto& p : ports_)
    if (std::get<1>(p.first) == va.value() && std::get<2>(p.first) == deviceWrites) return p.second.get();
  return nullptr;
}

FrameDmaPort* ColourEngineDriver::userPort(Mm& mm, Va va, std::uint64_t bytes, bool deviceWrites,
                                           Errno& err) {
  auto key = std::make_tuple(static_cast<const Mm*>(&mm), va.value(), deviceWrites);
  auto it = ports_.find(key);
  if (it != ports_.end() && it->second->bytes() >= bytes) return it->second.get();
  if (it != ports_.end()) ports_.erase(it);  // a larger frame: a new mirror over the range
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = this;
  imp.dma = &dma_;
  auto p = std::make_unique<MirrorDmaPort>(
      mm, imp, hw_.engine(), va, bytes, deviceWrites, params_.port,
      std::string(hw_.name()) + (deviceWrites ? ".dst" : ".src") + std::to_string(ports_.size()), checker_);
  if (params_.prefault && p->prefault() != HmmStatus::Ok) {
    err = Errno::Fault;
    return nullptr;
  }
  FrameDmaPort* raw = p.get();
  ports_[key] = std::move(p);
  return raw;
}

Errno ColourEngineDriver::process(Mm& mm, const ColourRequest& r) {
  if (!r.width || !r.height || r.dstVa.value() % kPageSize || (!r.srcLocal && r.srcVa.value() % kPageSize))
    return Errno::Inval;
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
    job.src = userPort(mm, r.srcVa, inBytes, false, err);
    if (!job.src) return err;
  }
  job.dst = userPort(mm, r.dstVa, outBytes, true, err);
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
