# PCIe fabric simulation speed (helper "link"): per-TLP TLP-hops/s and per-burst bursts/s over a
# 3-hop path, next to a bare b_transport loop.
hmmsim_bench(bench_fabric SOURCES pcie/bench_fabric.cpp LIBS hmmsim::pcie)
