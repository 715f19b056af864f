#pragma once
// SystemAddressMap: the machine's physical address decoder (the memory controller's and host
// bridge's source address decoders), as a pure table.
//
// Models: disjoint physical ranges, each owned by one target of the system bus (DRAM, a root
// complex's MMIO aperture, a device-coherent memory aperture); a target may see the range at
// another base (a host bridge's CPU-to-bus offset). A request decodes to one target when all
// of it lies in one range; a request that falls in no range, or straddles two, decodes to none
// (the bus completes it with an address error: the CPU's machine check / SIGBUS).
// Leaves out: MTRR/PAT memory types, interleaving across sockets, remapping holes (TOLUD/TOUUD).
// Timing: none (pure core); the SystemBus module (system_bus.h) charges nothing either — the
// targets do.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "sim/strong_types.h"

namespace hmmsim {

/// One range of the map.
struct AddressRange {
  Pa base;                       ///< first physical address
  std::uint64_t size = 0;        ///< bytes, > 0
  unsigned target = 0;           ///< system-bus initiator binding that serves it
  std::uint64_t targetBase = 0;  ///< address the target sees for `base` (base itself: no offset)
  std::string name;              ///< for messages, e.g. "dram", "rc0 mmio", "gpu0 vram"
};

class SystemAddressMap {
 public:
  /// Adds `r`. Returns "" or what is wrong (naming the range): size 0, wraps the address space,
  /// or overlaps an existing range (named).
  std::string add(const AddressRange& r);

  /// The range holding all of [pa, pa + len) (len >= 1), or nullptr.
  const AddressRange* decode(Pa pa, std::uint64_t len) const;
  /// Address the target sees for `pa` inside `r`.
  static std::uint64_t targetAddress(const AddressRange& r, Pa pa) {
    return r.targetBase + (pa.value() - r.base.value());
  }
  std::size_t size() const { return ranges_.size(); }

 private:
  std::map<std::uint64_t, AddressRange> ranges_;  // by base
};

}  // namespace hmmsim
