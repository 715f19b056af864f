#include "models/devices/camera/camera_driver.h"

#include <string>
#include <utility>

namespace hmmsim {

CameraDriver::CameraDriver(std::string name, Camera& hw, Device& pci, DmaMapping* dma,
                           const CameraDriverParams& params, P2pChecker* checker,
                           ImporterDmaDirectory* directory)
    : name_(std::move(name)),
      hw_(hw),
      pci_(pci),
      dma_(dma),
      params_(params),
      checker_(checker),
      directory_(directory) {}

CameraDriver::~CameraDriver() = default;

Errno CameraDriver::setUserBuffers(Mm& mm, const std::vector<Va>& buffers) {
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = this;  // the camera has no device memory: nothing is ever local
  imp.dma = dma_;
  std::unique_ptr<ImporterDmaRing> ring =
      makeImporterDmaRing(name_ + ".dma", mm, imp, hw_.engine(), buffers, hw_.params().frameBytes(),
                          params_.dma, checker_, directory_);
  if (!ring) return Errno::Inval;
  if (params_.prefault)
    for (std::size_t i = 0; i < buffers.size(); ++i)
      if (ring->prefault(i, true) != HmmStatus::Ok) return Errno::Fault;
  std::vector<FrameDmaPort*> hwRing;
  for (auto& p : ring->ports) hwRing.push_back(p.get());
  hw_.setBuffers(std::move(hwRing));
  ring_ = std::move(ring);
  dmaPorts_.clear();
  return Errno::Ok;
}

Errno CameraDriver::setDmaBuffers(const std::vector<std::vector<DmaSegment>>& buffers) {
  if (buffers.empty()) return Errno::Inval;
  std::vector<std::unique_ptr<FrameDmaPort>> ports;
  std::vector<FrameDmaPort*> hwRing;
  for (const auto& segs : buffers) {
    if (segs.empty()) return Errno::Inval;
    auto p = std::make_unique<DescriptorDmaPort>(hw_.engine(), segs);
    if (p->bytes() < hw_.params().frameBytes()) return Errno::Inval;
    hwRing.push_back(p.get());
    ports.push_back(std::move(p));
  }
  hw_.setBuffers(std::move(hwRing));
  dmaPorts_ = std::move(ports);
  ring_.reset();
  return Errno::Ok;
}

}  // namespace hmmsim
