# Exporter BAR window management (hmm/p2p_bar_manager.h, hmm/p2p_bar_vma_revoker.h).
hmmsim_test(test_p2p_bar
  SOURCES
    unit/hmm/test_p2p_bar.cpp
    unit/hmm/test_p2p_bar_vma.cpp
    unit/hmm/test_p2p_bar_storm.cpp
  LIBS hmmsim::hmm)
