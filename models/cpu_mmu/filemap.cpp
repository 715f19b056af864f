// The page cache (mm/filemap.c, mm/shmem.c): Inode's cache operations and the VmOperations that
// file and shared-anonymous mappings use. See file.h for the contracts.
#include <algorithm>
#include <cstring>

#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

std::optional<Pfn> Inode::findPage(std::uint64_t index) const {
  auto it = cache_.find(index);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

Errno Inode::findOrCreatePage(std::uint64_t index, Pfn& out) {
  if (index >= sizePages()) return Errno::Fault;
  auto it = cache_.lower_bound(index);
  if (it != cache_.end() && it->first == index) {
    out = it->second;
    return Errno::Ok;
  }
  auto pfn = physMem_.allocFrame(0);
  if (!pfn) return Errno::NoMem;
  Frame& f = physMem_.frame(*pfn);
  // The allocation's reference is the page cache's own (the kernel's filemap_add_folio takes one
  // per cached page). Every file in hmmsim is in-memory (tmpfs/shmem-like): swap-backed, up to date.
  f.set(kFramePageCache);
  f.set(kFrameUptodate);
  f.set(kFrameSwapBacked);
  f.mapping = this;
  f.index = index;
  cache_.emplace_hint(it, index, *pfn);
  out = *pfn;
  return Errno::Ok;
}

void Inode::dropPage(Pfn pfn) {
  // delete_from_page_cache + the cache's folio_put: the frame stops belonging to the file; a
  // pinned frame lives on (its pinner holds a reference) but is no longer findable.
  Frame& f = physMem_.frame(pfn);
  f.clear(kFramePageCache);
  f.mapping = nullptr;
  physMem_.putPage(pfn);
}

std::uint64_t Inode::readAt(std::uint64_t pos, void* buf, std::uint64_t len) const {
  if (pos >= size_) return 0;
  len = std::min(len, size_ - pos);
  auto* out = static_cast<std::uint8_t*>(buf);
  std::uint64_t done = 0;
  while (done < len) {
    std::uint64_t off = pos + done;
    std::uint64_t index = off >> kPageShift;
    std::uint64_t inPage = off & (kPageSize - 1);
    std::uint64_t n = std::min(len - done, kPageSize - inPage);
    auto it = cache_.find(index);
    if (it == cache_.end()) {
      std::memset(out + done, 0, n);  // a hole reads as zeros (tmpfs)
    } else {
      physMem_.read(paOf(it->second) + inPage, out + done, n);
    }
    done += n;
  }
  return len;
}

IoResult Inode::writeAt(std::uint64_t pos, const void* buf, std::uint64_t len) {
  const auto* in = static_cast<const std::uint8_t*>(buf);
  std::uint64_t done = 0;
  while (done < len) {
    std::uint64_t off = pos + done;
    std::uint64_t index = off >> kPageShift;
    std::uint64_t inPage = off & (kPageSize - 1);
    std::uint64_t n = std::min(len - done, kPageSize - inPage);
    // Writes may extend the file: grow i_size page by page before grabbing the page so that
    // findOrCreatePage's EOF check admits it (generic_perform_write extends i_size as it goes).
    if (off + n > size_) size_ = off + n;
    Pfn pfn;
    Errno e = findOrCreatePage(index, pfn);
    if (e != Errno::Ok) {
      if (size_ > off) size_ = off;  // nothing written at off: i_size stops there
      if (done > 0) return IoResult{Errno::Ok, done};
      return IoResult{e, 0};
    }
    physMem_.write(paOf(pfn) + inPage, in + done, n);
    physMem_.frame(pfn).set(kFrameDirty);
    done += n;
  }
  return IoResult{Errno::Ok, done};
}

namespace {

/// generic_file_vm_ops / shmem_vm_ops: the page-cache backing of file and shared-anon vmas.
class FilemapVmOps final : public VmOperations {
 public:
  VmFaultResult fault(VmFault& vmf) override {
    Vma* vma = vmf.vma;
    HMMSIM_ASSERT(vma != nullptr && vma->vmFile, "filemap fault on a vma without a file");
    Inode& inode = vma->vmFile->inode();
    Pfn pfn;
    Errno e = inode.findOrCreatePage(vmf.pgoff, pfn);
    if (e == Errno::Fault) return VmFaultResult::Sigbus;  // beyond EOF
    if (e == Errno::NoMem) return VmFaultResult::Oom;
    // filemap_fault returns the folio with a reference for the fault path (see vm_operations.h).
    inode.physMem().getPage(pfn);
    vmf.page = pfn;
    return VmFaultResult::None;
  }
  bool hasMapPages() const override { return true; }
  VmFaultResult mapPages(VmFault& vmf, std::uint64_t startPgoff, std::uint64_t endPgoff) override {
    // filemap_map_pages: every cached folio in the window that is ready (next_uptodate_folio:
    // hmmsim's cache pages are always uptodate; a locked one is skipped) is mapped where the pte
    // is still empty (filemap_map_order0_folio), up to the last page before EOF.
    using namespace fault_detail;
    Vma& vma = *vmf.vma;
    Inode& inode = vma.vmFile->inode();
    Mm& mm = mmOf(vma);
    PhysMem& pm = mm.physMem();
    if (inode.sizePages() == 0) return VmFaultResult::None;
    endPgoff = std::min(endPgoff, inode.sizePages() - 1);
    VmFaultResult ret = VmFaultResult::None;
    for (std::uint64_t index = startPgoff; index <= endPgoff; ++index) {
      const std::optional<Pfn> page = inode.findPage(index);
      if (!page || headFrame(pm, *page).isLocked()) continue;
      const Va addr = vma.vmStart + ((index - vma.vmPgoff) << kPageShift);
      Pte* slot = mm.pageTable().ptePtr(addr, false);
      if (!slot || !slot->isNone()) continue;
      if (addr == vmf.address) ret = VmFaultResult::NoPage;
      // set_pte_range without FAULT_FLAG_WRITE: mk_pte(vm_page_prot), file rmap, a reference.
      pm.getPage(*page);
      ++pm.frame(*page).mapcount;
      *slot = mkPte(*page, vma, protWritable(vma)).mkYoung();
      mm.addMmCounter(mmCounterOf(headFrame(pm, *page)), 1);
    }
    return ret;
  }
  const char* name() const override { return "filemap"; }
};

/// generic_file_mmap: regular (in-memory) files map through the page cache.
class GenericFileOperations final : public FileOperations {
 public:
  Errno mmap(File& /*file*/, Vma& vma) override {
    vma.vmOps = &filemapVmOps();
    return Errno::Ok;
  }
  bool isDevice() const override { return false; }
  const char* name() const override { return "generic_file"; }
};

}  // namespace

VmOperations& filemapVmOps() {
  static FilemapVmOps ops;  // stateless (like the kernel's const generic_file_vm_ops)
  return ops;
}

FileOperations& genericFileOperations() {
  static GenericFileOperations ops;  // stateless, so sharing it is safe (like a const ops table)
  return ops;
}

}  // namespace hmmsim
