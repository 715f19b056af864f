#pragma once
// Strong types for every address space and index in hmmsim.
//
// A virtual address, a physical address, an I/O virtual address and a PCI bus address are all
// 64-bit numbers in the kernel; here each is its own type so that mixing them does not compile:
// `Va v; Pa p = v;` is an error, and so is `va == iova`. Arithmetic that keeps the meaning
// (address + byte offset, address - address = byte distance) is provided; anything else goes
// through value() on purpose, where the reader can see it.

#include <cstdint>
#include <functional>
#include <ostream>

namespace hmmsim {

/// An address in one address space; Tag names the space.
template <class Tag>
class Addr {
 public:
  constexpr Addr() = default;
  constexpr explicit Addr(std::uint64_t v) : v_(v) {}
  constexpr std::uint64_t value() const { return v_; }

  constexpr Addr operator+(std::uint64_t off) const { return Addr(v_ + off); }
  constexpr Addr operator-(std::uint64_t off) const { return Addr(v_ - off); }
  constexpr Addr& operator+=(std::uint64_t off) {
    v_ += off;
    return *this;
  }
  constexpr Addr& operator-=(std::uint64_t off) {
    v_ -= off;
    return *this;
  }
  /// Byte distance between two addresses of the same space.
  constexpr std::uint64_t operator-(Addr o) const { return v_ - o.v_; }

  constexpr bool operator==(Addr o) const { return v_ == o.v_; }
  constexpr bool operator!=(Addr o) const { return v_ != o.v_; }
  constexpr bool operator<(Addr o) const { return v_ < o.v_; }
  constexpr bool operator<=(Addr o) const { return v_ <= o.v_; }
  constexpr bool operator>(Addr o) const { return v_ > o.v_; }
  constexpr bool operator>=(Addr o) const { return v_ >= o.v_; }

  /// `align` must be a power of two.
  constexpr Addr alignDown(std::uint64_t align) const { return Addr(v_ & ~(align - 1)); }
  constexpr Addr alignUp(std::uint64_t align) const { return Addr((v_ + align - 1) & ~(align - 1)); }
  constexpr bool isAligned(std::uint64_t align) const { return (v_ & (align - 1)) == 0; }

 private:
  std::uint64_t v_ = 0;
};

template <class Tag>
std::ostream& operator<<(std::ostream& os, Addr<Tag> a) {
  auto flags = os.flags();
  os << "0x" << std::hex << a.value();
  os.flags(flags);
  return os;
}

/// A dense index (page frame number, slot number, ...); Tag names what it indexes.
template <class Tag>
class Index {
 public:
  constexpr Index() = default;
  constexpr explicit Index(std::uint64_t v) : v_(v) {}
  constexpr std::uint64_t value() const { return v_; }

  constexpr Index operator+(std::uint64_t n) const { return Index(v_ + n); }
  constexpr Index operator-(std::uint64_t n) const { return Index(v_ - n); }
  constexpr std::uint64_t operator-(Index o) const { return v_ - o.v_; }
  constexpr Index& operator++() {
    ++v_;
    return *this;
  }

  constexpr bool operator==(Index o) const { return v_ == o.v_; }
  constexpr bool operator!=(Index o) const { return v_ != o.v_; }
  constexpr bool operator<(Index o) const { return v_ < o.v_; }
  constexpr bool operator<=(Index o) const { return v_ <= o.v_; }
  constexpr bool operator>(Index o) const { return v_ > o.v_; }
  constexpr bool operator>=(Index o) const { return v_ >= o.v_; }

 private:
  std::uint64_t v_ = 0;
};

template <class Tag>
std::ostream& operator<<(std::ostream& os, Index<Tag> i) {
  auto flags = os.flags();
  os << "0x" << std::hex << i.value();
  os.flags(flags);
  return os;
}

/// CPU virtual address (one per mm).
using Va = Addr<struct VaTag>;
/// CPU physical address (system RAM, device memory windows, BAR apertures as the CPU sees them).
using Pa = Addr<struct PaTag>;
/// I/O virtual address: what a device puts on the bus when an IOMMU translates for it.
using Iova = Addr<struct IovaTag>;
/// PCI bus address: what a device puts on the bus without translation (BAR windows).
using BusAddr = Addr<struct BusAddrTag>;
/// DMA address as returned by the DMA API: an IOVA, a bus address or a physical address,
/// depending on the path; the kernel's dma_addr_t.
using DmaAddr = Addr<struct DmaAddrTag>;

/// Page frame number: physical address >> PAGE_SHIFT.
using Pfn = Index<struct PfnTag>;

inline constexpr unsigned kPageShift = 12;
inline constexpr std::uint64_t kPageSize = 1ull << kPageShift;
inline constexpr unsigned kPmdShift = 21;
inline constexpr std::uint64_t kPmdSize = 1ull << kPmdShift;
inline constexpr unsigned kPudShift = 30;
inline constexpr std::uint64_t kPudSize = 1ull << kPudShift;
inline constexpr std::uint64_t kPagesPerPmd = kPmdSize / kPageSize;

constexpr Pfn pfnOf(Pa pa) {
  return Pfn(pa.value() >> kPageShift);
}
constexpr Pa paOf(Pfn pfn) {
  return Pa(pfn.value() << kPageShift);
}

/// PCI requester id: segment (domain), bus, device, function.
struct Bdf {
  std::uint16_t domain = 0;
  std::uint8_t bus = 0;
  std::uint8_t dev = 0;  ///< 0..31
  std::uint8_t fn = 0;   ///< 0..7

  /// The 16-bit requester id as it appears in a TLP (bus:dev.fn).
  constexpr std::uint16_t rid() const {
    return static_cast<std::uint16_t>((bus << 8) | ((dev & 0x1f) << 3) | (fn & 0x7));
  }
  /// Key used by the kernel's p2pdma map-type cache: (domain << 16) | pci_dev_id.
  constexpr std::uint32_t key() const { return (std::uint32_t(domain) << 16) | rid(); }
  constexpr bool operator==(const Bdf& o) const { return key() == o.key(); }
  constexpr bool operator!=(const Bdf& o) const { return !(*this == o); }
  constexpr bool operator<(const Bdf& o) const { return key() < o.key(); }
};

std::ostream& operator<<(std::ostream& os, const Bdf& b);

}  // namespace hmmsim

template <class Tag>
struct std::hash<hmmsim::Addr<Tag>> {
  std::size_t operator()(hmmsim::Addr<Tag> a) const noexcept { return std::hash<std::uint64_t>()(a.value()); }
};
template <class Tag>
struct std::hash<hmmsim::Index<Tag>> {
  std::size_t operator()(hmmsim::Index<Tag> i) const noexcept {
    return std::hash<std::uint64_t>()(i.value());
  }
};
template <>
struct std::hash<hmmsim::Bdf> {
  std::size_t operator()(const hmmsim::Bdf& b) const noexcept { return std::hash<std::uint32_t>()(b.key()); }
};
