#include "models/pcie/enumeration.h"

#include <algorithm>
#include <sstream>

#include "sim/assert.h"
#include "sim/units.h"

namespace hmmsim {

namespace {

// ---- bus numbers -------------------------------------------------------------------------

// Depth-first like pci_scan_child_bus(): functions of a bus get their Bdf, then each bridge in
// devfn order takes the next free number for its secondary bus and recurses.
bool scanBus(PciBus& bus, std::uint16_t domain, unsigned& max, std::string& error);

}  // namespace

// Enumerator is a friend of PciDev/PciBus; these helpers live in a struct with access.
struct EnumAccess {
  static void setBdf(PciDev& d, const Bdf& b) { d.bdf_ = b; }
  static void setBusNumbers(PciDev& d, std::uint8_t pri, std::uint8_t sec, std::uint8_t sub) {
    d.primaryBus_ = pri;
    d.secondaryBus_ = sec;
    d.subordinateBus_ = sub;
  }
  static void setBusNumber(PciBus& b, std::uint8_t n) { b.number_ = n; }
  static BridgeWindow& window(PciDev& d, bool pref) { return pref ? d.prefWindow_ : d.memWindow_; }
};

namespace {

bool scanBus(PciBus& bus, std::uint16_t domain, unsigned& max, std::string& error) {
  for (PciDev* d : bus.devices()) {
    EnumAccess::setBdf(*d, Bdf{domain, bus.number(), d->devNo(), d->fn()});
  }
  for (PciDev* d : bus.devices()) {
    PciBus* sub = d->subordinate();
    if (!sub) continue;
    if (max >= 255) {
      std::ostringstream os;
      os << "no bus number left for the bus behind " << d->name() << " (domain " << domain << ")";
      error = os.str();
      return false;
    }
    const unsigned secondary = ++max;
    EnumAccess::setBusNumber(*sub, static_cast<std::uint8_t>(secondary));
    if (!scanBus(*sub, domain, max, error)) return false;
    EnumAccess::setBusNumbers(*d, bus.number(), static_cast<std::uint8_t>(secondary),
                              static_cast<std::uint8_t>(max));
  }
  return true;
}

// ---- memory resources --------------------------------------------------------------------

// One thing to place inside a window: a BAR, or a bridge's window of one class.
struct Item {
  PciDev* dev = nullptr;
  int bar = -1;  // >= 0: a BAR; -1: dev's bridge window of the item's class
  std::uint64_t size = 0;
  std::uint64_t align = 0;
  std::size_t order = 0;  // creation order tie-break (determinism)
  int cls = 0;            // 0 = non-prefetchable, 1 = prefetchable
};

// Per bridge and class (0 = non-prefetchable, 1 = prefetchable), the sorted children.
struct Sizing {
  std::vector<std::vector<Item>> children[2];  // indexed by PciDevId
};

bool isPrefClass(const PciBar& b) {
  return b.is64 && b.prefetchable;
}

void sortItems(std::vector<Item>& items) {
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.align != b.align) return a.align > b.align;
    if (a.size != b.size) return a.size > b.size;
    return a.order < b.order;
  });
}

// Bytes needed to pack `items` (sorted) from an address aligned to items.front().align.
std::uint64_t packedSize(const std::vector<Item>& items) {
  std::uint64_t off = 0;
  for (const Item& it : items) off = ((off + it.align - 1) & ~(it.align - 1)) + it.size;
  return off;
}

// Collects the items of `bus` for both classes; sizes bridge windows bottom-up.
void sizeBus(const PciBus& bus, Sizing& s, std::vector<Item> out[2]) {
  for (PciDev* d : bus.devices()) {
    for (int i = 0; i < kPciNumBars; ++i) {
      const PciBar& b = d->bar(i);
      if (!b.isMem()) continue;
      const int cls = isPrefClass(b) ? 1 : 0;
      out[cls].push_back(Item{d, i, b.size, b.size, d->id().value() * 8 + std::size_t(i), cls});
    }
    if (const PciBus* sub = d->subordinate()) {
      std::vector<Item> inner[2];
      sizeBus(*sub, s, inner);
      for (int c = 0; c < 2; ++c) {
        sortItems(inner[c]);
        if (inner[c].empty()) {
          s.children[c][d->id().value()].clear();
          continue;
        }
        std::uint64_t align = std::max(kBridgeWindowAlign, inner[c].front().align);
        std::uint64_t size = (packedSize(inner[c]) + kBridgeWindowAlign - 1) & ~(kBridgeWindowAlign - 1);
        s.children[c][d->id().value()] = inner[c];
        out[c].push_back(Item{d, -1, size, align, d->id().value() * 8 + 7, c});
      }
    }
  }
}

// The largest BAR inside an item (the one to name when the item does not fit).
Item largestBar(const Item& it, const Sizing& s) {
  if (it.bar >= 0) return it;
  Item best;
  for (const Item& c : s.children[it.cls][it.dev->id().value()]) {
    Item b = largestBar(c, s);
    if (!best.dev || b.size > best.size) best = b;
  }
  return best;
}

