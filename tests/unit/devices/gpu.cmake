# The GPU (models/devices/gpu): alone, and with a peer on the SystemC platform.
hmmsim_test(test_gpu
  SOURCES unit/devices/test_gpu.cpp
  LIBS hmmsim::devices)
