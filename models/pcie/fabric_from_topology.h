#pragma once
// Elaborates the SystemC PCIe fabric (pcie_fabric.h) from an enumerated Topology, routed by
// topology's Router through a TopologyPcieRouter (route_adapter.h) installed on every DMA engine
// and root complex. Replaces mirroring a Topology into a PcieFabric by hand.
//
// What it builds, per topology element:
//   - host bridge     -> one PcieRootComplexModule (index = hostBridgeIndex()), host memory on
//                        memOut (a PcieMemoryTarget, or the caller's with externalHostMemory);
//                        whether it forwards p2p is the host bridge's p2pSupported(), enforced by
//                        the Router (a peer request reaching a non-p2p root complex gets UR);
//   - switch          -> one PcieSwitchModule, ports in switchPortIndex() order;
//   - endpoint device -> one PcieDmaEngine (requester = its BDF) and, if it has a memory BAR, a
//                        PcieMemoryTarget covering its LARGEST memory BAR (lowest index on ties):
//                        the memory-target model claims one window, so accesses to the device's
//                        other BARs complete with Unsupported Request;
//   - link            -> one PcieLinkModule with the link's negotiated gen and width.
// Left out (rejected with a ConfigError naming the element, see FabricFromTopology's ctor):
// multi-function endpoints (functions share one link; the fabric has one engine per link),
// functions on a root bus other than root ports and the host bridge function (root-complex
// integrated endpoints), an empty downstream slot followed by an occupied one (the fabric numbers
// ports by occupied slots, the router by position), and link gen/width the timing table lacks
// (e.g. x12). Routes between two root complexes (p2p between host bridges that forward it) cross
// the host interconnect (host_interconnect_module.h, route_adapter.h).
// Timing: that of the modules; this file adds none.

#include <map>
#include <memory>
#include <string>

#include "models/pcie/pcie_fabric.h"
#include "models/pcie/route_adapter.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology.h"

namespace hmmsim {

/// Parameters of every model the builder creates. Fields the topology determines are noted as
/// overwritten; everything else is applied to every instance.
struct FabricFromTopologyParams {
  /// Root complexes; `index` overwritten with hostBridgeIndex(). Defaults: PcieRootComplexParams.
  PcieRootComplexParams rootComplex;
  /// The link between root complexes (two or more host bridges); defaults:
  /// PcieHostInterconnectParams (one UPI link, 166.4 Gb/s per direction, 100 ns).
  PcieHostInterconnectParams hostInterconnect;
  /// Switches; defaults: PcieSwitchParams (150 ns cut-through).
  PcieSwitchParams switchParams;
  /// DMA engines; `requester` overwritten with the endpoint's BDF and `link` with `link.config`
  /// carrying the endpoint link's gen and width. Defaults: PcieDmaEngineParams.
  PcieDmaEngineParams dma;
  /// Links; `config.gen` and `config.lanes` overwritten per link; MPS/MRRS/RCB/ECRC and latency
  /// apply to every link. Defaults: PcieLinkParams (20 ns one way, MPS 256, MRRS 512).
  PcieLinkParams link;
  /// Host memory behind each root complex (PcieMemoryTarget timing and window); default 16 GiB at 0.
  PcieMemoryTargetParams hostMemory;
  /// true: the caller binds each root complex's memOut before sc_start (e.g. to cpu_mmu's Dram);
  /// default false (the builder creates a PcieMemoryTarget from `hostMemory`).
  bool externalHostMemory = false;
  /// BAR memory of endpoints; `baseAddr` and `sizeBytes` overwritten from the BAR. Default: the
  /// PcieMemoryTarget defaults (80 ns, 4 channels of 204.8 Gb/s, storeData).
  PcieMemoryTargetParams barMemory;
  /// false: endpoints get no BAR memory (every access to them completes with UR); default true.
  bool createBarMemory = true;
};

/// The fabric of one Topology. Construct, optionally configure router() and bind external host
/// memory, then sc_start. The Topology must be enumerated and outlive this object.
class FabricFromTopology {
 public:
  /// Builds and finalizes the fabric; module names are "<name>_<topology name>". Throws
  /// ConfigError (file "<topology>", key = the element's name) for a topology the fabric cannot
  /// model (see the header); it validates everything before creating any SystemC module.
  FabricFromTopology(const std::string& name, const Topology& topo, const FabricFromTopologyParams& params);
  ~FabricFromTopology();
  FabricFromTopology(const FabricFromTopology&) = delete;
  FabricFromTopology& operator=(const FabricFromTopology&) = delete;

  /// Lookups by topology name: an endpoint's function-0 name, a host bridge's name, a switch's
  /// name. An unknown name (or, for barMemory, an endpoint without one) is a caller bug: asserts.
  PcieDmaEngine& engine(const std::string& endpoint);
  PcieMemoryTarget& barMemory(const std::string& endpoint);
  bool hasBarMemory(const std::string& endpoint) const;
  PcieRootComplexModule& rootComplex(const std::string& hostBridge);
  /// Host memory of a root complex (not with externalHostMemory).
  PcieMemoryTarget& hostMemory(const std::string& hostBridge);
  PcieSwitchModule& switchModule(const std::string& sw);
  /// The link above an endpoint or switch (by the endpoint's or switch's name).
  PcieLinkModule& uplink(const std::string& node);

  /// The link between root complexes (asserts there are two or more host bridges).
  PcieHostInterconnectModule& hostInterconnect();
  PcieFabric& fabric() { return *fabric_; }
  /// topology's Router (configure e.g. its IOMMU resolver before sc_start) and the adapter the
  /// modules use.
  Router& router() { return *router_; }
  TopologyPcieRouter& routeAdapter() { return *adapter_; }

 private:
  PcieFabric::NodeId node(const std::string& name) const;

  std::unique_ptr<Router> router_;
  std::unique_ptr<TopologyPcieRouter> adapter_;
  std::unique_ptr<PcieFabric> fabric_;
  std::map<std::string, PcieFabric::NodeId> nodes_;  // topology name -> fabric node
  std::map<std::string, bool> hasBar_;               // endpoint name -> BAR memory created
};

}  // namespace hmmsim
