#pragma once
// Enumeration: bus numbers and memory resources, as Linux assigns them at boot
// (drivers/pci/probe.c pci_scan_child_bus / pci_scan_bridge; drivers/pci/setup-bus.c
// pbus_size_mem / __pci_bus_assign_resources).
//
// Models:
//  - Bus numbers depth-first: each host bridge's root bus keeps its number; scanning a bus in
//    devfn order, each bridge gets secondary = last used + 1, its subtree is scanned, and its
//    subordinate is the last number used below it. Requester ids (Bdf) follow. This is what
//    Linux does when it assigns bus numbers itself (pci_scan_bridge's second pass, e.g. with
//    pci=assign-busses or bridges firmware left unconfigured); numbers firmware assigned are not
//    modelled, nor the extra numbers reserved behind hot-plug bridges.
//  - Memory BARs and bridge windows: sizing bottom-up, assignment top-down. Each bridge has a
//    non-prefetchable window (32-bit bus addresses) and a 64-bit prefetchable window; like
//    Linux with a 64-bit prefetchable window, only 64-bit prefetchable BARs go into the
//    prefetchable window, every other memory BAR into the non-prefetchable one. Windows have
//    1 MiB granularity (size and alignment); a window is aligned to the largest alignment of
//    what it holds. Children are packed largest alignment first (then larger size, then
//    creation order), each at the next address aligned to its own alignment.
//  - Root-bus resources are placed in the host bridge's mem / pref apertures; a BAR's CPU
//    address is its bus address translated through that aperture.
// Leaves out: I/O space (I/O BARs stay unassigned), firmware-assigned resources that Linux would
// keep, hot-plug window padding, the fallback of 64-bit prefetchable BARs into the
// non-prefetchable window when the prefetchable window is full (Linux retries that way; hmmsim
// reports the impossible fit instead so the user sees it).

#include <optional>
#include <string>

#include "models/pcie/topology.h"

namespace hmmsim {

/// Bridge window granularity (PCI-to-PCI bridge memory base/limit registers): 1 MiB.
inline constexpr std::uint64_t kBridgeWindowAlign = 1ull << 20;

/// Why resource assignment failed: the BAR that could not be placed and a readable reason.
struct EnumError {
  std::string device;   ///< name of the function owning the BAR
  int bar = -1;         ///< BAR index
  std::string message;  ///< "BAR 0 of gpu1 (16GiB, 64-bit prefetchable) does not fit: ..."
};

class Enumerator {
 public:
  explicit Enumerator(Topology& topo) : topo_(topo) {}

  /// Assigns bus numbers on every host bridge (depth-first, see header). Returns an error
  /// message if a domain runs out of bus numbers (more than 255 below a root bus).
  std::optional<std::string> assignBusNumbers();

  /// Sizes and assigns every memory BAR and bridge window. On failure nothing stays assigned
  /// and the error names the BAR that cannot fit.
  std::optional<EnumError> assignResources();

  /// Releases every BAR and window (before resizing a BAR; then call assignResources again).
  void releaseAll();

  /// assignBusNumbers() then assignResources(); the first error is returned as text in `error`
  /// and, for resources, the EnumError.
  std::optional<EnumError> enumerate();

 private:
  Topology& topo_;
};

}  // namespace hmmsim
