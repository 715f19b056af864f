// P2pChecker. See p2p_checker.h.
#include "hmm/p2p_checker.h"

#include <sstream>

namespace hmmsim {

P2pChecker::P2pChecker(InvariantChecker& sink, std::function<std::uint64_t()> nowPs)
    : sink_(sink), nowPs_(std::move(nowPs)) {}

void P2pChecker::registerImporter(const Device& importer, Va start, std::uint64_t pages) {
  Window& w = windows_[&importer];
  w.start = start;
  w.pages = pages;
  w.lastInval.assign(pages, 0);
  w.live.assign(pages, 0);
}

P2pChecker::Window* P2pChecker::windowOf(const Device& d, Va va, std::uint64_t* page) {
  // Every DMA page asks, mostly for the importer that asked last: remember its window (map
  // nodes never move, and windows are never erased).
  if (&d != lastDevice_) {
    auto it = windows_.find(&d);
    if (it == windows_.end()) return nullptr;
    lastDevice_ = &d;
    lastWindow_ = &it->second;
  }
  Window& w = *lastWindow_;
  if (va < w.start) return nullptr;
  const std::uint64_t p = (va - w.start) >> kPageShift;
  if (p >= w.pages) return nullptr;
  *page = p;
  return &w;
}

std::string P2pChecker::describe(const Record& r) const {
  std::ostringstream os;
  os << mmuNotifierEventName(r.event) << " invalidation of [" << r.start << ", " << r.end << ") returned at "
     << r.timePs << "ps (epoch " << r.epoch << ")";
  return os.str();
}

void P2pChecker::report(CheckRule rule, const Device& d, std::uint64_t addr, std::string cause) {
  Violation v;
  v.rule = rule;
  v.timePs = now();
  v.device = d.name();
  v.address = addr;
  v.cause = std::move(cause);
  ++reports_;
  sink_.report(std::move(v));
}

void P2pChecker::invalidationReturned(const Device& importer, Va start, Va end, MmuNotifierEvent event) {
  auto it = windows_.find(&importer);
  Record r;
  r.epoch = ++epoch_;
  r.timePs = now();
  r.event = event;
  r.start = start;
  r.end = end;
  records_.push_back(r);
  if (it == windows_.end()) return;
  Window& w = it->second;
  const Va ws = std::max(start, w.start);
  const Va we = std::min(end, w.start + (w.pages << kPageShift));
  const auto idx = static_cast<std::uint32_t>(records_.size());
  for (Va a = ws; a < we; a += kPageSize) {
    const std::uint64_t p = (a - w.start) >> kPageShift;
    if (w.live[p]) {
      report(CheckRule::StaleTranslation, importer, a.value(),
             "DMA/p2p mapping still held after " + describe(r) + " (the importer must p2p_unmap)");
      w.live[p] = 0;  // one report per page and event
    }
    w.lastInval[p] = idx;
  }
}

void P2pChecker::mappingLive(const Device& importer, Va page, bool live) {
  std::uint64_t p = 0;
  if (Window* w = windowOf(importer, page, &p)) w->live[p] = live ? 1 : 0;
}

void P2pChecker::deviceAccess(const Device& importer, Va va, std::uint64_t translationEpoch) {
  std::uint64_t p = 0;
  Window* w = windowOf(importer, va, &p);
  if (!w || w->lastInval[p] == 0) return;
  const Record& r = records_[w->lastInval[p] - 1];
  if (r.epoch > translationEpoch)
    report(CheckRule::StaleTranslation, importer, va.value(), "translation used after " + describe(r));
}

void P2pChecker::frameAccess(const Device& importer, Va va, Pfn pfn, std::uint64_t mappedGen,
                             std::uint64_t nowGen) {
  if (mappedGen == nowGen) return;
  std::ostringstream os;
  os << "frame " << pfn << " was freed or migrated away after it was mapped (generation " << mappedGen
     << " -> " << nowGen << ")";
  report(CheckRule::FreedFrame, importer, va.value(), os.str());
}

void P2pChecker::peerAccess(const Device& importer, BusAddr addr, const std::string& exporter) {
  if (!barQuery_ || barQuery_(addr)) return;
  report(CheckRule::OutsideBarWindow, importer, addr.value(),
         "bus address outside every live BAR window of " + exporter);
}

void P2pChecker::registerBar(const P2pBarManager& bar, const std::string& exporter) {
  unregisterBar(bar);
  bars_.emplace_back(&bar, exporter);
}

void P2pChecker::unregisterBar(const P2pBarManager& bar) {
  for (auto it = bars_.begin(); it != bars_.end(); ++it)
    if (it->first == &bar) {
      bars_.erase(it);
      return;
    }
}

bool P2pChecker::barAccess(const Device& importer, BusAddr addr, std::uint64_t len, const DevPage* expected) {
  for (const auto& [bar, name] : bars_) {
    const P2pBarParams& p = bar->params();
    if (addr < p.barBus || addr.value() - p.barBus.value() >= p.apertureBytes) continue;
    ++barChecks_;
    const BarAccessCheck c = bar->checkAccess(addr, len, expected);
    if (!c.legal) {
      std::ostringstream os;
      os << "peer access of " << len << " bytes at bus address 0x" << std::hex << addr.value() << std::dec
         << " of " << name << ": " << c.describe();
      report(CheckRule::OutsideBarWindow, importer, addr.value(), os.str());
    }
    return true;
  }
  return false;
}

void P2pChecker::dataMismatch(const Device& importer, Va va, const std::string& what) {
  report(CheckRule::DataIntegrity, importer, va.value(), what);
}

void P2pChecker::unsupportedRequest(const Device& importer, std::uint64_t addr, const std::string& why) {
  report(CheckRule::UnsupportedRequest, importer, addr, why);
}

}  // namespace hmmsim
