#pragma once
// Glue between the IOMMU / DMA layer and the PCIe topology (topology.h, routing.h).
//
// - pciDmaDeviceParams(): what the kernel derives for a PCI function when it probes it for DMA:
//   its requester id, and the memory windows of its host bridge as IOVA ranges to reserve
//   (iommu_dma_reserve_iova walks pci_host_bridge->windows and reserves each IORESOURCE_MEM
//   window's bus range), so an IOVA never aliases a peer BAR behind that bridge.
// - iommuRcAddressResolver(): a Router::setRcAddressResolver function that resolves a request at
//   the root complex the way the IOMMU would, without timing and without touching the IOTLB
//   (a software walk): the domain is looked up by the TLP's requester id (a spoofed id gets the
//   spoofed device's domain, as in hardware), the leaf's permissions are checked, pre-translated
//   (ATS) requests pass only for devices with ATS enabled. With the IOMMU off, in passthrough or in
//   an identity domain it decodes like the default resolver: a bus address inside one of the
//   requester's host-bridge windows goes to that window's CPU address, anything else is identity.
//
// Timing: none (the IOMMU's cost is charged by IommuTranslationStage on the fabric path).

#include <cstdint>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology.h"

namespace hmmsim {

/// DMA parameters of `dev` (requester id, its host bridge's mem and pref windows reserved,
/// `dmaMask`). `dev` must be enumerated (a valid Bdf).
DmaDeviceParams pciDmaDeviceParams(const PciDev& dev, const Topology& topo, std::uint64_t dmaMask = dmaBitMask(64));

/// A root-complex address resolver backed by `iommu`; both arguments must outlive the router.
RcAddressResolver iommuRcAddressResolver(const Iommu& iommu, const Topology& topo);

}  // namespace hmmsim
