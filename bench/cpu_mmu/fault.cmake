# Fault path (helper "fault"): user write faults, zero-page reads, COW after fork, THP faults, GUP.
hmmsim_bench(bench_fault SOURCES cpu_mmu/bench_fault.cpp LIBS hmmsim::cpu_mmu)
