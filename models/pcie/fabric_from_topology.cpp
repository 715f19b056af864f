#include "models/pcie/fabric_from_topology.h"

#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "sim/assert.h"
#include "sim/config.h"

namespace hmmsim {

namespace {

[[noreturn]] void reject(const std::string& element, const std::string& message) {
  throw ConfigError("<topology>", 0, 0, element, message);
}

// One module-creation step, in an order PcieFabric accepts: parents before children, the
// children of one parent in port order.
struct Step {
  enum class Kind { RootComplex, Switch, Endpoint } kind = Kind::RootComplex;
  std::string name;
  std::string parent;  // empty for root complexes
  PcieLinkParams uplink;
  const PciDev* function = nullptr;  // endpoint function 0
  std::uint32_t rcIndex = 0;
};

class Planner {
 public:
  Planner(const Topology& topo, const FabricFromTopologyParams& p) : topo_(topo), p_(p) {}

  std::vector<Step> plan() {
    for (std::size_t i = 0; i < topo_.hostBridges().size(); ++i) {
      const PciHostBridge& hb = topo_.hostBridges()[i];
      Step rc;
      rc.kind = Step::Kind::RootComplex;
      rc.name = hb.name();
      rc.rcIndex = hostBridgeIndex(topo_, hb);
      steps_.push_back(rc);
      std::vector<const PciDev*> rootPorts;
      for (const PciDev* f : hb.rootBus().devices()) {
        if (f->type() == PciDevType::RootPort) {
          rootPorts.push_back(f);
        } else if (f->type() != PciDevType::HostBridge) {
          reject(f->name(), "function '" + f->name() + "' on the root bus of host bridge '" + hb.name() +
                                "' is a root-complex integrated endpoint; the fabric models only "
                                "endpoints below a root port or switch port");
        }
      }
      ports(hb.name(), rootPorts);
    }
    return std::move(steps_);
  }

 private:
  // The downstream-facing ports of `parent` in the fabric's port order.
  void ports(const std::string& parent, const std::vector<const PciDev*>& downstream) {
    const PciDev* emptySlot = nullptr;
    for (const PciDev* port : downstream) {
      if (port->downstreamLink() == kNoLink) {
        if (emptySlot == nullptr) emptySlot = port;
        continue;
      }
      if (emptySlot != nullptr) {
        reject(emptySlot->name(), "empty slot '" + emptySlot->name() + "' of '" + parent +
                                      "' precedes occupied port '" + port->name() +
                                      "'; the fabric numbers ports by occupied slots, so only "
                                      "trailing slots may be empty");
      }
      const PcieLink& link = topo_.link(port->downstreamLink());
      Step s;
      s.parent = parent;
      s.uplink = linkParams(link);
      const PciDev& down = *link.down;
      if (down.type() == PciDevType::SwitchUpstream) {
        const PcieSwitch* sw = topo_.switchOf(down);
        HMMSIM_ASSERT(sw != nullptr, down.name() << " is an upstream port without a switch");
        s.kind = Step::Kind::Switch;
        s.name = sw->name;
        steps_.push_back(s);
        ports(sw->name, std::vector<const PciDev*>(sw->downstream.begin(), sw->downstream.end()));
      } else {
        HMMSIM_ASSERT(down.type() == PciDevType::Endpoint,
                      "link " << link.name << " ends at " << down.name());
        if (down.bus() != nullptr && down.bus()->devices().size() > 1) {
          std::ostringstream fns;
          const char* sep = "";
          for (const PciDev* f : down.bus()->devices()) {
            fns << sep << f->name();
            sep = ", ";
          }
          reject(down.name(), "multi-function endpoint '" + down.name() + "' (functions " + fns.str() +
                                  ") shares link '" + link.name +
                                  "'; the fabric models one DMA engine per link");
        }
        s.kind = Step::Kind::Endpoint;
        s.name = down.name();
        s.function = &down;
        steps_.push_back(s);
      }
    }
  }

  PcieLinkParams linkParams(const PcieLink& link) const {
    PcieLinkParams lp = p_.link;
    if (link.gen < 1 || link.gen > 6) {
      reject(link.name,
             "link '" + link.name + "': generation " + std::to_string(link.gen) + " is not modelled (1..6)");
    }
    lp.config.gen = static_cast<PcieGen>(link.gen);
    lp.config.lanes = link.width;
    if (validateLinkConfig(lp.config) != Errno::Ok) {
      reject(link.name, "link '" + link.name + "': gen" + std::to_string(link.gen) + " x" +
                            std::to_string(link.width) +
                            " (with the configured MPS/MRRS/RCB) is not in the link timing table; "
                            "widths x1, x2, x4, x8, x16 and x32 are modelled");
    }
    return lp;
  }

