# The GPU (models/devices/gpu): alone, and with a peer on the SystemC platform.
hmmsim_test(test_gpu
  SOURCES unit/devices/test_gpu.cpp
  LIBS hmmsim::platform)
hmmsim_test(test_gpu_copy_costs
  SOURCES unit/devices/test_gpu_copy_costs.cpp
  LIBS hmmsim::platform)
hmmsim_test(test_gpu_peer
  SOURCES unit/devices/test_gpu_peer.cpp
  LIBS hmmsim::platform)
# The GPU built by the platform builder (type "gpu").
hmmsim_test(test_gpu_platform
  SOURCES unit/devices/test_gpu_platform.cpp
  LIBS hmmsim::platform)
# RFC workload [2]: the NIC monitors the GPU's progress counter (p2p from VRAM vs a copy to RAM).
hmmsim_test(test_gpu_nic_monitor
  SOURCES unit/devices/test_gpu_nic_monitor.cpp
  LIBS hmmsim::platform)
# RFC workload [3]: the NIC streams the GPU's results (p2p from VRAM vs a bounce through RAM).
hmmsim_test(test_gpu_nic_stream
  SOURCES unit/devices/test_gpu_nic_stream.cpp
  LIBS hmmsim::platform)
# Issue 13's small_bar: many NIC importers against a GPU BAR much smaller than VRAM, per policy.
hmmsim_test(test_small_bar
  SOURCES unit/devices/test_small_bar.cpp
  LIBS hmmsim::platform)
# The GPU as importer: kernels over process memory (system, a peer GPU p2p, its own VRAM).
hmmsim_test(test_gpu_importer
  SOURCES unit/devices/test_gpu_importer.cpp
  LIBS hmmsim::platform)
