#include "models/pcie/p2pdma.h"

#include <climits>
#include <cstdio>

#include "sim/assert.h"

namespace hmmsim {

const char* p2pMapTypeName(P2pMapType t) {
  switch (t) {
    case P2pMapType::Unknown:
      return "Unknown";
    case P2pMapType::None:
      return "None";
    case P2pMapType::NotSupported:
      return "NotSupported";
    case P2pMapType::BusAddr:
      return "BusAddr";
    case P2pMapType::ThruHostBridge:
      return "ThruHostBridge";
  }
  return "?";
}

bool cpuSupportsP2pdma(const CpuIdentity& cpu) {
  // Any AMD CPU whose family is Zen (0x17) or newer; only on x86 (CONFIG_X86).
  return cpu.x86 && cpu.vendor == CpuVendor::Amd && cpu.family >= 0x17;
}

namespace {

// pci_name() followed by ';' as seq_buf_print_bus_devfn() writes it.
void printBusDevfn(std::string* out, const PciDev& d) {
  if (!out) return;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x;", d.bdf().domain, d.bdf().bus, d.bdf().dev, d.bdf().fn);
  *out += buf;
}

std::string pciName(const PciDev& d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", d.bdf().domain, d.bdf().bus, d.bdf().dev, d.bdf().fn);
  return buf;
}

// The common walk of upstream_bridge_distance() and calc_map_type_and_dist(). Returns the common
// upstream bridge (nullptr if none); *dist and *acsCnt as the kernel computes them.
const PciDev* commonBridgeWalk(const PciDev& provider, const PciDev& client, int* dist, int* acsCnt,
                               std::string* acsList) {
  const PciDev* a = &provider;
  int distA = 0, distB = 0;
  *acsCnt = 0;
  while (a) {
    distB = 0;
    if (a->hasAcsRedir()) {
      printBusDevfn(acsList, *a);
      ++*acsCnt;
    }
    for (const PciDev* bb = &client; bb; bb = bb->upstreamBridge(), ++distB) {
      if (a == bb) {
        // Check the client's path up to the common bridge (the common bridge itself was
        // checked on the provider's side).
        for (const PciDev* cb = &client; cb && cb != a; cb = cb->upstreamBridge()) {
          if (cb->hasAcsRedir()) {
            printBusDevfn(acsList, *cb);
            ++*acsCnt;
          }
        }
        *dist = distA + distB;
        return a;
      }
    }
    a = a->upstreamBridge();
    ++distA;
  }
  *dist = distA + distB;
  return nullptr;
}

bool hostBridgeListed(const PciHostBridge& host, bool sameHostBridge, bool warn,
                      std::vector<std::string>* log) {
  const PciDev* root = pciHostBridgeDev(host);
  if (!root) return false;
  for (const P2pdmaWhitelistEntry& e : p2pdmaWhitelist()) {
    if (root->vendor() != e.vendor) continue;
    if (e.device != 0xffff /* PCI_ANY_ID */ && root->device() != e.device) continue;
    if (e.reqSameHostBridge && !sameHostBridge) return false;
    return true;
  }
  if (warn && log) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s: Host bridge not in P2PDMA whitelist: %04x:%04x",
                  pciName(*root).c_str(), root->vendor(), root->device());
    log->push_back(buf);
  }
  return false;
}

}  // namespace

int upstreamBridgeDistance(const PciDev& a, const PciDev& b, std::string* acsList) {
  int dist = 0, acsCnt = 0;
  if (!commonBridgeWalk(a, b, &dist, &acsCnt, acsList)) return -1;
  if (acsCnt) return -2;
  return dist;
}

const PciDev* pciHostBridgeDev(const PciHostBridge& host) {
  const auto& devs = host.rootBus().devices();
  if (devs.empty()) return nullptr;
  const PciDev* root = devs.front();
  if (root->devfn() == 0) return root;
  if (root->type() == PciDevType::RootPort) return root;
  return nullptr;
}

