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
#include <map>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology.h"

namespace hmmsim {

/// DMA parameters of `dev` (requester id, its host bridge's mem and pref windows reserved,
/// `dmaMask`). `dev` must be enumerated (a valid Bdf).
DmaDeviceParams pciDmaDeviceParams(const PciDev& dev, const Topology& topo,
                                   std::uint64_t dmaMask = dmaBitMask(64));

/// REQ_ACS_FLAGS of drivers/iommu/iommu.c: the ACS controls that isolate a device for grouping.
inline constexpr std::uint16_t kReqAcsFlags = kPciAcsSv | kPciAcsRr | kPciAcsCr | kPciAcsUf;

/// pci_acs_enabled(): root ports and switch downstream ports need every flag in `flags` that
/// their ACS capability implements enabled (an absent capability fails); endpoints pass unless
/// they are multi-function, then they are checked the same way; switch upstream ports pass.
/// (No device-specific quirks.)
bool pciAcsEnabled(const PciDev& dev, const Topology& topo, std::uint16_t flags);

/// pci_device_group() for every function, probing in BDF order as the kernel does at boot: a
/// function joins the group of the first upstream bridge whose path to the root is not
/// ACS-isolated (so everything below a switch without ACS shares one group), else the group of
/// a non-isolated sibling function of a multi-function device, else gets a new group. Returns
/// the group number (dense, in creation order) of every function, by PciDevId value.
std::map<std::uint64_t, unsigned> pciDeviceGroups(const Topology& topo);

/// Attaches every endpoint function to `dma` in BDF order (pciDmaDeviceParams with `dmaMask`);
/// endpoints of one IOMMU group share the first one's default domain (groupWith). Returns Ok, or
/// the first error from DmaMapping::attachDevice (earlier endpoints stay attached).
Errno attachPciEndpoints(DmaMapping& dma, const Topology& topo, std::uint64_t dmaMask = dmaBitMask(64));

/// A root-complex address resolver backed by `iommu`; both arguments must outlive the router.
RcAddressResolver iommuRcAddressResolver(const Iommu& iommu, const Topology& topo);

}  // namespace hmmsim
