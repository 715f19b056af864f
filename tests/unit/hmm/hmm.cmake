# hmm layer (helper "hmm"): hmm_range_fault, the mirror, device memory, migration, device-exclusive.
hmmsim_test(test_hmm
  SOURCES
    unit/hmm/test_hmm_range_fault.cpp
    unit/hmm/test_hmm_mirror.cpp
    unit/hmm/test_migrate_device.cpp
    unit/hmm/test_device_exclusive.cpp
  LIBS hmmsim::hmm)
