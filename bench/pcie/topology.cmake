# Routing / p2pdma decision cost (helper "topology").
hmmsim_bench(bench_routing SOURCES pcie/bench_routing.cpp LIBS hmmsim::pcie)
