// Where a workload's buffers go. See placement.h.
#include "models/platform/placement.h"

#include "models/platform/platform.h"
#include "sim/config.h"
#include "sim/units.h"

namespace hmmsim {

namespace {
/// " (alternative)" or "".
std::string aside(const PlacementRule& r) {
  return r.alternative.empty() ? "" : " (" + r.alternative + ")";
}

/// The kind refusal of a region that must be (migratable) process memory, or "".
std::string processMemoryRefusal(const PlacementRule& r, MapKind kind) {
  if (r.memory == PlacementRule::Memory::Process) {
    if (kind != MapKind::DeviceFile) return {};
    return r.what + ": place it in an anon, shared, file, file-private or hugetlb mapping" + aside(r);
  }
  const std::string where = ": place it in an anon (thp allowed) or file-private mapping" + aside(r);
  switch (kind) {
    case MapKind::Anon:
    case MapKind::FilePrivate:
      return {};
    case MapKind::Hugetlb:
      return r.what + ", and migrate_vma refuses hugetlb memory (EINVAL)" + where;
    case MapKind::SharedAnon:
    case MapKind::FileShared:
      return r.what +
             ", and only anonymous pages migrate to device memory (the shmem and page-cache pages of a " +
             mapKindName(kind) + " mapping stay)" + where;
    case MapKind::DeviceFile:
      return r.what + ": a device-file mapping is no process memory to migrate" + where;
  }
  return {};
}
}  // namespace

void checkPlacement(const Platform& p, const WorkloadPlacement& place,
                    const std::vector<PlaceableRegion>& regions) {
  for (const auto& entry : place) {
    bool known = false;
    for (const PlaceableRegion& r : regions) known = known || r.name == entry.first;
    if (!known) {
      std::string names;
      for (const PlaceableRegion& r : regions) names += (names.empty() ? "" : ", ") + r.name;
      throw ConfigError("<workload>", 0, 0, "place",
                        "no placeable region \"" + entry.first + "\" (the workload's: " + names + ")");
    }
  }
  for (const PlaceableRegion& r : regions) placedRegion(p, place, r);
}

std::string sizeText(std::uint64_t b) {
  return b == 0 ? "0" : formatBytes(b);
}

std::string protText(int prot) {
  std::string s;
  if (prot & PROT_READ) s += 'r';
  if (prot & PROT_WRITE) s += 'w';
  if (prot & PROT_EXEC) s += 'x';
  return s.empty() ? "none" : s;
}

std::string placementRefusal(const PlaceableRegion& r, MapKind kind, int prot, const std::string& device,
                             std::uint64_t offset) {
  const PlacementRule& rule = r.rule;
  std::string why;
  if (rule.memory == PlacementRule::Memory::None) {
    why = rule.what;
  } else if (rule.memory == PlacementRule::Memory::DeviceFile) {
    if (kind != MapKind::DeviceFile || device != rule.device)
      why =
          rule.what + ": place it in a mapping with kind: device-file, device: " + rule.device + aside(rule);
    else if (offset < rule.fileFirst || rule.fileEnd < r.bytes || offset > rule.fileEnd - r.bytes)
      why = rule.what + ": " + r.name + " (" + sizeText(r.bytes) + ") lies in " + rule.fileWhat +
            " (file offsets " + sizeText(rule.fileFirst) + " to " + sizeText(rule.fileEnd) +
            ") and its mapping starts at offset " + sizeText(offset) +
            ": give the mapping offset: " + sizeText(rule.fileFirst) +
            (rule.fileEnd - r.bytes > rule.fileFirst ? " (up to " + sizeText(rule.fileEnd - r.bytes) + ")"
                                                     : std::string());
  } else {
    why = processMemoryRefusal(rule, kind);
  }
  if (why.empty() && (prot & rule.prot) != rule.prot)
    why = r.name + " needs prot: " + protText(rule.prot) + " (" + rule.users +
          "); its mapping has prot: " + protText(prot);
  return why;
}

const ProcessMapping* placedMapping(const Platform& p, const WorkloadPlacement& place,
                                    const PlaceableRegion& r) {
  auto it = place.find(r.name);
  if (it == place.end()) return nullptr;
  const ProcessMapping* m = p.mapping(r.process, it->second);
  if (!m)
    throw ConfigError("<workload>", 0, 0, "place",
                      "process \"" + r.process + "\" has no mapping \"" + it->second + "\" for " + r.name);
  if (const std::string why = placementRefusal(r, m->kind, m->prot, m->device, m->offset); !why.empty())
    throw ConfigError("<workload>", 0, 0, "place", why);
  if (r.bytes > m->bytes)
    throw ConfigError("<workload>", 0, 0, "place",
                      r.name + " needs " + std::to_string(r.bytes) + " bytes; mapping \"" + it->second +
                          "\" has " + std::to_string(m->bytes));
  return m;
}

std::optional<Va> placedRegion(const Platform& p, const WorkloadPlacement& place, const PlaceableRegion& r) {
  const ProcessMapping* m = placedMapping(p, place, r);
  return m ? std::optional<Va>(m->start) : std::nullopt;
}

}  // namespace hmmsim
