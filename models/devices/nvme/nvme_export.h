#pragma once
// NvmeExport: the exporter side of the NVMe driver half (RFC 3/5, workload 1: "a network device
// directly accesses and controls a block device's command queue"). An mmap of the controller's
// device file exports BAR0 as a special vma (VM_IO | VM_PFNMAP, no CPU mapping) through the
// shared exporter half (models/devices/common/p2p_exporter.h): another device that mirrors the
// process range (hmm/importer_mirror.h) gets, from the vma's p2pMap, the bus addresses of the
// doorbells and of the queues and PRP lists in the CMB, and drives the queue without the CPU.
// File offset o is BAR0 byte o (device page o / 4 KiB); BAR0's bytes are PhysMem device frames
// (the CMB) or MMIO registers (a peer's write to the doorbell page rings the doorbell).
// Policy: the aperture is BAR0 itself (P2pExporterParams::bar 0, BarPolicy::Unlimited): nothing to
// reclaim; reset and unplug revoke every importer through the exporter.
// Deliberate difference: a real driver would export only the doorbell page and the CMB; this one
// exports all of BAR0 (the controller registers too), so an importer could write CC. The tests
// only touch the doorbells and the CMB.
// Timing: none (pure core).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "models/cpu_mmu/file.h"
#include "models/devices/common/p2p_exporter.h"

namespace hmmsim {

class PciDev;
class PcieMemoryTarget;
class PhysMem;
class P2pChecker;
class P2pDmaMapper;

class NvmeExport final : public P2pExportedMemory, public FileOperations {
 public:
  /// "" if BAR 0 of `pci` (`barBytes`, at `barPa` in PhysMem) can be exported, else why not.
  static std::string check(PciDev& pci, std::uint64_t barBytes);
  /// `barPa`: where BAR0's frames are in PhysMem (its CPU physical address). All references must
  /// outlive the export; `checker` may be nullptr. Stats: `name` + ".p2p", `name` + ".bar".
  NvmeExport(const std::string& name, PciDev& pci, Pa barPa, std::uint64_t barBytes, PhysMem& pm,
             P2pDmaMapper& mapper, P2pChecker* checker);

  /// Move the SystemC BAR target's windows with the exporter's (identity with this policy).
  void bindBarTarget(PcieMemoryTarget& target);

  // P2pExportedMemory: device page p is BAR0 byte p * 4 KiB.
  std::optional<DevPage> devPageOf(Pfn pfn) override;
  std::optional<Pfn> pfnOf(DevPage p) override;

  /// f_op->mmap: a shared mapping of [offset, offset + len) within BAR0 becomes a special vma.
  /// Ok; Inval (outside BAR0); NoDev (unplugged).
  Errno mmap(File& file, Vma& vma) override;
  const char* name() const override { return "nvme_fops"; }

  P2pExporter& exporter() { return *exporter_; }

 private:
  Pfn first_;
  std::uint64_t pages_;
  std::unique_ptr<P2pExporter> exporter_;
};

}  // namespace hmmsim
