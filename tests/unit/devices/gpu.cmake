# The GPU (models/devices/gpu): alone, and with a peer on the SystemC platform.
hmmsim_test(test_gpu
  SOURCES unit/devices/test_gpu.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_gpu_peer
  SOURCES unit/devices/test_gpu_peer.cpp
  LIBS hmmsim::devices)
# The GPU built by the platform builder (type "gpu").
hmmsim_test(test_gpu_platform
  SOURCES unit/devices/test_gpu_platform.cpp
  LIBS hmmsim::platform)