std::string describeBar(const PciDev& d, int bar) {
  const PciBar& b = d.bar(bar);
  std::ostringstream os;
  os << "BAR " << bar << " of " << d.name() << " (" << formatBytes(b.size) << ", "
     << (b.is64 ? "64-bit" : "32-bit") << (b.prefetchable ? " prefetchable" : " non-prefetchable") << ")";
  return os.str();
}

// Places sorted `items` from `base` within [base, limit); assigns BARs and windows recursively.
// Returns the first item that does not fit, or nullptr.
const Item* place(const std::vector<Item>& items, BusAddr base, BusAddr limit, const HostWindow& hw,
                  const Sizing& s) {
  BusAddr cur = base;
  for (const Item& it : items) {
    BusAddr at = cur.alignUp(it.align);
    if (at < cur || at > limit || limit - at < it.size) return &it;
    cur = at + it.size;
    if (it.bar >= 0) {
      PciBar& b = it.dev->bar(it.bar);
      b.assigned = true;
      b.bus = at;
      b.cpu = hw.toCpu(at);
    } else {
      BridgeWindow& w = EnumAccess::window(*it.dev, it.cls == 1);
      w.enabled = true;
      w.base = at;
      w.size = it.size;
      const Item* bad = place(s.children[it.cls][it.dev->id().value()], at, at + it.size, hw, s);
      HMMSIM_ASSERT(bad == nullptr, "bridge window of " << it.dev->name() << " was sized too small");
    }
  }
  return nullptr;
}

}  // namespace

std::optional<std::string> Enumerator::assignBusNumbers() {
  struct Range {
    std::uint16_t domain;
    unsigned first, last;
    const PciHostBridge* hb;
  };
  std::vector<Range> ranges;
  for (const PciHostBridge& hbc : topo_.hostBridges()) {
    auto& hb = const_cast<PciHostBridge&>(hbc);
    unsigned max = hb.rootBus().number();
    std::string error;
    if (!scanBus(hb.rootBus(), hb.domain(), max, error)) return error;
    for (const Range& r : ranges) {
      if (r.domain == hb.domain() && r.first <= max && hb.rootBus().number() <= r.last) {
        std::ostringstream os;
        os << "host bridges " << r.hb->name() << " and " << hb.name()
           << " use overlapping bus numbers in domain " << hb.domain() << " (" << r.first << ".." << r.last
           << " and " << unsigned(hb.rootBus().number()) << ".." << max << ")";
        return os.str();
      }
    }
    ranges.push_back(Range{hb.domain(), hb.rootBus().number(), max, &hb});
  }
  return std::nullopt;
}

void Enumerator::releaseAll() {
  for (auto& d : topo_.functions()) {
    for (int i = 0; i < kPciNumBars; ++i) {
      PciBar& b = d->bar(i);
      b.assigned = false;
      b.bus = BusAddr(0);
      b.cpu = Pa(0);
    }
    EnumAccess::window(*d, false) = BridgeWindow{};
    EnumAccess::window(*d, true) = BridgeWindow{};
  }
}

std::optional<EnumError> Enumerator::assignResources() {
  releaseAll();
  Sizing s;
  for (int c = 0; c < 2; ++c) s.children[c].resize(topo_.functions().size());
  for (const PciHostBridge& hb : topo_.hostBridges()) {
    std::vector<Item> items[2];
    sizeBus(hb.rootBus(), s, items);
    // Without a prefetchable aperture, prefetchable resources share the non-prefetchable one.
    const bool hasPref = hb.pref().size != 0;
    if (!hasPref) {
      items[0].insert(items[0].end(), items[1].begin(), items[1].end());
      items[1].clear();
    }
    for (int c = 0; c < 2; ++c) {
      if (items[c].empty()) continue;
      sortItems(items[c]);
      const HostWindow& hw = c == 1 ? hb.pref() : hb.mem();
      const Item* bad = nullptr;
      if (hw.size == 0) {
        bad = &items[c].front();
      } else {
        bad = place(items[c], hw.busBase, hw.busBase + hw.size, hw, s);
      }
      if (bad) {
        // With a merged class (no pref aperture) a window item may hold either class; look in both.
        Item bar = largestBar(*bad, s);
        HMMSIM_ASSERT(bar.dev, "a window without BARs was sized");
        std::uint64_t need = packedSize(items[c]);
        std::ostringstream os;
        os << describeBar(*bar.dev, bar.bar) << " does not fit: host bridge " << hb.name() << " "
           << (c == 1 ? "prefetchable" : "non-prefetchable") << " window is " << formatBytes(hw.size)
           << " and the resources behind it need " << formatBytes(need);
        if (bad->bar < 0) os << " (" << formatBytes(bad->size) << " behind " << bad->dev->name() << ")";
        releaseAll();
        return EnumError{bar.dev->name(), bar.bar, os.str()};
      }
    }
  }
  return std::nullopt;
}

std::optional<EnumError> Enumerator::enumerate() {
  if (auto e = assignBusNumbers()) return EnumError{"", -1, *e};
  return assignResources();
}

}  // namespace hmmsim
