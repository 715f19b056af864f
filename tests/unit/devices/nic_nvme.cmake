# devices: the NVMe controller and the NIC (helper "nicnvme"), alone and end to end.
hmmsim_test(test_nvme
  SOURCES unit/devices/test_nvme.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_nic
  SOURCES unit/devices/test_nic.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_nic_nvme
  SOURCES unit/devices/test_nic_nvme.cpp
  LIBS hmmsim::devices)
# The same workload on a machine built by the platform builder (models/platform).
hmmsim_test(test_nic_nvme_platform
  SOURCES unit/devices/test_nic_nvme_platform.cpp
  LIBS hmmsim::platform)
# The NIC's queue writer under invalidations of its BAR0 mapping (CLEAR, revoke, a misbehaving NIC).
hmmsim_test(test_nic_queue_invalidation
  SOURCES unit/devices/test_nic_queue_invalidation.cpp
  LIBS hmmsim::platform)
