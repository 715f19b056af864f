// DeviceRegistry: device types by name. See device_registry.h.
#include "models/devices/common/device_registry.h"

#include "sim/assert.h"

namespace hmmsim {

void DeviceRegistry::add(const std::string& type, const std::string& doc, DeviceFactory factory) {
  HMMSIM_ASSERT(!type.empty() && factory, "DeviceRegistry::add needs a type name and a factory");
  HMMSIM_ASSERT(entries_.count(type) == 0, "device type \"" << type << "\" registered twice");
  entries_[type] = Entry{doc, std::move(factory)};
}

std::unique_ptr<PlatformDevice> DeviceRegistry::create(const std::string& type, DeviceContext& ctx) const {
  auto it = entries_.find(type);
  if (it == entries_.end()) return nullptr;
  return it->second.factory(ctx);
}

std::vector<std::string> DeviceRegistry::types() const {
  std::vector<std::string> t;
  t.reserve(entries_.size());
  for (const auto& [name, e] : entries_) t.push_back(name);
  return t;
}

const std::string& DeviceRegistry::doc(const std::string& type) const {
  auto it = entries_.find(type);
  HMMSIM_ASSERT(it != entries_.end(), "unknown device type \"" << type << "\"");
  return it->second.doc;
}

void badDeviceParams(const std::string& device, const char* type) {
  HMMSIM_ASSERT(false, "device " << device << ": params of the wrong type (" << type << ")");
  __builtin_unreachable();
}

}  // namespace hmmsim
