#include "models/pcie/pcie_fabric.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

PcieFabric::PcieFabric(std::string name) : name_(std::move(name)) {}
PcieFabric::~PcieFabric() = default;

PcieFabric::NodeId PcieFabric::addRootComplex(const std::string& name, const PcieRootComplexParams& params,
                                              const PcieMemoryTargetParams& hostMemory,
                                              bool externalHostMemory) {
  HMMSIM_ASSERT(!finalized_, "PcieFabric " << name_ << ": add after finalize");
  for (const Node& o : nodes_) {
    HMMSIM_ASSERT(o.kind != Kind::RootComplex || o.rc->params().index != params.index,
                  "PcieFabric " << name_ << ": root complex index " << params.index << " used twice");
  }
  Node n;
  n.kind = Kind::RootComplex;
  n.name = name;
  n.rc = std::make_unique<PcieRootComplexModule>((name_ + "_" + name).c_str(), params);
  if (!externalHostMemory) {
    n.mem = std::make_unique<PcieMemoryTarget>((name_ + "_" + name + "_mem").c_str(), hostMemory);
  }
  n.window = hostMemory;
  n.rc->setRouter(this);
  nodes_.push_back(std::move(n));
  return static_cast<NodeId>(nodes_.size() - 1);
}

PcieFabric::NodeId PcieFabric::addChild(Kind kind, const std::string& name, NodeId parent,
                                        const PcieLinkParams& uplink) {
  HMMSIM_ASSERT(!finalized_, "PcieFabric " << name_ << ": add after finalize");
  HMMSIM_ASSERT(parent < nodes_.size() && nodes_[parent].kind != Kind::Endpoint,
                "PcieFabric " << name_ << ": bad parent for " << name);
  Node n;
  n.kind = kind;
  n.name = name;
  n.parent = parent;
  n.portInParent = nodes_[parent].nextPort++;
  n.nextPort = kind == Kind::Switch ? 1 : 0;
  n.link = std::make_unique<PcieLinkModule>((name_ + "_" + name + "_link").c_str(), uplink);
  nodes_.push_back(std::move(n));
  return static_cast<NodeId>(nodes_.size() - 1);
}

PcieFabric::NodeId PcieFabric::addSwitch(const std::string& name, NodeId parent, const PcieLinkParams& uplink,
                                         const PcieSwitchParams& params) {
  const NodeId id = addChild(Kind::Switch, name, parent, uplink);
  nodes_[id].sw = std::make_unique<PcieSwitchModule>((name_ + "_" + name).c_str(), params);
  return id;
}

PcieFabric::NodeId PcieFabric::addEndpoint(const std::string& name, NodeId parent,
                                           const PcieLinkParams& uplink, const PcieDmaEngineParams& dma,
                                           const std::optional<PcieMemoryTargetParams>& bar) {
  HMMSIM_ASSERT(byRequester_.count(dma.requester.key()) == 0,
                "PcieFabric " << name_ << ": requester id " << dma.requester << " used twice");
  const NodeId id = addChild(Kind::Endpoint, name, parent, uplink);
  Node& n = nodes_[id];
  n.dma = std::make_unique<PcieDmaEngine>((name_ + "_" + name + "_dma").c_str(), dma);
  PcieMemoryTargetParams barParams;
  if (bar) {
    barParams = *bar;
  } else {
    barParams.sizeBytes = 0;  // claims nothing
    barParams.storeData = false;
  }
  n.mem = std::make_unique<PcieMemoryTarget>((name_ + "_" + name + "_bar").c_str(), barParams);
  n.window = barParams;
  n.dma->setRouter(this);
  byRequester_[dma.requester.key()] = id;
  return id;
}

PcieFabric::Node& PcieFabric::node(NodeId id, Kind kind) {
  HMMSIM_ASSERT(id < nodes_.size() && nodes_[id].kind == kind,
                "PcieFabric " << name_ << ": node " << id << " is not of the requested kind");
  return nodes_[id];
}

