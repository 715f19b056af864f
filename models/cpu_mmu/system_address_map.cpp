#include "models/cpu_mmu/system_address_map.h"

#include <iterator>
#include <sstream>

namespace hmmsim {

std::string SystemAddressMap::add(const AddressRange& r) {
  std::ostringstream os;
  const std::uint64_t b = r.base.value();
  if (r.size == 0) {
    os << "address range '" << r.name << "' at " << r.base << ": size 0";
    return os.str();
  }
  if (b + r.size < b) {
    os << "address range '" << r.name << "' at " << r.base << " (" << r.size << " B) wraps the address space";
    return os.str();
  }
  auto next = ranges_.lower_bound(b);
  const AddressRange* clash = nullptr;
  if (next != ranges_.end() && next->first < b + r.size) clash = &next->second;
  if (!clash && next != ranges_.begin()) {
    const AddressRange& p = std::prev(next)->second;
    if (p.base.value() + p.size > b) clash = &p;
  }
  if (clash) {
    os << "address range '" << r.name << "' at " << r.base << " (" << r.size << " B) overlaps '"
       << clash->name << "' at " << clash->base << " (" << clash->size << " B)";
    return os.str();
  }
  ranges_.emplace(b, r);
  return "";
}

const AddressRange* SystemAddressMap::decode(Pa pa, std::uint64_t len) const {
  const std::uint64_t a = pa.value();
  auto it = ranges_.upper_bound(a);
  if (it == ranges_.begin()) return nullptr;
  const AddressRange& r = std::prev(it)->second;
  const std::uint64_t off = a - r.base.value();
  if (off >= r.size || len > r.size - off) return nullptr;
  return &r;
}

}  // namespace hmmsim
