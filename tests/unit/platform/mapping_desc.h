// A process mapping description for platform tests (what a scenario's `processes:` entry parses
// to), with only the fields every test sets.
#pragma once

#include <cstdint>
#include <string>

#include "models/platform/platform_desc.h"

namespace hmmsim::test {

/// Mapping `name` of `kind`, `bytes` long; every other field at its default.
inline MappingDesc mapping(const std::string& name, MapKind kind, std::uint64_t bytes) {
  MappingDesc m;
  m.name = name;
  m.kind = kind;
  m.bytes = bytes;
  return m;
}

}  // namespace hmmsim::test
