hmmsim_test(test_demo SOURCES unit/scenarios/test_demo.cpp LIBS hmmsim::scenarios)
