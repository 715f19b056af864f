# hmm layer (helper "hmm"): hmm_range_fault and migration throughput.
hmmsim_bench(bench_hmm SOURCES hmm/bench_hmm.cpp LIBS hmmsim::hmm)
