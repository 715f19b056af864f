#pragma once
// What an exporting device's driver does to its importers at any time, as events a workload or a
// scenario script injects (the camera chain's revoke_every, a platform scenario's `script:`):
//  - revoke: every importer's hold on its device memory is revoked (P2pExporter::revokePages:
//    MMU_NOTIFY_CLEAR over every range mapping it); the BAR windows stay resident;
//  - move windows: each resident BAR window moves to the lowest free one (its importers revoked
//    first): the pages get new bus addresses;
//  - BAR pressure: another importer (BarPressure) demands windows for chunks not resident, so the
//    exporter's policy reclaims windows the importers hold (revoking them) or refuses;
//  - device reset: every window torn down and every importer revoked; maps fail with EIO until
//    the reset ends (P2pBarManager::resetBegin/resetEnd).
// The functions only call the exporter and its BAR manager: the importers obey through their
// mmu-notifier subscriptions, in the caller's SystemC thread (they may wait for in-flight DMA).
// Timing: the exporter's window programming (P2pExporterParams::windowProgramPs) in the caller's
// thread; the importers' waits are theirs.

#include <cstdint>
#include <string>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "sim/device.h"
#include "sim/errno.h"

namespace hmmsim {

class P2pExporter;

/// What one exporter event did.
struct ExporterEventResult {
  Errno err = Errno::Ok;           ///< Ok, or why it did nothing (or stopped): the BAR manager's
  std::uint64_t pagesRevoked = 0;  ///< importer-held pages the event took
  std::uint64_t windowsMoved = 0;  ///< move: windows moved; BAR pressure: windows taken
  std::uint64_t pagesPinned = 0;   ///< pages importers did not give back (misbehaving)
};

/// Revokes every importer's hold on all of `x`'s device memory; windows stay resident.
ExporterEventResult revokeImporters(P2pExporter& x);
/// Moves each window resident now to the lowest free window (revoking its importers first); the
/// calling thread takes each move's window programming. err: Ok (also when nothing is resident or
/// no window is free: nothing to move), or the first refusal of moveWindow (Busy: pinned pages;
/// Io: reset in progress; NoDev: unplugged).
ExporterEventResult moveResidentWindows(P2pExporter& x);

/// Another importer demanding BAR windows (a peer's burst of p2p maps): it maps the first page
/// of chunks that are not resident, from the top of device memory down, so the exporter's
/// policy must reclaim windows others hold (LruReclaim: revoking them) or refuse. It holds its
/// pages until release() (or its destruction).
class BarPressure {
 public:
  /// `name` names the demanding importer (a Device of its own). `x` must outlive this object.
  BarPressure(P2pExporter& x, const std::string& name);
  ~BarPressure();
  BarPressure(const BarPressure&) = delete;
  BarPressure& operator=(const BarPressure&) = delete;

  /// Takes up to `windows` windows. err: Ok, or the refusal that stopped it (EOPNOTSUPP, ENOSPC,
  /// EIO, ENODEV) after windowsMoved windows were taken; pagesRevoked: the others' pages the
  /// reclaims revoked (from the manager's revoked_pages counter). The calling thread takes the
  /// window programming.
  ExporterEventResult take(std::uint64_t windows);
  /// Gives every page taken back (the windows stay resident, idle).
  void release();
  /// Pages held now.
  std::uint64_t held() const { return pages_.size(); }

 private:
  P2pExporter& x_;
  P2pBarManager& bar_;
  Device dev_;
  std::vector<DevPage> pages_;
};

}  // namespace hmmsim
