// Exporter events shared by workloads and scenario scripts. See exporter_events.h.
#include "models/platform/exporter_events.h"

#include "models/devices/common/p2p_exporter.h"

namespace hmmsim {

ExporterEventResult revokeImporters(P2pExporter& x) {
  const BarRevokeResult r = x.revokePages(DevPage(0), x.devicePages());
  ExporterEventResult out;
  out.err = r.err;
  out.pagesRevoked = r.pagesRevoked;
  out.pagesPinned = r.pagesPinned;
  return out;
}

ExporterEventResult moveResidentWindows(P2pExporter& x) {
  P2pBarManager& bar = x.bar();
  ExporterEventResult out;
  std::vector<BarWindowIdx> resident;
  std::uint64_t chunk = 0;
  for (std::uint64_t w = 0; w < bar.windowCount(); ++w)
    if (bar.chunkOfWindow(BarWindowIdx(w), &chunk)) resident.push_back(BarWindowIdx(w));
  for (BarWindowIdx from : resident)
    for (std::uint64_t t = 0; t < bar.windowCount(); ++t) {
      if (bar.chunkOfWindow(BarWindowIdx(t), &chunk)) continue;
      const BarRevokeResult r = bar.moveWindow(from, BarWindowIdx(t));
      x.settleWindowTime();
      out.pagesRevoked += r.pagesRevoked;
      out.pagesPinned += r.pagesPinned;
      if (r.err == Errno::Ok)
        ++out.windowsMoved;
      else if (out.err == Errno::Ok)
        out.err = r.err;
      break;
    }
  return out;
}

BarPressure::BarPressure(P2pExporter& x, const std::string& name) : x_(x), bar_(x.bar()), dev_(name) {}

BarPressure::~BarPressure() {
  release();
}

ExporterEventResult BarPressure::take(std::uint64_t windows) {
  ExporterEventResult out;
  const std::uint64_t before = bar_.stats().counterValue("revoked_pages");
  const std::uint64_t chunkPages = bar_.windowPages();
  const std::uint64_t chunks =
      (bar_.params().deviceMemBytes + bar_.params().windowBytes - 1) / bar_.params().windowBytes;
  BarWindowIdx w;
  for (std::uint64_t c = chunks; c-- > 0 && out.windowsMoved < windows;) {
    const DevPage page(c * chunkPages);
    if (bar_.windowOf(page, &w)) continue;  // resident: no pressure from it
    const BarMapResult r = bar_.map(dev_, page, 1, nullptr);
    x_.settleWindowTime();
    if (!r.ok()) {
      out.err = r.err();
      break;
    }
    pages_.push_back(page);
    ++out.windowsMoved;
  }
  out.pagesRevoked = bar_.stats().counterValue("revoked_pages") - before;
  return out;
}

void BarPressure::release() {
  for (DevPage p : pages_) bar_.unmap(dev_, p, 1);
  pages_.clear();
}

}  // namespace hmmsim
