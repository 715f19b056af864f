# topology, enumeration, routing, ACS, p2pdma (helper "topology")
hmmsim_test(test_pcie_topology
  SOURCES
    unit/pcie/test_topology.cpp
    unit/pcie/test_enumeration.cpp
    unit/pcie/test_routing.cpp
    unit/pcie/test_p2pdma.cpp
  LIBS hmmsim::pcie)
