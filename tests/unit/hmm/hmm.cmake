# hmm layer (helper "hmm"): hmm_range_fault, the mirror, device memory, migration, device-exclusive.
hmmsim_test(test_hmm
  SOURCES
    unit/hmm/test_hmm_range_fault.cpp
    unit/hmm/test_hmm_mirror.cpp
    unit/hmm/test_migrate_device.cpp
    unit/hmm/test_device_exclusive.cpp
  LIBS hmmsim::hmm)

# The RFC's p2p layer: special vmas, devmem p2p, the DMA-map step, the importer mirror, the checker.
hmmsim_test(test_hmm_p2p
  SOURCES
    unit/hmm/test_hmm_p2p.cpp
    unit/hmm/test_hmm_p2p_map_type.cpp
    unit/hmm/test_hmm_p2p_invalidate.cpp
    unit/hmm/test_hmm_p2p_checker.cpp
  LIBS hmmsim::hmm)