PcieDmaEngine& PcieFabric::engine(NodeId id) {
  return *node(id, Kind::Endpoint).dma;
}
PcieSwitchModule& PcieFabric::switchModule(NodeId id) {
  return *node(id, Kind::Switch).sw;
}
PcieRootComplexModule& PcieFabric::rootComplex(NodeId id) {
  return *node(id, Kind::RootComplex).rc;
}
PcieMemoryTarget& PcieFabric::memory(NodeId id) {
  HMMSIM_ASSERT(id < nodes_.size() && nodes_[id].mem,
                "PcieFabric " << name_ << ": node " << id << " has no memory");
  return *nodes_[id].mem;
}
PcieLinkModule& PcieFabric::uplink(NodeId id) {
  HMMSIM_ASSERT(id < nodes_.size() && nodes_[id].link,
                "PcieFabric " << name_ << ": node " << id << " has no uplink");
  return *nodes_[id].link;
}

void PcieFabric::setHostInterconnect(const PcieHostInterconnectParams& params) {
  HMMSIM_ASSERT(!finalized_, "PcieFabric " << name_ << ": host interconnect set after finalize");
  interconnectParams_ = params;
}

void PcieFabric::finalize() {
  HMMSIM_ASSERT(!finalized_, "PcieFabric " << name_ << ": finalize twice");
  finalized_ = true;
  std::vector<std::uint32_t> rcIndices;
  for (const Node& n : nodes_)
    if (n.kind == Kind::RootComplex) rcIndices.push_back(n.rc->params().index);
  if (rcIndices.size() >= 2) {
    interconnect_ = std::make_unique<PcieHostInterconnectModule>((name_ + "_host_interconnect").c_str(),
                                                                 interconnectParams_);
    interconnect_->setPorts(rcIndices);
    for (Node& n : nodes_) {
      if (n.kind != Kind::RootComplex) continue;
      n.rc->peerOut.bind(interconnect_->in);
      interconnect_->out.bind(n.rc->peerIn);
    }
  }
  // Parents precede children, so a switch's port 0 is bound before its downstream ports. Links
  // are charged by the ports at their ends (pcie_link_module.h): each side's socket is bound
  // straight to the element at the other end.
  for (Node& n : nodes_) {
    if (n.kind == Kind::RootComplex) {
      if (n.mem) n.rc->memOut.bind(n.mem->in);
      continue;
    }
    Node& p = nodes_[*n.parent];
    PcieTargetSocketBase& above =
        p.kind == Kind::RootComplex ? static_cast<PcieTargetSocketBase&>(p.rc->in) : p.sw->in;
    PcieLinkModule::Sender* lower = &n.link->sender(PcieLinkEnd::Lower);
    PcieLinkModule::Sender* upper = &n.link->sender(PcieLinkEnd::Upper);
    if (n.kind == Kind::Switch) {
      n.sw->bindPort(above, lower);
      if (p.kind == Kind::RootComplex)
        p.rc->bindPort(n.sw->in, upper);
      else
        p.sw->bindPort(n.sw->in, upper);
    } else {
      n.dma->bindUplink(above, lower);
      if (p.kind == Kind::RootComplex)
        p.rc->bindPort(n.mem->in, upper);
      else
        p.sw->bindPort(n.mem->in, upper);
    }
  }
  // Every (requester, target) and (root complex, target) route, computed once.
  for (NodeId target = 0; target < nodes_.size(); ++target) {
    if (nodes_[target].window.sizeBytes == 0) continue;
    for (NodeId from = 0; from < nodes_.size(); ++from) {
      if (nodes_[from].kind == Kind::Endpoint) {
        if (auto r = computeRoute(from, target)) routes_[{from, target}] = *r;
      } else if (nodes_[from].kind == Kind::RootComplex) {
        if (auto r = computeRoute(std::nullopt, target)) {
          // Only a target below (or at) this root complex is reachable from it.
          const auto up = ancestors(target);
          const bool below = target == from || std::find(up.begin(), up.end(), from) != up.end();
          if (below) rcRoutes_[{nodes_[from].rc->params().index, target}] = *r;
        }
      }
    }
  }
  buildWindows();
}

std::vector<PcieFabric::NodeId> PcieFabric::ancestors(NodeId id) const {
  std::vector<NodeId> out;
  for (auto p = nodes_[id].parent; p; p = nodes_[*p].parent) out.push_back(*p);
  return out;
}

