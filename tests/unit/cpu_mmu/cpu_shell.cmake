# cpu_mmu SystemC shell (helper "notifier"): TLB (pure) and DRAM target (SystemC).
hmmsim_test(test_tlb SOURCES unit/cpu_mmu/test_tlb.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_dram SOURCES unit/cpu_mmu/test_dram.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_cpu_core SOURCES unit/cpu_mmu/test_cpu_core.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_sequencer SOURCES unit/cpu_mmu/test_sequencer.cpp LIBS hmmsim::cpu_mmu)
hmmsim_test(test_system_address_map SOURCES unit/cpu_mmu/test_system_address_map.cpp LIBS hmmsim::cpu_mmu)
