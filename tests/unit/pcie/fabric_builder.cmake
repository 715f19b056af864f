# The SystemC fabric elaborated from a Topology (helper "fabric-builder").
hmmsim_test(test_fabric_from_topology SOURCES unit/pcie/test_fabric_from_topology.cpp LIBS hmmsim::pcie)
