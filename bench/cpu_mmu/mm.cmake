# Address space (helper "mm"): fault-in and munmap throughput.
hmmsim_bench(bench_mm SOURCES cpu_mmu/bench_mm.cpp LIBS hmmsim::cpu_mmu)
