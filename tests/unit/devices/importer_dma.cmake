# The shared importer data path (models/devices/common/importer_dma.h) on a SystemC platform.
hmmsim_test(test_importer_dma
  SOURCES unit/devices/test_importer_dma.cpp
  LIBS hmmsim::devices)
