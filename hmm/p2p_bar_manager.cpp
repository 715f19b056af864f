#include "hmm/p2p_bar_manager.h"

#include <algorithm>
#include <sstream>

#include "sim/assert.h"
#include "sim/device.h"

namespace hmmsim {

const char* barPolicyName(BarPolicy p) {
  switch (p) {
    case BarPolicy::LruReclaim:
      return "lru_reclaim";
    case BarPolicy::Unlimited:
      return "unlimited";
    case BarPolicy::PerImporterCap:
      return "per_importer_cap";
    case BarPolicy::RefuseWhenBusy:
      return "refuse_when_busy";
    case BarPolicy::AlwaysRefuse:
      return "always_refuse";
  }
  return "?";
}

const char* barEventName(BarEvent e) {
  switch (e) {
    case BarEvent::None:
      return "none";
    case BarEvent::Reclaimed:
      return "reclaimed";
    case BarEvent::Moved:
      return "moved";
    case BarEvent::Revoked:
      return "revoked";
    case BarEvent::Reset:
      return "reset";
    case BarEvent::Unplugged:
      return "unplugged";
    case BarEvent::Forced:
      return "forced";
  }
  return "?";
}

const char* barMapStatusName(BarMapStatus s) {
  switch (s) {
    case BarMapStatus::Mapped:
      return "mapped";
    case BarMapStatus::Refused:
      return "refused";
    case BarMapStatus::OverCap:
      return "over_cap";
    case BarMapStatus::NoWindow:
      return "no_window";
    case BarMapStatus::Racing:
      return "racing";
    case BarMapStatus::Resetting:
      return "resetting";
    case BarMapStatus::Gone:
      return "gone";
    case BarMapStatus::OutOfRange:
      return "out_of_range";
  }
  return "?";
}

Errno barMapErrno(BarMapStatus s) {
  switch (s) {
    case BarMapStatus::Mapped:
      return Errno::Ok;
    case BarMapStatus::Refused:
      return Errno::OpNotSupp;
    case BarMapStatus::OverCap:
      return Errno::NoSpc;
    case BarMapStatus::NoWindow:
      return Errno::NoSpc;
    case BarMapStatus::Racing:
      return Errno::Busy;
    case BarMapStatus::Resetting:
      return Errno::Io;
    case BarMapStatus::Gone:
      return Errno::NoDev;
    case BarMapStatus::OutOfRange:
      return Errno::Inval;
  }
  return Errno::Inval;
}

const char* barUnmapStatusName(BarUnmapStatus s) {
  switch (s) {
    case BarUnmapStatus::Unmapped:
      return "unmapped";
    case BarUnmapStatus::NotMapped:
      return "not_mapped";
    case BarUnmapStatus::OutOfRange:
      return "out_of_range";
  }
  return "?";
}

std::string BarAccessCheck::describe() const {
  std::ostringstream os;
  if (!inAperture) {
    os << "outside the BAR aperture";
    return os.str();
  }
  os << "window " << window.value();
  if (crossesWindow) {
    os << ": access runs past the end of the window";
    return os.str();
  }
  if (legal) {
    os << " live, maps page " << page;
    return os.str();
  }
  if (wrongPage) os << " maps page " << page << ", not " << expectedPage;
  if (cause == BarEvent::None) {
    os << (wrongPage ? "" : " never mapped");
  } else {
    os << (wrongPage ? " since it was " : " ") << barEventName(cause) << " at " << causeTimePs
       << "ps (bar event #" << causeSeq << ")";
  }
  return os.str();
}

std::string P2pBarParams::check() const {
  std::ostringstream os;
  if (windowBytes < kPageSize || (windowBytes & (windowBytes - 1)) != 0) {
    os << "p2p_bar.window_bytes: " << windowBytes << " is not a power of two of at least 4096; use e.g. 2MiB";
  } else if (apertureBytes == 0 || apertureBytes % windowBytes != 0) {
    os << "p2p_bar.aperture_bytes: " << apertureBytes << " is not a positive multiple of window_bytes ("
       << windowBytes << ")";
  } else if (apertureBytes / windowBytes > 0xffffffffull) {
    os << "p2p_bar.aperture_bytes: " << apertureBytes
       << " makes more than 2^32 windows; use larger window_bytes";
  } else if (deviceMemBytes == 0) {
    os << "p2p_bar.device_mem_bytes: must be positive";
  } else if (!barPa.isAligned(windowBytes)) {
    os << "p2p_bar.bar_pa: " << barPa << " is not aligned to window_bytes (" << windowBytes << ")";
  } else if (!barBus.isAligned(windowBytes)) {
    os << "p2p_bar.bar_bus: " << barBus << " is not aligned to window_bytes (" << windowBytes << ")";
  } else if (policy == BarPolicy::Unlimited && apertureBytes < deviceMemBytes) {
    os << "p2p_bar.policy: unlimited needs aperture_bytes (" << apertureBytes << ") >= device_mem_bytes ("
       << deviceMemBytes << "); choose lru_reclaim or a larger aperture";
  } else if (policy == BarPolicy::PerImporterCap && importerCapPages == 0) {
    os << "p2p_bar.importer_cap_pages: must be positive with policy per_importer_cap";
  }
  return os.str();
}

P2pBarManager::P2pBarManager(const P2pBarParams& params, BarRevokeHook* hook, const std::string& statsName)
    : params_(params),
      hook_(hook),
      stats_(statsName),
      mapCalls_(stats_.counter("map_calls", "calls", "p2pMap requests")),
      mapPages_(stats_.counter("map_pages", "pages", "pages mapped into a BAR window")),
      mapHits_(stats_.counter("map_hits", "pages", "pages whose window was already resident")),
      windowFills_(stats_.counter("window_fills", "windows", "windows pointed at a chunk on demand")),
      refused_(stats_.counter("refused", "calls", "map requests not fully satisfied (all reasons)")),
      refusedPolicy_(stats_.counter("refused_policy", "calls", "maps declined by the always_refuse policy")),
      refusedOverCap_(stats_.counter("refused_over_cap", "calls", "maps refused by the per-importer cap")),
      refusedNoWindow_(stats_.counter("refused_no_window", "calls", "maps refused: no window could be had")),
      refusedRacing_(
          stats_.counter("refused_racing", "calls", "maps hitting a window being revoked (EBUSY)")),
      refusedResetting_(stats_.counter("refused_resetting", "calls", "maps during a device reset (EIO)")),
      refusedGone_(stats_.counter("refused_gone", "calls", "maps after hot-unplug (ENODEV)")),
      unmapCalls_(stats_.counter("unmap_calls", "calls", "p2pUnmap requests")),
      unmapPages_(stats_.counter("unmap_pages", "pages", "pages given back")),
      unmapUnbalanced_(
          stats_.counter("unmap_unbalanced", "pages", "pages unmapped that the importer did not hold")),
      reclaims_(stats_.counter("reclaims", "windows", "windows re-pointed at another chunk by the policy")),
      reclaimsIdle_(
          stats_.counter("reclaims_idle", "windows", "reclaims of idle windows (no revoke needed)")),
      reclaimSkippedPinned_(stats_.counter("reclaim_skipped_pinned", "windows",
                                           "reclaim candidates still held after their revoke (skipped)")),
      revokeHookCalls_(stats_.counter("revoke_hook_calls", "calls", "revoke hook calls (one per held run)")),
      revokedPages_(stats_.counter("revoked_pages", "pages", "held pages the revoke hook was called for")),
      pinnedPages_(stats_.counter("pinned_pages", "pages", "pages still held after their revoke returned")),
      revokeRangeCalls_(stats_.counter("revoke_range_calls", "calls", "exporter-initiated range revokes")),
      windowMoves_(stats_.counter("window_moves", "windows", "windows moved (moveWindow, defragment)")),
      resets_(stats_.counter("resets", "events", "device resets")),
      unplugs_(stats_.counter("unplugs", "events", "hot-unplugs")),
      forcedReusePages_(stats_.counter("forced_reuse_pages", "pages",
                                       "held pages dropped without revoke (misbehaviour, or pins at reset)")),
      barEvents_(stats_.counter("bar_events", "events", "window re-points and teardowns")),
      windowsResident_(stats_.scalar("windows_resident", "windows", "windows mapping a chunk")),
      windowsBusy_(stats_.scalar("windows_busy", "windows", "windows with pages held by importers")),
      heldPagesScalar_(stats_.scalar("held_pages", "pages", "pages held by importers")) {
  const std::string err = params_.check();
  HMMSIM_ASSERT(err.empty(), "P2pBarManager " << statsName << ": " << err);
  nWindows_ = params_.apertureBytes / params_.windowBytes;
  windowPages_ = params_.windowBytes >> kPageShift;
  nChunks_ = (params_.deviceMemBytes + params_.windowBytes - 1) / params_.windowBytes;
  windows_.resize(nWindows_);
  chunkWindow_.assign(nChunks_, kNoWindow);
  pageHeld_.assign(nWindows_ * windowPages_, 0);
  for (Window& w : windows_) freeList_.push_back(w);
  if (params_.policy == BarPolicy::Unlimited) resetEnd();  // identity windows
  refreshScalars();
}

P2pBarManager::~P2pBarManager() {
  freeList_.clear();
  idleLru_.clear();
  busyLru_.clear();
}

// ---- importer slots ------------------------------------------------------------------------

P2pBarManager::ImporterSlot& P2pBarManager::slotFor(const Device& importer) {
  for (auto& s : importers_)
    if (s->dev == &importer) return *s;
  auto s = std::make_unique<ImporterSlot>();
  s->dev = &importer;
  s->counts.assign(nWindows_ * windowPages_, 0);
  importers_.push_back(std::move(s));
  return *importers_.back();
}

const P2pBarManager::ImporterSlot* P2pBarManager::findSlot(const Device& importer) const {
  for (const auto& s : importers_)
    if (s->dev == &importer) return s.get();
  return nullptr;
}

std::uint64_t P2pBarManager::heldPages(const Device& importer) const {
  const ImporterSlot* s = findSlot(importer);
  return s ? s->held : 0;
}

bool P2pBarManager::windowOf(DevPage page, BarWindowIdx* out) const {
  const std::uint64_t chunk = page.value() / windowPages_;
  if (chunk >= nChunks_ || chunkWindow_[chunk] == kNoWindow) return false;
  if (out) *out = BarWindowIdx(chunkWindow_[chunk]);
  return true;
}

// ---- window bookkeeping ----------------------------------------------------------------------

void P2pBarManager::detach(Window& w) {
  switch (w.state) {
    case WinState::Free:
      freeList_.erase(freeList_.iterator_to(w));
      break;
    case WinState::Idle:
      idleLru_.erase(idleLru_.iterator_to(w));
      break;
    case WinState::Busy:
      busyLru_.erase(busyLru_.iterator_to(w));
      break;
    case WinState::Revoking:
      break;
  }
}

// Puts a resident window at the most-recently-used end of the list its hold count calls for.
void P2pBarManager::listFor(Window& w) {
  if (w.held > 0) {
    w.state = WinState::Busy;
    busyLru_.push_back(w);
  } else {
    w.state = WinState::Idle;
    idleLru_.push_back(w);
  }
}

void P2pBarManager::pointAt(Window& w, std::uint64_t chunk) {
  w.chunk = chunk;
  chunkWindow_[chunk] = static_cast<std::uint32_t>(idxOf(w));
  if (windowObserver_) windowObserver_(BarWindowIdx(idxOf(w)), chunk);
  if (tracing())
    trace_->instant(TraceCategory::HmmP2p, traceTrack_, "window " + std::to_string(idxOf(w)) + " programmed",
                    nowPs(), "maps device chunk " + std::to_string(chunk));
}

void P2pBarManager::traceSince(const std::string& what, std::uint64_t startPs, const std::string& args) {
  const std::uint64_t end = nowPs();
  trace_->slice(TraceCategory::HmmP2p, traceTrack_, what, startPs, end > startPs ? end - startPs : 0, args);
}

bool P2pBarManager::chunkOfWindow(BarWindowIdx w, std::uint64_t* chunk) const {
  if (w.value() >= nWindows_ || windows_[w.value()].state == WinState::Free) return false;
  *chunk = windows_[w.value()].chunk;
  return true;
}

void P2pBarManager::noteEvent(Window& w, BarEvent why) {
  ++eventSeq_;
  ++barEvents_;
  w.lastEvent = why;
  w.lastEventSeq = eventSeq_;
  w.lastEventTimePs = nowPs_ ? nowPs_() : 0;
}

// A detached (or Idle/Busy: it is detached here) resident window with nothing held becomes free.
void P2pBarManager::makeFree(Window& w, BarEvent why) {
  HMMSIM_ASSERT(w.held == 0, "freeing BAR window " << idxOf(w) << " with " << w.held << " pages held");
  detach(w);
  if (w.state != WinState::Free) chunkWindow_[w.chunk] = kNoWindow;
  noteEvent(w, why);
  w.state = WinState::Free;
  freeList_.push_back(w);
}

// Drops every importer's hold on w's pages without telling anyone (reset of a pinned window, or
// the reuse-before-revoke misbehaviour). Returns nothing; counts the pages in forced_reuse_pages.
void P2pBarManager::dropCounts(Window& w) {
  const std::uint64_t base = idxOf(w) * windowPages_;
  for (std::uint64_t off = 0; off < windowPages_; ++off) {
    if (pageHeld_[base + off] == 0) continue;
    ++forcedReusePages_;
    for (auto& s : importers_) {
      const std::uint32_t c = s->counts[base + off];
      s->counts[base + off] = 0;
      s->held -= c;
    }
    heldTotal_ -= pageHeld_[base + off];
    pageHeld_[base + off] = 0;
  }
  w.held = 0;
}

void P2pBarManager::revokeRuns(Window& w, std::uint64_t fromOff, std::uint64_t toOff, BarEvent why,
                               BarRevokeResult& acc) {
  const std::uint64_t base = idxOf(w) * windowPages_;
  const std::uint64_t chunkFirst = w.chunk * windowPages_;
  std::uint64_t off = fromOff;
  while (off < toOff) {
    while (off < toOff && pageHeld_[base + off] == 0) ++off;
    if (off == toOff) break;
    std::uint64_t end = off;
    while (end < toOff && pageHeld_[base + end] != 0) ++end;
    // The hook's invalidation makes importers call unmap() on us re-entrantly; w stays pointed at
    // its chunk meanwhile so those unmaps find it.
    ++acc.hookCalls;
    acc.pagesRevoked += end - off;
    ++revokeHookCalls_;
    revokedPages_ += end - off;
    const std::uint64_t t0 = nowPs();
    if (hook_) hook_->revoke(DevPage(chunkFirst + off), end - off, why);
    if (tracing())
      traceSince(std::string("revoke (") + barEventName(why) + ")", t0,
                 std::to_string(end - off) + " pages from device page " + std::to_string(chunkFirst + off) +
                     " in window " + std::to_string(idxOf(w)));
    off = end;
  }
  for (std::uint64_t o = fromOff; o < toOff; ++o)
    if (pageHeld_[base + o] != 0) {
      ++acc.pagesPinned;
      ++pinnedPages_;
    }
}

// Revokes every held page of w (detached, state Revoking). True when nothing is held afterwards.
bool P2pBarManager::revokeWindow(Window& w, BarEvent why, BarRevokeResult& acc) {
  revokeRuns(w, 0, windowPages_, why, acc);
  return w.held == 0;
}

// A window for `chunk`, pointed at it and listed (Idle), or nullptr with *why set.
P2pBarManager::Window* P2pBarManager::obtainWindow(std::uint64_t chunk, BarMapStatus* why) {
  for (;;) {
    if (!freeList_.empty()) {
      Window& w = freeList_.front();
      freeList_.pop_front();
      pointAt(w, chunk);
      listFor(w);
      return &w;
    }
    if (!idleLru_.empty()) {
      Window& w = idleLru_.front();
      idleLru_.pop_front();
      chunkWindow_[w.chunk] = kNoWindow;
      noteEvent(w, BarEvent::Reclaimed);
      ++reclaims_;
      ++reclaimsIdle_;
      pointAt(w, chunk);
      listFor(w);
      return &w;
    }
    if (params_.policy == BarPolicy::RefuseWhenBusy || params_.policy == BarPolicy::Unlimited) {
      *why = BarMapStatus::NoWindow;
      return nullptr;
    }
    // LRU busy window not used by this request.
    Window* victim = nullptr;
    for (Window& w : busyLru_)
      if (w.stamp != stamp_) {
        victim = &w;
        break;
      }
    if (!victim) {
      *why = BarMapStatus::NoWindow;
      return nullptr;
    }
    Window& w = *victim;
    busyLru_.erase(busyLru_.iterator_to(w));
    if (params_.reuseBeforeRevoke) {
      dropCounts(w);
      chunkWindow_[w.chunk] = kNoWindow;
      noteEvent(w, BarEvent::Forced);
      ++reclaims_;
      pointAt(w, chunk);
      listFor(w);
      return &w;
    }
    w.state = WinState::Revoking;
    BarRevokeResult acc;
    const std::uint64_t t0 = nowPs();
    const bool reclaimed = revokeWindow(w, BarEvent::Reclaimed, acc);
    if (tracing())
      traceSince("reclaim window " + std::to_string(idxOf(w)), t0,
                 std::to_string(acc.pagesRevoked) + " pages revoked, " + std::to_string(acc.pagesPinned) +
                     " pinned");
    if (reclaimed) {
      chunkWindow_[w.chunk] = kNoWindow;
      noteEvent(w, BarEvent::Reclaimed);
      ++reclaims_;
      pointAt(w, chunk);
      listFor(w);
      return &w;
    }
    // An importer kept pages (did not obey the invalidation, or could not): not reusable. Mark it
    // used by this request so the next round picks another candidate, and try again (the revoke
    // may also have made other windows idle).
    ++reclaimSkippedPinned_;
    w.stamp = stamp_;
    listFor(w);
  }
}

// ---- map / unmap -----------------------------------------------------------------------------

void P2pBarManager::countRefusal(BarMapStatus s) {
  ++refused_;
  switch (s) {
    case BarMapStatus::Refused:
      ++refusedPolicy_;
      break;
    case BarMapStatus::OverCap:
      ++refusedOverCap_;
      break;
    case BarMapStatus::NoWindow:
      ++refusedNoWindow_;
      break;
    case BarMapStatus::Racing:
      ++refusedRacing_;
      break;
    case BarMapStatus::Resetting:
      ++refusedResetting_;
      break;
    case BarMapStatus::Gone:
      ++refusedGone_;
      break;
    case BarMapStatus::OutOfRange:
    case BarMapStatus::Mapped:
      break;
  }
}

BarMapStatus P2pBarManager::mapOne(ImporterSlot& slot, DevPage page, Pa* out) {
  const std::uint64_t chunk = page.value() / windowPages_;
  const std::uint64_t off = page.value() % windowPages_;
  Window* w;
  if (chunkWindow_[chunk] != kNoWindow) {
    w = &windows_[chunkWindow_[chunk]];
    if (w->state == WinState::Revoking) return BarMapStatus::Racing;
    ++mapHits_;
  } else {
    BarMapStatus why = BarMapStatus::NoWindow;
    w = obtainWindow(chunk, &why);
    if (!w) return why;
    ++windowFills_;
  }
  const std::uint64_t wi = idxOf(*w);
  const std::uint64_t ap = wi * windowPages_ + off;
  ++slot.counts[ap];
  ++slot.held;
  ++pageHeld_[ap];
  ++heldTotal_;
  ++w->held;
  detach(*w);
  listFor(*w);  // most recently used
  w->stamp = stamp_;
  if (out) *out = params_.barPa + wi * params_.windowBytes + (off << kPageShift);
  return BarMapStatus::Mapped;
}

BarMapResult P2pBarManager::map(const Device& importer, DevPage first, std::uint64_t npages, Pa* out,
                                BarMapMode mode) {
  ++mapCalls_;
  BarMapResult r;
  auto refuse = [&](BarMapStatus s) {
    r.status = s;
    r.pages = 0;
    countRefusal(s);
    return r;
  };
  if (state_ == State::Unplugged) return refuse(BarMapStatus::Gone);
  if (state_ == State::Resetting) return refuse(BarMapStatus::Resetting);
  const std::uint64_t totalPages = nChunks_ * windowPages_;
  if (npages == 0 || first.value() >= totalPages || npages > totalPages - first.value())
    return refuse(BarMapStatus::OutOfRange);
  if (params_.policy == BarPolicy::AlwaysRefuse) return refuse(BarMapStatus::Refused);

  std::uint64_t limit = npages;
  BarMapStatus limitStatus = BarMapStatus::Mapped;
  ImporterSlot& slot = slotFor(importer);
  if (params_.policy == BarPolicy::PerImporterCap && slot.held + npages > params_.importerCapPages) {
    const std::uint64_t room =
        slot.held >= params_.importerCapPages ? 0 : params_.importerCapPages - slot.held;
    if (mode == BarMapMode::AllOrNothing || room == 0) return refuse(BarMapStatus::OverCap);
    limit = room;
    limitStatus = BarMapStatus::OverCap;
  }
  const std::uint64_t firstChunk = first.value() / windowPages_;
  const std::uint64_t lastChunk = (first.value() + limit - 1) / windowPages_;
  if (mode == BarMapMode::AllOrNothing && lastChunk - firstChunk + 1 > nWindows_)
    return refuse(BarMapStatus::NoWindow);

  ++stamp_;
  std::uint64_t i = 0;
  BarMapStatus st = BarMapStatus::Mapped;
  for (; i < limit; ++i) {
    st = mapOne(slot, first + i, out ? out + i : nullptr);
    if (st != BarMapStatus::Mapped) break;
  }
  if (i == limit && limitStatus == BarMapStatus::Mapped) {
    r.status = BarMapStatus::Mapped;
    r.pages = npages;
    mapPages_ += npages;
    refreshScalars();
    return r;
  }
  if (i == limit) st = limitStatus;
  if (mode == BarMapMode::AllOrNothing) {
    // Give back what this request took; nobody saw those addresses.
    for (std::uint64_t k = 0; k < i; ++k) {
      const std::uint64_t page = first.value() + k;
      Window& w = windows_[chunkWindow_[page / windowPages_]];
      unmapPage(slot, w, page % windowPages_);
    }
    i = 0;
  }
  countRefusal(st);
  r.status = st;
  r.pages = i;
  mapPages_ += i;
  refreshScalars();
  return r;
}

void P2pBarManager::unmapPage(ImporterSlot& slot, Window& w, std::uint64_t off) {
  const std::uint64_t ap = idxOf(w) * windowPages_ + off;
  --slot.counts[ap];
  --slot.held;
  --pageHeld_[ap];
  --heldTotal_;
  --w.held;
  if (w.held == 0 && w.state == WinState::Busy) {
    busyLru_.erase(busyLru_.iterator_to(w));
    w.state = WinState::Idle;
    idleLru_.push_back(w);
  }
}

BarUnmapStatus P2pBarManager::unmap(const Device& importer, DevPage first, std::uint64_t npages) {
  ++unmapCalls_;
  const std::uint64_t totalPages = nChunks_ * windowPages_;
  if (npages == 0 || first.value() >= totalPages || npages > totalPages - first.value())
    return BarUnmapStatus::OutOfRange;
  ImporterSlot* slot = nullptr;
  for (auto& s : importers_)
    if (s->dev == &importer) slot = s.get();
  std::uint64_t notHeld = 0;
  for (std::uint64_t k = 0; k < npages; ++k) {
    const std::uint64_t page = first.value() + k;
    const std::uint32_t wi = chunkWindow_[page / windowPages_];
    const std::uint64_t off = page % windowPages_;
    if (!slot || wi == kNoWindow || slot->counts[wi * windowPages_ + off] == 0) {
      ++notHeld;
      continue;
    }
    unmapPage(*slot, windows_[wi], off);
    ++unmapPages_;
  }
  refreshScalars();
  if (notHeld) {
    unmapUnbalanced_ += notHeld;
    return BarUnmapStatus::NotMapped;
  }
  return BarUnmapStatus::Unmapped;
}

// ---- exporter-initiated events -----------------------------------------------------------

BarRevokeResult P2pBarManager::revokeRange(DevPage first, std::uint64_t npages) {
  BarRevokeResult acc;
  ++revokeRangeCalls_;
  const std::uint64_t totalPages = nChunks_ * windowPages_;
  if (npages == 0 || first.value() >= totalPages || npages > totalPages - first.value()) {
    acc.err = Errno::Inval;
    return acc;
  }
  const std::uint64_t end = first.value() + npages;
  const std::uint64_t t0 = nowPs();
  for (std::uint64_t page = first.value(); page < end;) {
    const std::uint64_t chunk = page / windowPages_;
    const std::uint64_t chunkEnd = std::min(end, (chunk + 1) * windowPages_);
    const std::uint32_t wi = chunkWindow_[chunk];
    if (wi != kNoWindow)
      revokeRuns(windows_[wi], page % windowPages_, (chunkEnd - 1) % windowPages_ + 1, BarEvent::Revoked,
                 acc);
    page = chunkEnd;
  }
  refreshScalars();
  if (tracing() && acc.hookCalls)
    traceSince("revoke range", t0,
               std::to_string(acc.pagesRevoked) + " pages revoked of " + std::to_string(npages) +
                   " from device page " + std::to_string(first.value()));
  return acc;
}

BarRevokeResult P2pBarManager::moveWindow(BarWindowIdx from, BarWindowIdx to) {
  BarRevokeResult acc;
  if (state_ == State::Unplugged) {
    acc.err = Errno::NoDev;
    return acc;
  }
  if (state_ == State::Resetting) {
    acc.err = Errno::Io;
    return acc;
  }
  if (from.value() >= nWindows_ || to.value() >= nWindows_ || from == to ||
      params_.policy == BarPolicy::Unlimited) {
    acc.err = Errno::Inval;
    return acc;
  }
  Window& f = windows_[from.value()];
  Window& t = windows_[to.value()];
  if ((f.state != WinState::Idle && f.state != WinState::Busy) || t.state != WinState::Free) {
    acc.err = Errno::Inval;
    return acc;
  }
  const std::uint64_t t0 = nowPs();
  detach(f);
  BarEvent why = BarEvent::Moved;
  if (f.held > 0) {
    if (params_.reuseBeforeRevoke) {
      dropCounts(f);
      why = BarEvent::Forced;
    } else {
      f.state = WinState::Revoking;
      if (!revokeWindow(f, BarEvent::Moved, acc)) {
        listFor(f);  // pinned: stays where it is
        acc.err = Errno::Busy;
        refreshScalars();
        return acc;
      }
    }
  }
  const std::uint64_t chunk = f.chunk;
  f.state = WinState::Revoking;  // detached and resident: makeFree unpoints it
  makeFree(f, why);
  detach(t);
  pointAt(t, chunk);
  noteEvent(t, why);
  listFor(t);
  ++windowMoves_;
  refreshScalars();
  if (tracing())
    traceSince("move window " + std::to_string(from.value()) + " -> " + std::to_string(to.value()), t0,
               "chunk " + std::to_string(chunk) + ", " + std::to_string(acc.pagesRevoked) + " pages revoked");
  return acc;
}

BarRevokeResult P2pBarManager::defragment() {
  BarRevokeResult acc;
  std::uint64_t nextFree = 0;
  for (std::uint64_t i = 0; i < nWindows_; ++i) {
    while (nextFree < nWindows_ && windows_[nextFree].state != WinState::Free) ++nextFree;
    if (nextFree >= i) continue;  // nothing free below i
    const WinState s = windows_[i].state;
    if (s != WinState::Idle && s != WinState::Busy) continue;
    BarRevokeResult one = moveWindow(BarWindowIdx(i), BarWindowIdx(nextFree));
    acc.pagesRevoked += one.pagesRevoked;
    acc.hookCalls += one.hookCalls;
    acc.pagesPinned += one.pagesPinned;
    if (one.err != Errno::Ok && one.err != Errno::Busy) {
      acc.err = one.err;
      return acc;
    }
  }
  return acc;
}

BarRevokeResult P2pBarManager::revokeAll(BarEvent why) {
  BarRevokeResult acc;
  const std::uint64_t t0 = nowPs();
  for (Window& w : windows_) {
    HMMSIM_ASSERT(w.state != WinState::Revoking, "BAR " << stats_.name() << ": reset/unplug while window "
                                                        << idxOf(w) << " is being revoked");
    if (w.state != WinState::Busy) continue;
    detach(w);
    w.state = WinState::Revoking;
    if (!revokeWindow(w, why, acc)) dropCounts(w);  // the hardware is gone: pins are void
    listFor(w);
  }
  for (Window& w : windows_)
    if (w.state != WinState::Free) makeFree(w, why);
  refreshScalars();
  if (tracing())
    traceSince(barEventName(why), t0,
               std::to_string(acc.pagesRevoked) + " pages revoked, every window freed");
  return acc;
}

BarRevokeResult P2pBarManager::resetBegin() {
  if (state_ == State::Unplugged) {
    BarRevokeResult acc;
    acc.err = Errno::NoDev;
    return acc;
  }
  ++resets_;
  state_ = State::Resetting;  // maps during the revoke fail with EIO
  return revokeAll(BarEvent::Reset);
}

void P2pBarManager::resetEnd() {
  if (state_ == State::Unplugged) return;
  state_ = State::Live;
  if (params_.policy == BarPolicy::Unlimited) {
    for (std::uint64_t c = 0; c < nChunks_; ++c) {
      if (chunkWindow_[c] != kNoWindow) continue;
      Window& w = windows_[c];
      detach(w);
      pointAt(w, c);
      listFor(w);
    }
  }
  refreshScalars();
}

BarRevokeResult P2pBarManager::reset() {
  BarRevokeResult acc = resetBegin();
  resetEnd();
  return acc;
}

BarRevokeResult P2pBarManager::unplug() {
  if (state_ == State::Unplugged) return {};
  ++unplugs_;
  state_ = State::Unplugged;
  return revokeAll(BarEvent::Unplugged);
}

// ---- queries ---------------------------------------------------------------------------------

BarAccessCheck P2pBarManager::checkAccess(BusAddr addr, std::uint64_t len, const DevPage* expected) const {
  BarAccessCheck r;
  if (expected) r.expectedPage = *expected;
  if (addr < params_.barBus || addr - params_.barBus >= params_.apertureBytes) return r;
  r.inAperture = true;
  const std::uint64_t off = addr - params_.barBus;
  const std::uint64_t wi = off / params_.windowBytes;
  const std::uint64_t inWin = off % params_.windowBytes;
  r.window = BarWindowIdx(wi);
  const Window& w = windows_[wi];
  r.cause = w.lastEvent;
  r.causeSeq = w.lastEventSeq;
  r.causeTimePs = w.lastEventTimePs;
  if (len == 0) len = 1;
  if (len > params_.windowBytes - inWin) {
    r.crossesWindow = true;
    return r;
  }
  if (w.state == WinState::Free) return r;
  r.page = DevPage(w.chunk * windowPages_ + (inWin >> kPageShift));
  if (expected && r.page != *expected) {
    r.wrongPage = true;
    return r;
  }
  r.legal = true;
  return r;
}

BarAccessCheck P2pBarManager::checkAccess(Pa addr, std::uint64_t len, const DevPage* expected) const {
  if (addr < params_.barPa || addr - params_.barPa >= params_.apertureBytes) {
    BarAccessCheck r;
    if (expected) r.expectedPage = *expected;
    return r;
  }
  return checkAccess(busOf(addr), len, expected);
}

void P2pBarManager::refreshScalars() {
  windowsResident_.set(double(nWindows_ - freeList_.size()));
  windowsBusy_.set(double(busyLru_.size()));
  heldPagesScalar_.set(double(heldTotal_));
}

}  // namespace hmmsim
