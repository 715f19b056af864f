# Physical memory (PhysMem, Frame) and page tables (Pte, PageTable).
hmmsim_test(test_phys_mem SOURCES unit/cpu_mmu/test_phys_mem.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_page_table SOURCES unit/cpu_mmu/test_page_table.cpp LIBS hmmsim::cpu_mmu)
