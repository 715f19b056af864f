// Default vm_operations callbacks (see vm_operations.h).
#include "models/cpu_mmu/vm_operations.h"

#include "models/cpu_mmu/vm_fault.h"

namespace hmmsim {

VmFaultResult VmOperations::fault(VmFault& /*vmf*/) {
  // The kernel's do_fault() returns VM_FAULT_SIGBUS when vm_ops->fault is NULL; a backing that
  // does not override fault() behaves the same way.
  return VmFaultResult::Sigbus;
}

VmFaultResult VmOperations::mapPages(VmFault& /*vmf*/, std::uint64_t /*startPgoff*/,
                                     std::uint64_t /*endPgoff*/) {
  return VmFaultResult::None;
}

}  // namespace hmmsim