const std::vector<P2pdmaWhitelistEntry>& p2pdmaWhitelist() {
  static const std::vector<P2pdmaWhitelistEntry> table = {
      // Intel Xeon E5/Core i7
      {kPciVendorIdIntel, 0x3c00, true},
      {kPciVendorIdIntel, 0x3c01, true},
      // Intel Xeon E7 v3/Xeon E5 v3/Core i7
      {kPciVendorIdIntel, 0x2f00, true},
      {kPciVendorIdIntel, 0x2f01, true},
      // Intel Skylake-E
      {kPciVendorIdIntel, 0x2030, false},
      {kPciVendorIdIntel, 0x2031, false},
      {kPciVendorIdIntel, 0x2032, false},
      {kPciVendorIdIntel, 0x2033, false},
      {kPciVendorIdIntel, 0x2020, false},
      {kPciVendorIdIntel, 0x09a2, false},
      // Google SoCs: any device id (PCI_ANY_ID)
      {kPciVendorIdGoogle, 0xffff, false},
  };
  return table;
}

bool hostBridgeWhitelist(const PciDev& a, const PciDev& b, bool warn, std::vector<std::string>* log) {
  const PciHostBridge& hostA = a.bus()->hostBridge();
  const PciHostBridge& hostB = b.bus()->hostBridge();
  if (&hostA == &hostB) return hostBridgeListed(hostA, true, warn, log);
  return hostBridgeListed(hostA, false, warn, log) && hostBridgeListed(hostB, false, warn, log);
}

std::uint32_t mapTypesIdx(const PciDev& client) {
  return (std::uint32_t(client.bdf().domain) << 16) | client.pciDevId();
}

P2pdma::P2pdma(Topology& topo, const P2pdmaParams& params, Rng rng, const std::string& statsName)
    : topo_(topo),
      params_(params),
      rng_(rng),
      stats_(statsName),
      calcCount_(stats_.counter("map_type_calcs", "calls", "calc_map_type_and_dist evaluations")),
      cacheHits_(
          stats_.counter("map_type_cache_hits", "lookups", "pci_p2pdma_map_type answered from the cache")),
      notSupported_(stats_.counter("map_type_not_supported", "calls",
                                   "calc_map_type_and_dist results that were NotSupported")),
      allocFail_(
          stats_.counter("p2pmem_alloc_failures", "calls", "pci_alloc_p2pmem calls that returned NULL")) {}

P2pMapType P2pdma::calcMapTypeAndDist(PciDev& provider, PciDev& client, int* dist, bool verbose) {
  calcCount_ += 1;
  int d = 0, acsCnt = 0;
  std::string acsList;
  const PciDev* common = commonBridgeWalk(provider, client, &d, &acsCnt, &acsList);
  if (dist) *dist = d;
  P2pMapType mapType = P2pMapType::ThruHostBridge;
  bool acsRedirects = false;
  if (common && acsCnt == 0) {
    mapType = P2pMapType::BusAddr;
  } else {
    if (common) {
      acsRedirects = true;
      if (verbose) {
        if (!acsList.empty()) acsList.pop_back();  // the trailing ';'
        log_.push_back(pciName(client) + ": ACS redirect is set between the client and provider (" +
                       pciName(provider) + ")");
        log_.push_back(pciName(client) +
                       ": to disable ACS redirect for this path, add the kernel parameter: "
                       "pci=disable_acs_redir=" +
                       acsList);
      }
    }
    // As in the kernel, the host bridge warning is issued when ACS forced the host-bridge path
    // (warn = acs_redirects), independently of `verbose`.
    if (!cpuSupportsP2pdma(params_.cpu) && !hostBridgeWhitelist(provider, client, acsRedirects, &log_)) {
      if (verbose)
        log_.push_back(pciName(client) +
                       ": cannot be used for peer-to-peer DMA as the client and provider (" +
                       pciName(provider) + ") do not share an upstream bridge or whitelisted host bridge");
      mapType = P2pMapType::NotSupported;
    }
  }
  if (mapType == P2pMapType::NotSupported) notSupported_ += 1;
  if (PciP2pdma* p = provider.p2pdma()) p->mapTypes[mapTypesIdx(client)] = mapType;
  return mapType;
}

