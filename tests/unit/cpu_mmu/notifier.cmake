# mmu notifiers (helper "notifier"): pure-logic tests and the SystemC sleeping tests.
hmmsim_test(test_mmu_notifier
  SOURCES
    unit/cpu_mmu/test_mmu_notifier.cpp
    unit/cpu_mmu/test_interval_tree.cpp
    unit/cpu_mmu/test_wait_queue.cpp
  LIBS hmmsim::cpu_mmu)
hmmsim_test(test_mmu_notifier_sc
  SOURCES unit/cpu_mmu/test_mmu_notifier_sc.cpp
  LIBS hmmsim::cpu_mmu)
# The mmap lock as a sleeping rwsem between SystemC threads (fairness, FIFO hand-off).
hmmsim_test(test_mmap_lock_sc
  SOURCES unit/cpu_mmu/test_mmap_lock_sc.cpp
  LIBS hmmsim::cpu_mmu)
