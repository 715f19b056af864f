#pragma once
// Where a workload's buffers go (a scenario's `place:`): a region of a workload in a named
// process mapping (ProcessDesc::memory) instead of the workload's own mmap. One rule per region
// and run says which mappings fit (size, kind, protection, device); the scenario parser checks
// it against the MappingDescs before anything runs (file:line:column), the workload against the
// mappings the Platform made (C++ users), with the same words (placementRefusal).
//
// Contract: each workload kind lists its placeable regions for a set of params (their sizes and
// rules) in one function its parser and its constructor both call.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/platform/platform_desc.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Platform;
struct ProcessMapping;

/// Where a workload's buffers go: region name -> a named mapping (ProcessDesc::memory) of the
/// region's process. A region absent from it lives in the workload's own mmap.
using WorkloadPlacement = std::map<std::string, std::string>;

/// The memory a region may be placed in, for one run's params.
struct PlacementRule {
  enum class Memory {
    Process,     ///< process memory: anon, shared, file, file-private or hugetlb
    Migrated,    ///< process memory the workload migrates to device-private pages: anonymous
                 ///< pages only (anon; file-private, whose written pages are anonymous copies)
    DeviceFile,  ///< a device-file mapping of `device` (its special vma)
    None,        ///< not placeable with these params (`what` says why and what to change)
  };
  Memory memory = Memory::Process;
  /// What the region is with these params, the start of every refusal (e.g. "on the bounce path
  /// frames_in is process memory"); for None the whole refusal.
  std::string what;
  std::string device;  ///< DeviceFile: the device whose file
  /// DeviceFile: the part of the device's file the region must lie in, file offsets [fileFirst,
  /// fileEnd) (a region starts at its mapping's start: at the mapping's offset), and what that
  /// part is ("the GPU driver's kernel region"). Default: anywhere.
  std::uint64_t fileFirst = 0;
  std::uint64_t fileEnd = ~0ull;
  std::string fileWhat;
  /// PROT_READ | PROT_WRITE bits its users need (a device's write faults EFAULT on a read-only
  /// vma), and who they are ("the camera writes it, the engine reads it").
  int prot = PROT_READ | PROT_WRITE;
  std::string users;
  std::string alternative;  ///< appended to a kind refusal in parentheses ("or take path: p2p"); may be empty
};

/// A workload region `place:` may put in a mapping, with its size for one run's params.
struct PlaceableRegion {
  std::string name;     ///< the region's name (also a WorkloadRegion's)
  std::string process;  ///< the process whose mappings it may go in
  std::uint64_t bytes = 0;
  PlacementRule rule;
};

/// Why region `r` cannot go in a mapping of `kind` with protection `prot` (of device `device`
/// from file offset `offset` for a device-file mapping), with the fix; empty when it can. The
/// mapping's size is not its business.
std::string placementRefusal(const PlaceableRegion& r, MapKind kind, int prot, const std::string& device,
                             std::uint64_t offset = 0);

/// The mapping `place` puts region `r` in, else nullptr. Throws ConfigError (file "<workload>",
/// key "place") when the mapping is not one of the process's, is smaller than the region, or the
/// rule refuses it (placementRefusal).
const ProcessMapping* placedMapping(const Platform& p, const WorkloadPlacement& place,
                                    const PlaceableRegion& r);
/// The start of region `r` when `place` puts it in a mapping (placedMapping), else nullopt.
std::optional<Va> placedRegion(const Platform& p, const WorkloadPlacement& place, const PlaceableRegion& r);

/// Checks a whole placement before a workload maps anything: every region `place` names is one
/// of `regions`, and placedRegion accepts each. Throws ConfigError (key "place") otherwise.
void checkPlacement(const Platform& p, const WorkloadPlacement& place,
                    const std::vector<PlaceableRegion>& regions);

/// "2MiB" / "1GiB" / "12KiB" / "1000B" / "0": a byte count as a scenario writes it, for messages
/// (sim/units formatBytes, with a bare "0").
std::string sizeText(std::uint64_t bytes);

/// "none", or the letters of PROT_READ/WRITE/EXEC in `prot` ("rw"): a scenario's `prot:` words.
std::string protText(int prot);

}  // namespace hmmsim
