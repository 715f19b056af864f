#include "models/cpu_mmu/dev_pagemap.h"

namespace hmmsim {

const char* memoryTypeName(MemoryType t) {
  switch (t) {
    case MemoryType::DevicePrivate:
      return "device_private";
    case MemoryType::DeviceCoherent:
      return "device_coherent";
    case MemoryType::FsDax:
      return "fs_dax";
    case MemoryType::Generic:
      return "generic";
    case MemoryType::PciP2pdma:
      return "pci_p2pdma";
  }
  return "?";
}

VmFaultResult DevPagemapOps::migrateToRam(VmFault& /*vmf*/) {
  return VmFaultResult::Sigbus;
}

Errno DevPagemapOps::memoryFailure(Pfn /*pfn*/, std::uint64_t /*nrPages*/, int /*mfFlags*/) {
  return Errno::OpNotSupp;
}

void DevPagemapOps::folioSplit(Pfn /*head*/, Pfn /*tail*/) {}

}  // namespace hmmsim
