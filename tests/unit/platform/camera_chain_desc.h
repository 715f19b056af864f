#pragma once
// The camera chain's machine as a PlatformDesc (the topology of camera_chain_fixture.h): one
// process, camera "cam0" with sensor mode `sensor`, colour engine "colour0" with its defaults.

#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/camera_chain_fixture.h"

namespace hmmsim::test {

inline PlatformDesc cameraChainDesc(const CameraParams& sensor, const std::string& process) {
  CameraDeviceParams cam;
  cam.camera = sensor;
  PlatformDesc d;
  d.ram.ramSize = 1ull << 30;
  d.topology = chainTopology(ColourEngineParams{}.deviceMemoryBytes);
  d.processes = {ProcessDesc{process, {}}};
  d.devices = {DeviceDesc{"camera", "cam0", "cam0", cam},
               DeviceDesc{"colour_engine", "colour0", "colour0", ColourEngineDeviceParams{}}};
  return d;
}

/// The unit tests' small chain: 256x32 frames at 240 fps (a frame every 4.17 ms), process "app".
inline PlatformDesc smallChainDesc() {
  CameraParams sensor;
  sensor.width = 256;
  sensor.height = 32;
  sensor.hblankPixels = 64;
  sensor.vblankLines = 8;
  sensor.fps = 240;
  sensor.seed = 3;
  return cameraChainDesc(sensor, "app");
}

}  // namespace hmmsim::test
