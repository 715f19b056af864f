# CPU shell simulation speed: a CpuCore program's host cost per load next to a bare SystemC
# b_transport loop into the same Dram.
hmmsim_bench(bench_cpu_core SOURCES cpu_mmu/bench_cpu_core.cpp LIBS hmmsim::cpu_mmu)
