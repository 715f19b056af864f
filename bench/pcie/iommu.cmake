# IOMMU and DMA mapping (helper "iommu"): translations/s with IOTLB hits and misses, map+unmap.
hmmsim_bench(bench_iommu SOURCES pcie/bench_iommu.cpp LIBS hmmsim::pcie)
