# Conformance: the kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c) on dmirror.
hmmsim_test(test_hmm_conformance
  SOURCES
    conformance/test_hmm_anon.cpp
    conformance/test_hmm_migrate.cpp
    conformance/test_hmm2.cpp
    conformance/test_hmm_more.cpp
  LIBS hmmsim::devices)
