# devices: the dmirror test device (helper "dmirror").
hmmsim_test(test_dmirror
  SOURCES unit/devices/test_dmirror.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_dmirror_stress
  SOURCES unit/devices/test_dmirror_stress.cpp
  LIBS hmmsim::devices)
