#include "models/pcie/dma_mapping.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

namespace {
// IOVA_RANGE_CACHE_MAX_SIZE: allocations below 1 << (6 - 1) pages are rounded up to a power of
// two (iommu_dma_alloc_iova), so freed ranges fit the rcaches and fragmentation stays low.
constexpr std::uint64_t kRcacheRoundPages = 1ull << (6 - 1);
constexpr std::uint64_t kApertureEnd = (1ull << IoPageTable::kInputBits) - 1;

std::uint64_t roundupPowOfTwo(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

IommuProt dmaDirToProt(DmaDir dir) {
  switch (dir) {
    case DmaDir::Bidirectional:
      return kIommuRead | kIommuWrite;
    case DmaDir::ToDevice:
      return kIommuRead;
    case DmaDir::FromDevice:
      return kIommuWrite;
    case DmaDir::None:
      return 0;
  }
  return 0;
}

DmaMapping::DmaMapping(std::string name, Iommu& iommu, const DmaMappingParams& params)
    : iommu_(iommu),
      params_(params),
      stats_(std::move(name)),
      maps_(stats_.counter("maps", "count", "successful dma_map_page / dma_map_resource / p2p maps")),
      unmaps_(stats_.counter("unmaps", "count", "successful unmaps")),
      mapErrors_(stats_.counter("map_errors", "count", "maps that returned DMA_MAPPING_ERROR")),
      badUnmaps_(stats_.counter("bad_unmaps", "count", "unmaps that matched no live mapping (dma-debug)")),
      directUnreachable_(
          stats_.counter("direct_unreachable", "count",
                         "direct maps beyond the DMA mask (the kernel would bounce via swiotlb)")),
      iovaAllocFailures_(
          stats_.counter("iova_alloc_failures", "count", "IOVA allocations that found no space")),
      fqQueued_(stats_.counter("fq_queued", "count", "IOVAs queued for a deferred flush (lazy mode)")),
      fqFlushesFull_(
          stats_.counter("fq_flushes_full", "count", "flush-queue flushes forced by a full queue")),
      fqFlushesTimeout_(stats_.counter("fq_flushes_timeout", "count", "flush-queue flushes by the timer")),
      liveMappings_(stats_.scalar("live_mappings", "count", "mappings currently live")),
      iovaRanges_(stats_.counter("iova_ranges", "count", "IOVA ranges allocated by dma_iova_try_alloc")),
      iovaLinks_(stats_.counter("iova_links", "pages", "pages linked into IOVA ranges (dma_iova_link)")),
      iovaUnlinks_(stats_.counter("iova_unlinks", "pages", "pages unlinked (dma_iova_unlink)")) {
  HMMSIM_ASSERT(params.flushQueueSize > 0, "flush queue size must be > 0");
}

DmaMapping::~DmaMapping() = default;

DmaMapping::Cookie* DmaMapping::cookieOf(const Device& dev) {
  for (auto& c : cookies_)
    if (c->dev == &dev) return c.get();
  return nullptr;
}

const DmaMapping::Cookie* DmaMapping::cookieOf(const Device& dev) const {
  for (const auto& c : cookies_)
    if (c->dev == &dev) return c.get();
  return nullptr;
}

Errno DmaMapping::attachDevice(const Device& dev, const DmaDeviceParams& params) {
  if (cookieOf(dev)) return Errno::Exist;
  if (params.dmaMask == 0) return Errno::Inval;
  auto c = std::make_unique<Cookie>();
  c->dev = &dev;
  c->params = params;
  c->sac = params.isPci && !params_.forceDac;
  auto reserveAll = [&](IovaDomain& iovad, const std::vector<IovaWindow>& windows) {
    for (const IovaWindow& w : windows) {
      if (w.size == 0) continue;
      Errno r =
          iovad.reserveIova(w.start.value() >> kPageShift, (w.start.value() + w.size - 1) >> kPageShift);
      HMMSIM_ASSERT(r == Errno::Ok, "reserving an IOVA window failed after the overlap check: " << r);
    }
  };

  if (params.groupWith) {
    // Join the group's domain: same IommuDomain, IOVA space and flush queue.
    const Cookie* leader = cookieOf(*params.groupWith);
    if (!leader) return Errno::NoDev;
    std::shared_ptr<DomainCookie> dc = leader->dc;
    if (dc->domain) {
      if (iommu_.domainForDev(params.bdf)) return Errno::Busy;
      if (dc->iovad) {
        // The new member's windows must not cover IOVAs already handed out in the group.
        for (const IovaNode& n : dc->iovad->ranges()) {
          if (n.reserved) continue;
          for (const IovaWindow& w : params.reservedWindows) {
            const std::uint64_t lo = w.start.value() >> kPageShift,
                                hi = (w.start.value() + w.size - 1) >> kPageShift;
            if (w.size && n.pfnLo <= hi && lo <= n.pfnHi) return Errno::Busy;
          }
        }
        reserveAll(*dc->iovad, params.reservedWindows);
      }
      Errno e = iommu_.attachDevice(*dc->domain, params.bdf);
      HMMSIM_ASSERT(e == Errno::Ok, "group domain attach failed: " << e);
    }
    ++dc->users;
    c->dc = std::move(dc);
    cookies_.push_back(std::move(c));
    return Errno::Ok;
  }

  auto dc = std::make_shared<DomainCookie>();
  if (iommu_.mode() != IommuMode::Off) {
    if (iommu_.domainForDev(params.bdf)) return Errno::Busy;
    const bool identity = iommu_.mode() == IommuMode::Passthrough;
    IommuDomain& d = iommu_.domainAlloc(identity ? IommuDomainType::Identity : IommuDomainType::Dma);
    Errno e = iommu_.attachDevice(d, params.bdf);
    HMMSIM_ASSERT(e == Errno::Ok, "fresh domain attach failed: " << e);
    dc->domain = &d;
    if (!identity) {
      // iommu_dma_init_domain(): an IOVA domain starting at pfn 1, then the reserved regions.
      dc->iovad = std::make_unique<IovaDomain>(kPageSize, 1);
      reserveAll(*dc->iovad, params_.platformReserved);
      reserveAll(*dc->iovad, params.reservedWindows);
    }
  }
  dc->users = 1;
  c->dc = dc;
  domains_.push_back(std::move(dc));
  cookies_.push_back(std::move(c));
  return Errno::Ok;
}

Errno DmaMapping::detachDevice(const Device& dev) {
  auto it = std::find_if(cookies_.begin(), cookies_.end(), [&](const auto& c) { return c->dev == &dev; });
  if (it == cookies_.end()) return Errno::NoDev;
  Cookie& c = **it;
  if (!c.live.empty()) return Errno::Busy;
  for (const auto& other : cookies_)
    if (other.get() != &c && other->params.groupWith == &dev) return Errno::Busy;  // still a group's anchor
  DomainCookie& dc = *c.dc;
  if (dc.domain) iommu_.detachDevice(c.params.bdf);
  if (--dc.users == 0) {
    if (!dc.fq.empty()) fqFlush(dc);
    if (dc.domain) iommu_.domainFree(*dc.domain);
    domains_.erase(std::find(domains_.begin(), domains_.end(), c.dc));
  }
  cookies_.erase(it);
  return Errno::Ok;
}

DmaAddr DmaMapping::fail() {
  ++mapErrors_;
  return kDmaMappingError;
}

std::uint64_t DmaMapping::iovaPages(std::uint64_t bytes) const {
  std::uint64_t pages = bytes >> kPageShift;
  return pages < kRcacheRoundPages ? roundupPowOfTwo(pages) : pages;
}

std::optional<std::uint64_t> DmaMapping::allocIovaFor(Cookie& c, std::uint64_t bytes) {
  // iommu_dma_alloc_iova(): sizes below the rcache limit round up to a power of two; a PCI
  // device tries below 4 GiB first (the SAC workaround) until that fails once.
  std::uint64_t limit = c.params.dmaMask;
  if (c.params.busDmaLimit) limit = std::min(limit, c.params.busDmaLimit);
  limit = std::min(limit, kApertureEnd);
  const std::uint64_t pages = iovaPages(bytes);
  std::optional<std::uint64_t> pfn;
  if (c.sac && limit > dmaBitMask(32)) {
    pfn = c.dc->iovad->allocIova(pages, dmaBitMask(32) >> kPageShift, true);
    if (!pfn) c.sac = false;  // the kernel stops trying 32-bit IOVAs for this device
  }
  if (!pfn) pfn = c.dc->iovad->allocIova(pages, limit >> kPageShift, true);
  if (!pfn) ++iovaAllocFailures_;
  return pfn;
}

DmaAddr DmaMapping::mapCommon(Cookie& c, Pa pa, std::uint64_t size, DmaDir dir, Kind kind, bool mmio) {
  HMMSIM_ASSERT(dir != DmaDir::None, "DMA_NONE passed to a map call (the kernel BUG()s)");
  if (size == 0) return fail();
  std::uint64_t limit = c.params.dmaMask;
  if (c.params.busDmaLimit) limit = std::min(limit, c.params.busDmaLimit);

  if (!translating(c)) {
    // dma-direct: phys_to_dma() adds the bus offset for pages; dma_map_resource uses the
    // physical address as is. dma_capable() checks the whole range against the mask.
    const std::uint64_t dma = kind == Kind::Resource ? pa.value() : pa.value() + c.params.dmaOffset;
    if (dma + size - 1 < dma || dma + size - 1 > limit) {
      ++directUnreachable_;
      return fail();
    }
    c.live.emplace(dma, Live{size, dir, kind});
    liveMappings_.set(liveMappings_.value() + 1);
    ++maps_;
    return DmaAddr(dma);
  }

  // __iommu_dma_map(): page-align the range, allocate an IOVA, map it.
  const std::uint64_t off = pa.value() & (kPageSize - 1);
  const std::uint64_t len = (size + off + kPageSize - 1) & ~(kPageSize - 1);
  const std::optional<std::uint64_t> pfn = allocIovaFor(c, len);
  if (!pfn) return fail();
  const Iova iova(*pfn << kPageShift);
  IommuProt prot = dmaDirToProt(dir) | (mmio ? kIommuMmio : 0);
  Errno e = iommu_.map(*c.dc->domain, iova, pa.alignDown(kPageSize), len, prot);
  if (e != Errno::Ok) {
    c.dc->iovad->freeIova(*pfn);
    return fail();
  }
  const std::uint64_t dma = iova.value() + off;
  c.live.emplace(dma, Live{size, dir, kind});
  liveMappings_.set(liveMappings_.value() + 1);
  ++maps_;
  return DmaAddr(dma);
}

Errno DmaMapping::unmapCommon(Cookie& c, DmaAddr addr, std::uint64_t size, DmaDir dir, Kind kind) {
  // The direct path may map one address several times: match any live entry exactly.
  auto [lo, hi] = c.live.equal_range(addr.value());
  auto it = std::find_if(lo, hi, [&](const auto& e) {
    return e.second.size == size && e.second.dir == dir && e.second.kind == kind;
  });
  if (it == hi) {
    ++badUnmaps_;
    return Errno::Inval;
  }
  c.live.erase(it);
  liveMappings_.set(liveMappings_.value() - 1);
  ++unmaps_;
  if (kind == Kind::P2pBusAddr || !translating(c)) return Errno::Ok;

  // __iommu_dma_unmap(): clear the PTEs, then either sync now (strict) or queue the IOVA.
  const std::uint64_t off = addr.value() & (kPageSize - 1);
  const Iova iova(addr.value() - off);
  const std::uint64_t len = (size + off + kPageSize - 1) & ~(kPageSize - 1);
  const std::uint64_t pfn = iova.value() >> kPageShift;
  if (iommu_.params().invalidation == IommuInvalidation::Strict) {
    std::uint64_t n = iommu_.unmap(*c.dc->domain, iova, len);
    HMMSIM_ASSERT(n >= len, "unmapped " << n << " of " << len << " bytes of a live mapping");
    Errno f = c.dc->iovad->freeIova(pfn);
    HMMSIM_ASSERT(f == Errno::Ok, "live mapping without its IOVA");
    return Errno::Ok;
  }
  IommuIotlbGather gather;  // unused: the flush queue flushes the whole domain
  std::uint64_t n = iommu_.unmapFast(*c.dc->domain, iova, len, gather);
  HMMSIM_ASSERT(n >= len, "unmapped " << n << " of " << len << " bytes of a live mapping");
  // queue_iova(): a full queue is flushed first; the first entry arms the timer.
  if (c.dc->fq.size() >= params_.flushQueueSize) {
    ++fqFlushesFull_;
    fqFlush(*c.dc);
  }
  c.dc->fq.push_back(FqEntry{pfn});
  ++fqQueued_;
  if (!c.dc->fqTimerArmed) {
    c.dc->fqTimerArmed = true;
    c.dc->fqDeadlinePs = nowPs_ + params_.flushQueueTimeoutPs;
  }
  return Errno::Ok;
}

void DmaMapping::fqFlush(DomainCookie& dc) {
  // fq_flush_iotlb(): one domain-wide IOTLB (and device-TLB) flush, then the IOVAs go back.
  iommu_.flushIotlbAll(*dc.domain);
  for (const FqEntry& e : dc.fq) {
    Errno f = dc.iovad->freeIova(e.pfn);
    HMMSIM_ASSERT(f == Errno::Ok, "queued IOVA vanished");
  }
  dc.fq.clear();
  dc.fqTimerArmed = false;
}

void DmaMapping::tick(std::uint64_t nowPs) {
  // Callers under temporal decoupling may lag behind another initiator: never move back.
  if (nowPs < nowPs_) return;
  nowPs_ = nowPs;
  for (auto& dc : domains_) {
    if (dc->fqTimerArmed && dc->fqDeadlinePs <= nowPs_) {
      ++fqFlushesTimeout_;
      fqFlush(*dc);
    }
  }
}

void DmaMapping::flushAllQueues() {
  for (auto& dc : domains_)
    if (!dc->fq.empty()) fqFlush(*dc);
}

std::size_t DmaMapping::flushQueueDepth(const Device& dev) const {
  const Cookie* c = cookieOf(dev);
  return c ? c->dc->fq.size() : 0;
}

IommuDomain* DmaMapping::domainOf(const Device& dev) {
  Cookie* c = cookieOf(dev);
  return c ? c->dc->domain : nullptr;
}

const IovaDomain* DmaMapping::iovaDomainOf(const Device& dev) const {
  const Cookie* c = cookieOf(dev);
  return c ? c->dc->iovad.get() : nullptr;
}

DmaAddr DmaMapping::dmaMapPage(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir) {
  Cookie* c = cookieOf(dev);
  if (!c) return fail();
  return mapCommon(*c, pa, size, dir, Kind::Page, false);
}

Errno DmaMapping::dmaUnmapPage(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir) {
  Cookie* c = cookieOf(dev);
  if (!c) return Errno::NoDev;
  return unmapCommon(*c, addr, size, dir, Kind::Page);
}

DmaAddr DmaMapping::dmaMapResource(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir) {
  Cookie* c = cookieOf(dev);
  if (!c) return fail();
  if (params_.isRam && params_.isRam(pa)) return fail();  // WARN_ON_ONCE(pfn_valid(...))
  return mapCommon(*c, pa, size, dir, Kind::Resource, true);
}

Errno DmaMapping::dmaUnmapResource(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir) {
  Cookie* c = cookieOf(dev);
  if (!c) return Errno::NoDev;
  return unmapCommon(*c, addr, size, dir, Kind::Resource);
}

bool DmaMapping::dmaMappingError(const Device&, DmaAddr addr) const {
  return addr == kDmaMappingError;
}

}  // namespace hmmsim
