# Physical memory and page tables: walk speed, metadata cost per touched page, 64 GiB startup.
hmmsim_bench(bench_page_table SOURCES cpu_mmu/bench_page_table.cpp LIBS hmmsim::cpu_mmu)
hmmsim_bench(bench_phys_mem SOURCES cpu_mmu/bench_phys_mem.cpp LIBS hmmsim::cpu_mmu)
