# The platform seam (issue 12): one byte store for device memory (PhysMem behind BAR targets), the
# system address map in front of memory (CPU loads/stores to DRAM, BARs, device-coherent memory,
# MMIO doorbells) and device DMA to a peer's BAR, followed byte for byte.
hmmsim_test(test_platform_seam SOURCES unit/platform/test_platform_seam.cpp
  LIBS hmmsim::cpu_mmu hmmsim::pcie hmmsim::hmm)
# The platform builder (models/platform/): a machine from a PlatformDesc, devices by type name,
# MSI delivery to CPU driver threads.
hmmsim_test(test_platform_builder SOURCES unit/platform/test_platform_builder.cpp
  LIBS hmmsim::platform)
# CPU threads, a DMA device and a migrating driver on one range under the sleeping mmap lock.
hmmsim_test(test_platform_concurrency SOURCES unit/platform/test_platform_concurrency.cpp
  LIBS hmmsim::platform)
# The camera chain as a platform workload (models/platform/camera_chain.h): wiring, the per-frame
# pixel check (and that it catches a wrong frame), latency and fps stats.
hmmsim_test(test_camera_chain_workload SOURCES unit/platform/test_camera_chain_workload.cpp
  LIBS hmmsim::platform)
# The platform's timeline trace: link occupancy, bursts, device faults, invalidations, BAR window
# moves and interrupt handlers as slices, read back from the JSON.
hmmsim_test(test_platform_trace SOURCES unit/platform/test_platform_trace.cpp
  LIBS hmmsim::platform)
# Named process mappings (ProcessDesc::memory: THP, hugetlb, shared file, device file) and the
# camera chain's buffers placed in them.
hmmsim_test(test_process_mappings SOURCES unit/platform/test_process_mappings.cpp
  LIBS hmmsim::platform)
# The GPU workloads' buffers placed in named process mappings (placement.h's rules, shared with
# the camera chain and the scenario parser).
hmmsim_test(test_workload_placement SOURCES unit/platform/test_workload_placement.cpp
  LIBS hmmsim::platform)
# dmirror's migration copies delay the migrating thread (an ioctl, a CPU's fault) on the platform.
hmmsim_test(test_platform_migrate_copy SOURCES unit/platform/test_platform_migrate_copy.cpp
  LIBS hmmsim::platform)
# IOMMU invalidations of two threads queue one after the other (the IOMMU's invalidation queue).
hmmsim_test(test_platform_iommu_queue SOURCES unit/platform/test_platform_iommu_queue.cpp
  LIBS hmmsim::platform)
# Device-file mappings of the GPU and the NVMe controller at an offset (MappingDesc::offset): the
# bytes a peer reads through them, the refusals, and workload regions placed in them.
hmmsim_test(test_device_file_mappings SOURCES unit/platform/test_device_file_mappings.cpp
  LIBS hmmsim::platform)
