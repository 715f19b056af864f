#pragma once
// The NIC as a platform device (type "nic", models/devices/common/device_registry.h): the hardware
// half (nic.h) on the endpoint's DMA engine and BAR target (registers at BAR offset 0; barBase and
// barBytes come from the endpoint's largest memory BAR). Params: NicParams.

#include <memory>

#include "models/devices/common/device_registry.h"
#include "models/devices/nic/nic.h"

namespace hmmsim {

class NicPlatformDevice final : public PlatformDevice {
 public:
  explicit NicPlatformDevice(DeviceContext& ctx);
  Nic& nic() { return *nic_; }
  /// The importer a workload gave the NIC (Nic::importer: queue writer, TX or monitoring).
  ImporterDma* importerDma() override { return nic_->importer(); }

 private:
  std::unique_ptr<Nic> nic_;
};

/// Adds type "nic".
void registerNic(DeviceRegistry& r);

}  // namespace hmmsim
