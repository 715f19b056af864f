# hmm layer (helper "hmm"): hmm_range_fault and migration throughput.
hmmsim_bench(bench_hmm SOURCES hmm/bench_hmm.cpp LIBS hmmsim::hmm)
# The RFC p2p layer: DMA-map of 1 Mi pages (special vma, devmem) next to hmm_range_fault, and
# invalidation fan-out to 4 importers.
hmmsim_bench(bench_p2p SOURCES hmm/bench_p2p.cpp LIBS hmmsim::hmm)
# The exporter's BAR window manager: maps/s and revoke+remap/s under LRU reclaim, next to the
# unlimited policy in the same run.
hmmsim_bench(bench_p2p_bar SOURCES hmm/bench_p2p_bar.cpp LIBS hmmsim::hmm)
