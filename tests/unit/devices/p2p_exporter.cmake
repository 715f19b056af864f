# The shared exporter half (models/devices/common/p2p_exporter.h) on the SystemC fabric.
hmmsim_test(test_p2p_exporter
  SOURCES unit/devices/test_p2p_exporter.cpp
  LIBS hmmsim::devices)