  const Topology& topo_;
  const FabricFromTopologyParams& p_;
  std::vector<Step> steps_;
};

// The largest assigned memory BAR (lowest index on ties), or nullptr.
const PciBar* largestMemBar(const PciDev& d) {
  const PciBar* best = nullptr;
  for (const PciBar& b : d.bars())
    if (b.isMem() && b.assigned && (best == nullptr || b.size > best->size)) best = &b;
  return best;
}

}  // namespace

FabricFromTopology::FabricFromTopology(const std::string& name, const Topology& topo,
                                       const FabricFromTopologyParams& params) {
  const std::vector<Step> steps = Planner(topo, params).plan();  // throws before any module exists
  router_ = std::make_unique<Router>(topo, "top." + name + ".route");
  adapter_ = std::make_unique<TopologyPcieRouter>(topo, *router_, "top." + name + ".fabric_route");
  fabric_ = std::make_unique<PcieFabric>(name);
  fabric_->setHostInterconnect(params.hostInterconnect);
  for (const Step& s : steps) {
    PcieFabric::NodeId id = 0;
    switch (s.kind) {
      case Step::Kind::RootComplex: {
        PcieRootComplexParams rc = params.rootComplex;
        rc.index = s.rcIndex;
        id = fabric_->addRootComplex(s.name, rc, params.hostMemory, params.externalHostMemory);
        break;
      }
      case Step::Kind::Switch:
        id = fabric_->addSwitch(s.name, nodes_.at(s.parent), s.uplink, params.switchParams);
        break;
      case Step::Kind::Endpoint: {
        PcieDmaEngineParams dma = params.dma;
        dma.requester = s.function->bdf();
        dma.link = s.uplink.config;
        std::optional<PcieMemoryTargetParams> bar;
        const PciBar* b = params.createBarMemory ? largestMemBar(*s.function) : nullptr;
        if (b != nullptr) {
          bar = params.barMemory;
          bar->baseAddr = b->bus.value();
          bar->sizeBytes = b->size;
        }
        id = fabric_->addEndpoint(s.name, nodes_.at(s.parent), s.uplink, dma, bar);
        hasBar_[s.name] = b != nullptr;
        break;
      }
    }
    nodes_[s.name] = id;
  }
  fabric_->finalize();
  for (const Step& s : steps) {
    if (s.kind == Step::Kind::Endpoint) fabric_->engine(nodes_.at(s.name)).setRouter(adapter_.get());
    if (s.kind == Step::Kind::RootComplex) fabric_->rootComplex(nodes_.at(s.name)).setRouter(adapter_.get());
  }
}

FabricFromTopology::~FabricFromTopology() = default;

PcieFabric::NodeId FabricFromTopology::node(const std::string& name) const {
  const auto it = nodes_.find(name);
  HMMSIM_ASSERT(it != nodes_.end(), "no fabric element named '" << name << "'");
  return it->second;
}

PcieDmaEngine& FabricFromTopology::engine(const std::string& endpoint) {
  return fabric_->engine(node(endpoint));
}

bool FabricFromTopology::hasBarMemory(const std::string& endpoint) const {
  const auto it = hasBar_.find(endpoint);
  return it != hasBar_.end() && it->second;
}

PcieMemoryTarget& FabricFromTopology::barMemory(const std::string& endpoint) {
  HMMSIM_ASSERT(hasBarMemory(endpoint), "endpoint '" << endpoint << "' has no BAR memory");
  return fabric_->memory(node(endpoint));
}

PcieRootComplexModule& FabricFromTopology::rootComplex(const std::string& hostBridge) {
  return fabric_->rootComplex(node(hostBridge));
}

PcieHostInterconnectModule& FabricFromTopology::hostInterconnect() {
  HMMSIM_ASSERT(fabric_->hostInterconnect() != nullptr, "the topology has fewer than two host bridges");
  return *fabric_->hostInterconnect();
}

PcieMemoryTarget& FabricFromTopology::hostMemory(const std::string& hostBridge) {
  return fabric_->memory(node(hostBridge));
}

PcieSwitchModule& FabricFromTopology::switchModule(const std::string& sw) {
  return fabric_->switchModule(node(sw));
}

PcieLinkModule& FabricFromTopology::uplink(const std::string& n) {
  return fabric_->uplink(node(n));
}

}  // namespace hmmsim