int P2pdma::pciP2pdmaDistanceMany(PciDev& provider, const std::vector<Device*>& clients, bool verbose) {
  if (clients.empty()) return -1;
  bool notSupported = false;
  int total = 0;
  for (Device* c : clients) {
    PciDev* client = pciFindParentDev(c);
    if (!client) {
      if (verbose)
        log_.push_back(c->name() + ": cannot be used for peer-to-peer DMA as it is not a PCI device");
      return -1;
    }
    int distance = 0;
    if (calcMapTypeAndDist(provider, *client, &distance, verbose) == P2pMapType::NotSupported)
      notSupported = true;
    if (notSupported && !verbose) break;
    total += distance;
  }
  if (notSupported) return -1;
  return total;
}

int P2pdma::pciP2pdmaDistance(PciDev& provider, Device& client, bool verbose) {
  return pciP2pdmaDistanceMany(provider, {&client}, verbose);
}

Errno P2pdma::pciP2pdmaAddResource(PciDev& pdev, int bar, std::uint64_t size, std::uint64_t offset) {
  if (bar < 0 || bar >= kPciNumBars) return Errno::Inval;
  const PciBar& b = pdev.bar(bar);
  // An unassigned BAR has no resource (flags 0 in the kernel), so it is not IORESOURCE_MEM.
  if (!b.isMem() || !b.assigned) return Errno::Inval;
  if (offset >= b.size) return Errno::Inval;
  if (!size) size = b.size - offset;
  if (size + offset > b.size || size + offset < size) return Errno::Inval;
  if (!pdev.p2pdma_) pdev.p2pdma_ = std::make_unique<PciP2pdma>();
  PciP2pdma& st = *pdev.p2pdma_;
  if (!st.mem[bar]) st.mem[bar] = P2pdmaProvider{&pdev, bar, b.bus.value() - b.cpu.value()};
  P2pmemChunk chunk;
  chunk.cpu = b.cpu + offset;
  chunk.bus = b.bus + offset;
  chunk.size = size;
  chunk.bar = bar;
  chunk.used.assign((size + kPageSize - 1) / kPageSize, false);
  st.pool.push_back(std::move(chunk));
  char buf[128];
  const unsigned long long first = b.cpu.value() + offset;
  const unsigned long long last = first + size - 1;
  std::snprintf(buf, sizeof buf, "%s: added peer-to-peer DMA memory %#llx-%#llx", pciName(pdev).c_str(),
                first, last);
  log_.push_back(buf);
  return Errno::Ok;
}

void P2pdma::pciP2pmemPublish(PciDev& pdev, bool publish) {
  if (pdev.p2pdma_) pdev.p2pdma_->p2pmemPublished = publish;
}

bool P2pdma::pciHasP2pmem(const PciDev& pdev) const {
  return pdev.p2pdma() && pdev.p2pdma()->p2pmemPublished;
}

PciDev* P2pdma::pciP2pmemFindMany(const std::vector<Device*>& clients) {
  constexpr std::size_t kMaxDevs = kPageSize / sizeof(void*);
  int closest = INT_MAX;
  std::vector<PciDev*> closestDevs;
  for (PciDev* pdev : topo_.functionsInBdfOrder()) {
    if (!pciHasP2pmem(*pdev)) continue;
    int distance = pciP2pdmaDistanceMany(*pdev, clients, false);
    if (distance < 0 || distance > closest) continue;
    if (distance == closest && closestDevs.size() >= kMaxDevs) continue;
    if (distance < closest) {
      closestDevs.clear();
      closest = distance;
    }
    closestDevs.push_back(pdev);
  }
  if (closestDevs.empty()) return nullptr;
  return closestDevs[rng_.below(closestDevs.size())];
}

PciDev* P2pdma::pciP2pmemFind(Device& client) {
  return pciP2pmemFindMany({&client});
}

std::optional<Pa> P2pdma::pciAllocP2pmem(PciDev& pdev, std::uint64_t size) {
  PciP2pdma* st = pdev.p2pdma_.get();
  if (!st || size == 0) {
    allocFail_ += 1;
    return std::nullopt;
  }
  const std::size_t pages = (size + kPageSize - 1) / kPageSize;
  // gen_pool_first_fit over the chunks in the order they were added.
  for (P2pmemChunk& c : st->pool) {
    std::size_t run = 0;
    for (std::size_t i = 0; i < c.used.size(); ++i) {
      run = c.used[i] ? 0 : run + 1;
      if (run == pages) {
        std::size_t first = i + 1 - pages;
        for (std::size_t j = first; j <= i; ++j) c.used[j] = true;
        return c.cpu + first * kPageSize;
      }
    }
  }
  allocFail_ += 1;
  return std::nullopt;
}

