# devices: dmirror THP migration benchmark (helper "dmirror"), hmm-tests.c benchmark_thp_migration.
hmmsim_bench(bench_thp_migration SOURCES devices/bench_thp_migration.cpp LIBS hmmsim::devices)
