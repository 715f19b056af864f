#pragma once
// The kernel's `struct device`, reduced to what hmmsim's layers pass around: an identity with a
// name and a parent. The RFC's p2p callbacks take the importing device as a `struct device *`,
// and pci_test_p2p() walks `->parent` until it finds a PCI device (find_parent_pci_dev); so
// does hmmsim, with PCI functions (models/pcie) deriving from Device.
//
// A Device is owned by whoever models it (a bus, a test); others hold plain references that
// must not outlive it.

#include <string>
#include <utility>

namespace hmmsim {

class Device {
 public:
  explicit Device(std::string name, Device* parent = nullptr) : name_(std::move(name)), parent_(parent) {}
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  virtual ~Device() = default;

  const std::string& name() const { return name_; }
  Device* parent() const { return parent_; }
  void setParent(Device* parent) { parent_ = parent; }

 private:
  std::string name_;
  Device* parent_;
};

}  // namespace hmmsim
