# Address space (helper "mm"): vma bookkeeping, errors and notifier rounds; data through the
# fault path (COW, shared memory, THP splits, mremap, madvise, exit); files and the page cache.
hmmsim_test(test_mm_vma SOURCES unit/cpu_mmu/test_mm_vma.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_mm_data SOURCES unit/cpu_mmu/test_mm_data.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_mm_file SOURCES unit/cpu_mmu/test_mm_file.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_mm_stress SOURCES unit/cpu_mmu/test_mm_stress.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_mlock SOURCES unit/cpu_mmu/test_mlock.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_stack_growth SOURCES unit/cpu_mmu/test_stack_growth.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_task_mmu SOURCES unit/cpu_mmu/test_task_mmu.cpp LIBS hmmsim::cpu_mmu)
