# IOMMU, IOTLB, ATS and the DMA-mapping API (helper "iommu").
hmmsim_test(test_iommu SOURCES unit/pcie/test_iommu.cpp LIBS hmmsim::pcie)
hmmsim_test(test_dma_mapping SOURCES unit/pcie/test_dma_mapping.cpp LIBS hmmsim::pcie)
hmmsim_test(test_dma_iova SOURCES unit/pcie/test_dma_iova.cpp LIBS hmmsim::pcie)
hmmsim_test(test_iommu_sweep SOURCES unit/pcie/test_iommu_sweep.cpp LIBS hmmsim::pcie)
hmmsim_test(test_dma_mapping_p2p SOURCES unit/pcie/test_dma_mapping_p2p.cpp LIBS hmmsim::pcie)
hmmsim_test(test_iommu_translation_stage SOURCES unit/pcie/test_iommu_translation_stage.cpp LIBS hmmsim::pcie)
hmmsim_test(test_iommu_topology SOURCES unit/pcie/test_iommu_topology.cpp LIBS hmmsim::pcie)
hmmsim_test(test_iommu_config SOURCES unit/pcie/test_iommu_config.cpp LIBS hmmsim::pcie)
