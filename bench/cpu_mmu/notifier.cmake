# mmu notifiers (helper "notifier")
hmmsim_bench(bench_mmu_notifier SOURCES cpu_mmu/bench_mmu_notifier.cpp LIBS hmmsim::cpu_mmu)
