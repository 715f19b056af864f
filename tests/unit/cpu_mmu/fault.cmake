# Fault path, COW, THP, hugetlb, device entries, file faults and GUP (helper "fault").
hmmsim_test(test_fault_anon SOURCES unit/cpu_mmu/test_fault_anon.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_fault_thp SOURCES unit/cpu_mmu/test_fault_thp.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_fault_device SOURCES unit/cpu_mmu/test_fault_device.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_fault_file SOURCES unit/cpu_mmu/test_fault_file.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_gup SOURCES unit/cpu_mmu/test_gup.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_fault_sc SOURCES unit/cpu_mmu/test_fault_sc.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_hugetlb SOURCES unit/cpu_mmu/test_hugetlb.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_fault_around SOURCES unit/cpu_mmu/test_fault_around.cpp LIBS hmmsim::cpu_mmu)
