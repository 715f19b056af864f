#pragma once
// Shared by the P2pBarManager tests: a model of the exporter's importers that obey revocation
// (every revoke gives back exactly the held pages in the range, the way an importer's p2pUnmap on
// invalidation does), with a switch per importer to pin instead (ignore the invalidation).

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "sim/device.h"

namespace hmmsim::test {

struct RevokeCall {
  std::uint64_t first, npages;
  BarEvent why;
};

/// Small BAR: `windows` windows of 2 MiB (512 pages), `chunks` chunks of device memory.
inline P2pBarParams smallBar(std::uint64_t windows, std::uint64_t chunks,
                             BarPolicy policy = BarPolicy::LruReclaim) {
  P2pBarParams p;
  p.windowBytes = 2ull << 20;
  p.apertureBytes = windows * p.windowBytes;
  p.deviceMemBytes = chunks * p.windowBytes;
  p.policy = policy;
  p.barPa = Pa(0x80'0000'0000ull);
  p.barBus = BusAddr(0x10'0000'0000ull);  // a bus offset, as behind a host bridge that translates
  return p;
}

inline constexpr std::uint64_t kWinPages = 512;

/// Importers of one exporter, tracked page by page: holds[(dev, page)] = {count, address}.
class ModelImporters : public BarRevokeHook {
 public:
  struct Hold {
    std::uint32_t count = 0;
    Pa addr;
  };

  explicit ModelImporters(const P2pBarParams& p) : bar(p, this, "test.bar") {}

  BarMapResult map(const Device& d, std::uint64_t first, std::uint64_t n,
                   BarMapMode mode = BarMapMode::AllOrNothing) {
    std::vector<Pa> out(n);
    BarMapResult r = bar.map(d, DevPage(first), n, out.data(), mode);
    for (std::uint64_t i = 0; i < r.pages; ++i) {
      Hold& h = holds[{&d, first + i}];
      if (h.count) REQUIRE(h.addr == out[i]);  // a held page keeps its address
      ++h.count;
      h.addr = out[i];
    }
    last = out;
    return r;
  }
  BarUnmapStatus unmap(const Device& d, std::uint64_t first, std::uint64_t n) {
    BarUnmapStatus s = bar.unmap(d, DevPage(first), n);
    for (std::uint64_t p = first; p < first + n; ++p) drop(d, p);
    return s;
  }
  void revoke(DevPage first, std::uint64_t npages, BarEvent why) override {
    calls.push_back({first.value(), npages, why});
    for (std::uint64_t p = first.value(); p < first.value() + npages; ++p) {
      for (auto it = holds.lower_bound({nullptr, 0}); it != holds.end();) {
        auto cur = it++;
        if (cur->first.second != p || pinning.count(cur->first.first)) continue;
        const Device* d = cur->first.first;
        const std::uint32_t c = cur->second.count;
        for (std::uint32_t k = 0; k < c; ++k) CHECK(bar.unmap(*d, DevPage(p), 1) == BarUnmapStatus::Unmapped);
        holds.erase(cur);
        ++revokedPagesSeen;
      }
    }
  }
  /// Every page an importer still holds is reachable at the address it got (checker rule 3 with
  /// the expected page): what "no window reused before its importers were revoked" means.
  void requireHoldsLive() const {
    for (const auto& [key, h] : holds) {
      const DevPage page(key.second);
      const BarAccessCheck c = bar.checkAccess(h.addr, kPageSize, &page);
      INFO(key.first->name() << " page " << key.second << ": " << c.describe());
      REQUIRE(c.legal);
    }
  }
  std::uint64_t heldBy(const Device& d) const {
    std::uint64_t n = 0;
    for (const auto& [key, h] : holds)
      if (key.first == &d) n += h.count;
    return n;
  }
  std::uint64_t heldTotal() const {
    std::uint64_t n = 0;
    for (const auto& [key, h] : holds) n += h.count;
    return n;
  }

  P2pBarManager bar;
  std::map<std::pair<const Device*, std::uint64_t>, Hold> holds;
  std::set<const Device*> pinning;  ///< importers that ignore revocation
  std::vector<RevokeCall> calls;
  std::vector<Pa> last;  ///< addresses of the last map
  std::uint64_t revokedPagesSeen = 0;

 private:
  void drop(const Device& d, std::uint64_t p) {
    auto it = holds.find({&d, p});
    if (it == holds.end()) return;
    if (--it->second.count == 0) holds.erase(it);
  }
};

}  // namespace hmmsim::test
