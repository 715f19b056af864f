#include "models/devices/camera/camera_driver.h"

#include <string>

namespace hmmsim {

CameraDriver::CameraDriver(Camera& hw, Device& pci, DmaMapping* dma, const CameraDriverParams& params,
                           P2pChecker* checker)
    : hw_(hw), pci_(pci), dma_(dma), params_(params), checker_(checker) {}

CameraDriver::~CameraDriver() = default;

Errno CameraDriver::setUserBuffers(Mm& mm, const std::vector<Va>& buffers) {
  if (buffers.empty()) return Errno::Inval;
  for (Va b : buffers)
    if (b.value() % kPageSize) return Errno::Inval;
  HmmDmaImporter imp;
  imp.device = &pci_;
  imp.owner = this;  // the camera has no device memory: nothing is ever local
  imp.dma = dma_;
  std::vector<std::unique_ptr<FrameDmaPort>> ports;
  std::vector<FrameDmaPort*> ring;
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    auto p = std::make_unique<MirrorDmaPort>(mm, imp, hw_.engine(), buffers[i], hw_.params().frameBytes(),
                                             true, params_.port,
                                             std::string(hw_.name()) + ".buf" + std::to_string(i), checker_);
    if (params_.prefault && p->prefault() != HmmStatus::Ok) return Errno::Fault;
    ring.push_back(p.get());
    ports.push_back(std::move(p));
  }
  ports_ = std::move(ports);
  hw_.setBuffers(std::move(ring));
  return Errno::Ok;
}

Errno CameraDriver::setDmaBuffers(const std::vector<std::vector<DmaSegment>>& buffers) {
  if (buffers.empty()) return Errno::Inval;
  std::vector<std::unique_ptr<FrameDmaPort>> ports;
  std::vector<FrameDmaPort*> ring;
  for (const auto& segs : buffers) {
    if (segs.empty()) return Errno::Inval;
    auto p = std::make_unique<DescriptorDmaPort>(hw_.engine(), segs);
    if (p->bytes() < hw_.params().frameBytes()) return Errno::Inval;
    ring.push_back(p.get());
    ports.push_back(std::move(p));
  }
  ports_ = std::move(ports);
  hw_.setBuffers(std::move(ring));
  return Errno::Ok;
}

MirrorDmaPort* CameraDriver::userPort(std::size_t i) {
  return i < ports_.size() ? dynamic_cast<MirrorDmaPort*>(ports_[i].get()) : nullptr;
}

}  // namespace hmmsim