void P2pdma::pciFreeP2pmem(PciDev& pdev, Pa addr, std::uint64_t size) {
  PciP2pdma* st = pdev.p2pdma_.get();
  HMMSIM_ASSERT(st, "pci_free_p2pmem on " << pdev.name() << " without p2pdma");
  const std::size_t pages = (size + kPageSize - 1) / kPageSize;
  for (P2pmemChunk& c : st->pool) {
    if (addr < c.cpu || addr - c.cpu >= c.size) continue;
    std::size_t first = (addr - c.cpu) / kPageSize;
    HMMSIM_ASSERT(first + pages <= c.used.size(), "pci_free_p2pmem range beyond its chunk");
    for (std::size_t j = first; j < first + pages; ++j) {
      HMMSIM_ASSERT(c.used[j], "pci_free_p2pmem of a free page at " << (c.cpu + j * kPageSize));
      c.used[j] = false;
    }
    return;
  }
  HMMSIM_ASSERT(false, "pci_free_p2pmem of " << addr << " outside the pool of " << pdev.name());
}

BusAddr P2pdma::pciP2pmemVirtToBus(const PciDev& pdev, Pa addr) const {
  const PciP2pdma* st = pdev.p2pdma();
  if (!st) return BusAddr(0);
  for (const P2pmemChunk& c : st->pool)
    if (addr >= c.cpu && addr - c.cpu < c.size) return c.bus + (addr - c.cpu);
  return BusAddr(0);
}

std::uint64_t P2pdma::pciP2pmemAvailable(const PciDev& pdev) const {
  const PciP2pdma* st = pdev.p2pdma();
  if (!st) return 0;
  std::uint64_t freeBytes = 0;
  for (const P2pmemChunk& c : st->pool) {
    for (std::size_t i = 0; i < c.used.size(); ++i)
      if (!c.used[i]) freeBytes += std::min<std::uint64_t>(kPageSize, c.size - i * kPageSize);
  }
  return freeBytes;
}

const P2pdmaProvider* P2pdma::pciP2pdmaProvider(const PciDev& pdev, int bar) const {
  if (bar < 0 || bar >= kPciNumBars || !pdev.p2pdma()) return nullptr;
  const auto& p = pdev.p2pdma()->mem[bar];
  return p ? &*p : nullptr;
}

const P2pdmaProvider* P2pdma::providerOfPhys(Pa pa) const {
  for (const auto& d : topo_.functions()) {
    const PciP2pdma* st = d->p2pdma();
    if (!st) continue;
    for (const P2pmemChunk& c : st->pool)
      if (pa >= c.cpu && pa - c.cpu < c.size) return &*st->mem[c.bar];
  }
  return nullptr;
}

P2pMapType P2pdma::pciP2pdmaMapType(const P2pdmaProvider& provider, Device& dev) {
  PciDev* pdev = provider.owner;
  if (!pdev || !pdev->p2pdma()) return P2pMapType::NotSupported;
  PciDev* client = toPciDev(&dev);
  if (!client) return P2pMapType::NotSupported;
  auto& cache = pdev->p2pdma()->mapTypes;
  auto it = cache.find(mapTypesIdx(*client));
  if (it != cache.end() && it->second != P2pMapType::Unknown) {
    cacheHits_ += 1;
    return it->second;
  }
  int dist = 0;
  return calcMapTypeAndDist(*pdev, *client, &dist, true);
}

bool pciTestP2p(Device& a, Device& b) {
  PciDev* pa = pciFindParentDev(&a);
  PciDev* pb = pciFindParentDev(&b);
  if (!pa || !pb) return false;
  // The posted RFC patch computed this distance and then returned false regardless (its result
  // was never used: "This function only ever returns false"). hmmsim returns the result.
  return upstreamBridgeDistance(*pa, *pb, nullptr) >= 0;
}

bool deviceTestP2p(Device& a, Device& b) {
  return pciTestP2p(a, b);
}

}  // namespace hmmsim
