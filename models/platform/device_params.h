#pragma once
// Parameter tables (sim/params.h) of the platform's device types: a scenario's
// `platform.devices[i].params:` map is read by its type's table into the type's params struct
// (DeviceDesc::params), and `hmmsim describe` / docs/scenario-format.md print the same tables.

#include <any>
#include <functional>
#include <map>
#include <string>

#include "models/devices/camera/camera_platform.h"
#include "models/devices/colour_engine/colour_engine_platform.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/dmirror/dmirror.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic.h"
#include "models/devices/nvme/nvme.h"
#include "sim/params.h"

namespace hmmsim {

/// Type "dmirror" (DmirrorDeviceParams::dmirror), and a dmirror scenario's `machine.dmirror`.
const ParamTable<DmirrorParams>& dmirrorParamTable();
/// `dma:` of an importing device: how it reaches process memory (ImporterDmaParams).
const ParamTable<ImporterDmaParams>& importerDmaParamTable();
/// The camera's sensor mode (CameraParams): the camera table's first rows, and a camera-chain
/// workload's `sensor:` map.
const ParamTable<CameraParams>& cameraSensorParamTable();
/// Type "camera": CameraDeviceParams (sensor mode, line grouping, driver).
const ParamTable<CameraDeviceParams>& cameraParamTable();
/// Type "colour_engine": ColourEngineDeviceParams (throughput, strips, device memory, driver).
const ParamTable<ColourEngineDeviceParams>& colourEngineParamTable();

/// Type "gpu": GpuDeviceParams (VRAM, compute engine, BAR window policy, driver).
const ParamTable<GpuDeviceParams>& gpuParamTable();
/// Type "nvme": NvmeParams (CMB, queues, firmware time, the media's latency and bandwidth).
const ParamTable<NvmeParams>& nvmeParamTable();
/// Type "nic": NicParams (line rate, packets, transmit FIFO).
const ParamTable<NicParams>& nicParamTable();

/// A device type's table and how it fills DeviceDesc::params.
struct DeviceParamTable {
  const ParamTableBase* table = nullptr;
  /// The type's params struct from `node` (a map the table reads), as DeviceDesc::params holds it.
  std::function<std::any(const ConfigNode& node)> load;
};
/// By device type name.
const std::map<std::string, DeviceParamTable>& deviceParamTables();

}  // namespace hmmsim