std::optional<PcieRoute> PcieFabric::computeRoute(std::optional<NodeId> from, NodeId target) const {
  // Chain of the target: itself (if a root complex, the host-memory end) or its ancestors.
  std::vector<NodeId> down = ancestors(target);  // parent(target) ... root complex
  PcieRoute route;
  NodeId lca;
  if (from) {
    const std::vector<NodeId> up = ancestors(*from);
    auto isOnTargetChain = [&](NodeId x) {
      return x == target || std::find(down.begin(), down.end(), x) != down.end();
    };
    auto it = std::find_if(up.begin(), up.end(), isOnTargetChain);
    if (it == up.end()) return std::nullopt;                // different root complexes
    for (auto u = up.begin(); u != it; ++u) route.push(0);  // switches: out by the upstream port
    lca = *it;
  } else {
    lca = down.empty() ? target : down.back();  // start at the root complex
  }
  if (lca == target) {
    HMMSIM_ASSERT(nodes_[target].kind == Kind::RootComplex, "route to a switch");
    route.push(kEgressHostMemory);
    return route;
  }
  // Descend from the LCA toward the target: egress = port of the next node on the chain.
  auto pos = std::find(down.begin(), down.end(), lca);
  HMMSIM_ASSERT(pos != down.end(), "LCA not on the target chain");
  while (pos != down.begin()) {
    --pos;
    route.push(nodes_[*pos].portInParent);
  }
  route.push(nodes_[target].portInParent);
  return route;
}

void PcieFabric::buildWindows() {
  auto addWindow = [](std::vector<Window>& v, const Node& target, const PcieRoute& route) {
    const auto& p = target.window;
    if (p.sizeBytes > 0) v.push_back(Window{p.baseAddr, p.sizeBytes, &route});
  };
  for (const auto& [key, ep] : byRequester_) {
    std::vector<Window>& v = requesterWindows_[key];
    // Host memory is reachable through the requester's own root complex when that one claims
    // the address (several root complexes may front the same host memory window): match it first.
    const NodeId rc = ancestors(ep).back();
    if (auto it = routes_.find({ep, rc}); it != routes_.end()) addWindow(v, nodes_[rc], it->second);
    for (NodeId t = 0; t < nodes_.size(); ++t) {
      if (t == rc) continue;
      if (auto it = routes_.find({ep, t}); it != routes_.end()) addWindow(v, nodes_[t], it->second);
    }
  }
  for (NodeId rc = 0; rc < nodes_.size(); ++rc) {
    if (nodes_[rc].kind != Kind::RootComplex) continue;
    const std::uint32_t index = nodes_[rc].rc->params().index;
    std::vector<Window>& v = rcWindows_[index];
    if (auto it = rcRoutes_.find({index, rc}); it != rcRoutes_.end()) addWindow(v, nodes_[rc], it->second);
    for (NodeId t = 0; t < nodes_.size(); ++t) {
      if (t == rc) continue;
      if (auto it = rcRoutes_.find({index, t}); it != rcRoutes_.end()) addWindow(v, nodes_[t], it->second);
    }
  }
}

namespace {
// The first window holding addr (windows are fixed after finalize(): the result holds for the
// whole window unless an earlier window overlaps it, then no promise is made).
template <class Windows>
PcieRouteResult match(const Windows& windows, std::uint64_t addr) {
  for (std::size_t i = 0; i < windows.size(); ++i) {
    const auto& w = windows[i];
    if (addr >= w.base && addr - w.base < w.size) {
      PcieRouteResult r{w.route, CplStatus::SuccessfulCompletion};
      bool overlapped = false;
      for (std::size_t j = 0; j < i; ++j)
        overlapped |= windows[j].base < w.base + w.size && w.base < windows[j].base + windows[j].size;
      if (!overlapped) {
        r.validBase = w.base;
        r.validBytes = w.size;
      }
      return r;
    }
  }
  return PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
}
}  // namespace

PcieRouteResult PcieFabric::routeRequest(Bdf requester, std::uint64_t addr, bool /*isWrite*/,
                                         bool /*addressTranslated*/) const {
  auto it = requesterWindows_.find(requester.key());
  if (it == requesterWindows_.end()) return PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
  return match(it->second, addr);
}

PcieRouteResult PcieFabric::routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr,
                                                 bool /*isWrite*/) const {
  auto it = rcWindows_.find(rcIndex);
  if (it == rcWindows_.end()) return PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
  return match(it->second, addr);
}

}  // namespace hmmsim
