# devices: the dmirror test device (helper "dmirror").
hmmsim_test(test_dmirror
  SOURCES unit/devices/test_dmirror.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_dmirror_stress
  SOURCES unit/devices/test_dmirror_stress.cpp
  LIBS hmmsim::devices)
# dmirror's p2p half (models/devices/dmirror/dmirror_p2p.h) on the reference PCIe platform.
hmmsim_test(test_dmirror_p2p
  SOURCES unit/devices/test_dmirror_p2p.cpp
  LIBS hmmsim::devices)
