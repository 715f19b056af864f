// The two-step DMA API of Linux 6.15+ (kernel/dma/mapping.c + drivers/iommu/dma-iommu.c:
// dma_iova_try_alloc, dma_iova_link + dma_iova_sync, dma_iova_unlink, dma_iova_free), as
// hmm_dma_map_alloc/hmm_dma_map_pfn (mm/hmm.c, 6.16) use it: one IOVA range per mirror, every
// page linked at its own offset, so consecutive pages are IOVA-contiguous whatever their frames.
// See dma_mapping.h.
#include <algorithm>

#include "models/pcie/dma_mapping.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {
bool pageAligned(std::uint64_t x) {
  return (x & (kPageSize - 1)) == 0;
}
/// A non-empty, page-aligned [offset, offset + size) inside `state`'s range of `dev`.
bool inRange(const DmaIovaState& state, const Device& dev, std::uint64_t offset, std::uint64_t size) {
  return state.allocated() && state.dev == &dev && size != 0 && pageAligned(offset) && pageAligned(size) &&
         offset + size >= offset && ((offset + size) >> kPageShift) <= state.refs.size();
}
}  // namespace

bool DmaMapping::dmaIovaTryAlloc(const Device& dev, DmaIovaState& state, std::uint64_t size) {
  HMMSIM_ASSERT(!state.allocated(), "dma_iova_try_alloc on a state that holds a range already");
  Cookie* c = cookieOf(dev);
  // use_dma_iommu(): only a device translating through a DMA domain gets a range; dma-direct
  // devices (IOMMU off, passthrough, identity domain) map page by page.
  if (!c || !translating(*c) || size == 0) return false;
  const std::uint64_t len = (size + kPageSize - 1) & ~(kPageSize - 1);
  const std::optional<std::uint64_t> pfn = allocIovaFor(*c, len);
  if (!pfn) return false;
  state.addr = DmaAddr(*pfn << kPageShift);
  state.size = size;
  state.linked = 0;
  state.dev = &dev;
  state.refs.assign(len >> kPageShift, 0);
  ++iovaRanges_;
  return true;
}

Errno DmaMapping::dmaIovaLink(const Device& dev, DmaIovaState& state, Pa pa, std::uint64_t offset,
                              std::uint64_t size, DmaDir dir) {
  HMMSIM_ASSERT(dir != DmaDir::None, "DMA_NONE passed to dma_iova_link (the kernel BUG()s)");
  Cookie* c = cookieOf(dev);
  // The kernel WARNs and returns -EIO when phys and the offset disagree within the granule.
  if (!c || !inRange(state, dev, offset, size) || !pageAligned(pa.value())) return Errno::Inval;
  IommuDomain& domain = *c->dc->domain;
  const std::uint64_t first = offset >> kPageShift, n = size >> kPageShift;
  for (std::uint64_t i = 0; i < n; ++i)
    if (state.refs[first + i] != 0 &&
        iommu_.iovaToPhys(domain, Iova(state.addr.value() + offset + (i << kPageShift))) !=
            Pa(pa.value() + (i << kPageShift)))
      return Errno::Exist;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint16_t& ref = state.refs[first + i];
    HMMSIM_ASSERT(ref != 0xffff, "dma_iova_link: a page held 65535 times");
    if (ref++ != 0) continue;
    const Errno e = iommu_.map(domain, Iova(state.addr.value() + offset + (i << kPageShift)),
                               Pa(pa.value() + (i << kPageShift)), kPageSize, dmaDirToProt(dir));
    HMMSIM_ASSERT(e == Errno::Ok, "dma_iova_link: the IOMMU refused an unlinked page: " << errnoName(e));
    ++state.linked;
    ++iovaLinks_;
  }
  return Errno::Ok;
}

Errno DmaMapping::dmaIovaUnlink(const Device& dev, DmaIovaState& state, std::uint64_t offset,
                                std::uint64_t size, DmaDir dir) {
  HMMSIM_ASSERT(dir != DmaDir::None, "DMA_NONE passed to dma_iova_unlink (the kernel BUG()s)");
  Cookie* c = cookieOf(dev);
  if (!c || !inRange(state, dev, offset, size)) return Errno::Inval;
  const std::uint64_t first = offset >> kPageShift, n = size >> kPageShift;
  for (std::uint64_t i = 0; i < n; ++i)
    if (state.refs[first + i] == 0) return Errno::Inval;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (--state.refs[first + i] != 0) continue;
    // __iommu_dma_iova_unlink(): iommu_unmap_fast + iommu_iotlb_sync, always at once (the range
    // keeps its IOVA, so there is nothing for a flush queue to hold back).
    const std::uint64_t got =
        iommu_.unmap(*c->dc->domain, Iova(state.addr.value() + offset + (i << kPageShift)), kPageSize);
    HMMSIM_ASSERT(got == kPageSize, "dma_iova_unlink unmapped " << got << " bytes of a linked page");
    --state.linked;
    ++iovaUnlinks_;
  }
  return Errno::Ok;
}

void DmaMapping::dmaIovaFree(const Device& dev, DmaIovaState& state) {
  if (!state.allocated()) return;
  HMMSIM_ASSERT(state.linked == 0, "dma_iova_free of "
                                       << dev.name() << " with " << state.linked
                                       << " pages still linked (dma_iova_destroy unlinks first)");
  Cookie* c = cookieOf(dev);
  HMMSIM_ASSERT(c && state.dev == &dev, "dma_iova_free of " << dev.name() << ": not its range");
  const Errno f = c->dc->iovad->freeIova(state.addr.value() >> kPageShift);
  HMMSIM_ASSERT(f == Errno::Ok, "dma_iova_free: the range's IOVA vanished");
  state = DmaIovaState{};
}

}  // namespace hmmsim
