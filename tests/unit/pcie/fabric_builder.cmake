# The SystemC fabric elaborated from a Topology (helper "fabric-builder").
hmmsim_test(test_fabric_from_topology SOURCES unit/pcie/test_fabric_from_topology.cpp LIBS hmmsim::pcie)
# p2p paths (switch-local, root complex, ACS-redirected) across fidelities and quanta (issue 9).
hmmsim_test(test_fabric_p2p_paths SOURCES unit/pcie/test_fabric_p2p_paths.cpp LIBS hmmsim::pcie)
