#pragma once
// A PCIe fabric built from an explicit tree (root complexes, switches, endpoints), with its own
// router: the "explicit path" builder used by tests and benchmarks. To route by topology's
// Router instead, give the engines and root complexes a TopologyPcieRouter (route_adapter.h)
// with setRouter(); the module tree must then mirror the topology's port order.
//
// What it builds: for every node a PcieLinkModule to its parent; switches (port 0 upstream,
// then children in the order they were added); root complexes with a host-memory
// PcieMemoryTarget on memOut; endpoints with a PcieDmaEngine and a BAR-backed PcieMemoryTarget
// (empty BAR: every access completes with UR). Routing: a request goes up to the lowest common
// ancestor of requester and target and down again — no ACS redirection, no routing between root
// complexes (returns no route; routes between host bridges come from topology's Router through
// route_adapter.h, over the host interconnect finalize() creates when there are two or more
// root complexes).
// Lifecycle: add nodes (parents before children) → finalize() (binds sockets, precomputes all
// routes) → sc_start. Module names are "<fabric>_<node>".

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/pcie/dma_engine.h"
#include "models/pcie/host_interconnect_module.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/pcie_link_module.h"
#include "models/pcie/pcie_route.h"
#include "models/pcie/pcie_switch_module.h"
#include "models/pcie/root_complex_module.h"

namespace hmmsim {

class PcieFabric : public PcieRouter {
 public:
  using NodeId = std::uint32_t;

  explicit PcieFabric(std::string name);
  ~PcieFabric() override;

  /// A root complex with host memory. `hostMemory` gives the host-memory address window (used
  /// for routing) and, unless `externalHostMemory`, the timing of a PcieMemoryTarget the fabric
  /// binds to the root complex's memOut. With `externalHostMemory` the caller binds memOut
  /// (e.g. to the cpu_mmu Dram model, or through the IOMMU) before sc_start.
  NodeId addRootComplex(const std::string& name, const PcieRootComplexParams& params,
                        const PcieMemoryTargetParams& hostMemory, bool externalHostMemory = false);
  /// A switch below `parent` (a root complex or switch), connected by a link.
  NodeId addSwitch(const std::string& name, NodeId parent, const PcieLinkParams& uplink,
                   const PcieSwitchParams& params);
  /// An endpoint below `parent`, with a DMA engine and optionally BAR-backed memory.
  NodeId addEndpoint(const std::string& name, NodeId parent, const PcieLinkParams& uplink,
                     const PcieDmaEngineParams& dma,
                     const std::optional<PcieMemoryTargetParams>& bar = std::nullopt);

  /// Timing of the host interconnect finalize() creates between root complexes when there are
  /// two or more (host_interconnect_module.h); call before finalize(). Default: its defaults.
  void setHostInterconnect(const PcieHostInterconnectParams& params);

  /// Binds every socket and computes every route. Call once, after the last add, before sc_start.
  void finalize();

  PcieDmaEngine& engine(NodeId endpoint);
  /// Host memory of a root complex (not with externalHostMemory), or an endpoint's BAR memory.
  PcieMemoryTarget& memory(NodeId node);
  /// The link between `node` and its parent.
  PcieLinkModule& uplink(NodeId node);
  PcieSwitchModule& switchModule(NodeId node);
  PcieRootComplexModule& rootComplex(NodeId node);
  /// The link between root complexes; nullptr with fewer than two root complexes.
  PcieHostInterconnectModule* hostInterconnect() { return interconnect_.get(); }

  /// Unclaimed addresses and targets under another root complex: UnsupportedRequest.
  PcieRouteResult routeRequest(Bdf requester, std::uint64_t addr, bool isWrite,
                               bool addressTranslated) const override;
  PcieRouteResult routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr,
                                       bool isWrite) const override;

 private:
  enum class Kind { RootComplex, Switch, Endpoint };
  struct Node {
    Kind kind = Kind::RootComplex;
    std::string name;
    std::optional<NodeId> parent;
    std::uint8_t portInParent = 0;  // egress port index at the parent
    std::uint8_t nextPort = 0;      // next free port (switch: 1, after the upstream port 0)
    std::unique_ptr<PcieLinkModule> link;
    std::unique_ptr<PcieSwitchModule> sw;
    std::unique_ptr<PcieRootComplexModule> rc;
    std::unique_ptr<PcieDmaEngine> dma;
    std::unique_ptr<PcieMemoryTarget> mem;
    PcieMemoryTargetParams window = noWindow();  // address window claimed (sizeBytes 0: none)
  };
  static PcieMemoryTargetParams noWindow() {
    PcieMemoryTargetParams p;
    p.sizeBytes = 0;
    return p;
  }
  NodeId addChild(Kind kind, const std::string& name, NodeId parent, const PcieLinkParams& uplink);
  Node& node(NodeId id, Kind kind);
  std::vector<NodeId> ancestors(NodeId id) const;  // parent, grandparent, ... root complex
  std::optional<PcieRoute> computeRoute(std::optional<NodeId> from, NodeId target) const;

  std::string name_;
  std::vector<Node> nodes_;
  PcieHostInterconnectParams interconnectParams_;
  std::unique_ptr<PcieHostInterconnectModule> interconnect_;
  bool finalized_ = false;
  std::map<std::uint32_t, NodeId> byRequester_;                     // Bdf key -> endpoint
  std::map<std::pair<NodeId, NodeId>, PcieRoute> routes_;           // (requester, target)
  std::map<std::pair<std::uint32_t, NodeId>, PcieRoute> rcRoutes_;  // (rc index, target)
  // Lookup tables built by finalize(): address windows in match order, no allocation per lookup.
  struct Window {
    std::uint64_t base, size;
    const PcieRoute* route;
  };
  std::map<std::uint32_t, std::vector<Window>> requesterWindows_;  // Bdf key -> windows
  std::map<std::uint32_t, std::vector<Window>> rcWindows_;         // rc index -> windows
  void buildWindows();
};

}  // namespace hmmsim
