# Link timing, TLP segmentation, link directions, SystemC fabric (helper "link").
hmmsim_test(test_link_timing SOURCES unit/pcie/test_link_timing.cpp LIBS hmmsim::pcie)
target_compile_definitions(test_link_timing PRIVATE
  HMMSIM_PCIE_DLLP_CSV="${CMAKE_CURRENT_LIST_DIR}/pcie-dllp-intervals.csv")
hmmsim_test(test_tlp SOURCES unit/pcie/test_tlp.cpp LIBS hmmsim::pcie)
hmmsim_test(test_link SOURCES unit/pcie/test_link.cpp LIBS hmmsim::pcie)
hmmsim_test(test_host_memory_requesters SOURCES unit/pcie/test_host_memory_requesters.cpp LIBS hmmsim::pcie)
hmmsim_test(test_fabric_calibration SOURCES unit/pcie/test_fabric_calibration.cpp LIBS hmmsim::pcie)
hmmsim_test(test_fabric_sharing SOURCES unit/pcie/test_fabric_sharing.cpp LIBS hmmsim::pcie)
hmmsim_test(test_fabric_routing SOURCES unit/pcie/test_fabric_routing.cpp LIBS hmmsim::pcie)
hmmsim_test(test_fabric_topology SOURCES unit/pcie/test_fabric_topology.cpp LIBS hmmsim::pcie)
# The fabric in front of the cpu_mmu DRAM model (links both layers).
hmmsim_test(test_fabric_dram SOURCES unit/pcie/test_fabric_dram.cpp LIBS hmmsim::pcie hmmsim::cpu_mmu)
# Per-burst vs per-TLP on uncontended streams of every size; 64-bit bursts; timing-only (issue 9).
hmmsim_test(test_fabric_fidelity SOURCES unit/pcie/test_fabric_fidelity.cpp LIBS hmmsim::pcie)
# Streams booked in closed form per chunk vs the same bursts one by one (issue 9).
hmmsim_test(test_fabric_stream SOURCES unit/pcie/test_fabric_stream.cpp LIBS hmmsim::pcie)
