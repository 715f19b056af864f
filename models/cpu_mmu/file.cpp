// Inodes and open files (see file.h). The page-cache parts are in filemap.cpp.
#include "models/cpu_mmu/file.h"

#include <algorithm>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim {

Inode::Inode(PhysMem& physMem, std::uint64_t size, FileOperations* fops, std::string name)
    : physMem_(physMem), fops_(fops), name_(std::move(name)), size_(size) {}

Inode::~Inode() {
  HMMSIM_ASSERT(mmaps_.empty(),
                "inode " << name_ << " destroyed while still mapped by " << mmaps_.size() << " vma(s)");
  for (auto& [index, pfn] : cache_) dropPage(pfn);
  cache_.clear();
}

void Inode::linkVma(Vma& vma) {
  mmaps_.push_back(vma);
}

void Inode::unlinkVma(Vma& vma) {
  HMMSIM_ASSERT(vma.VmaFileHook::is_linked(), "unlinkVma of a vma not in i_mmap");
  mmaps_.erase(mmaps_.iterator_to(vma));
}

Errno Inode::truncate(std::uint64_t newSize) {
  if (newSize < size_) {
    const std::uint64_t firstGone = (newSize + kPageSize - 1) >> kPageShift;  // first page wholly beyond EOF
    // unmap_mapping_range(mapping, holebegin, 0, even_cows=1): zap every mapping of the pages
    // at and beyond firstGone, private COW copies included, one CLEAR round per vma part.
    std::vector<Vma*> vmas;
    for (Vma& v : mmaps_) vmas.push_back(&v);
    for (Vma* v : vmas) {
      const std::uint64_t vFirst = v->vmPgoff;
      const std::uint64_t vEnd = v->vmPgoff + v->pages();
      if (vEnd <= firstGone) continue;
      const std::uint64_t from = std::max(vFirst, firstGone);
      Va start = v->vmStart + ((from - vFirst) << kPageShift);
      Va end = v->vmEnd;
      Mm& mm = *v->vmMm;
      ZapDetails details;
      details.evenCows = true;
      mm.notifyRange(MmuNotifierEvent::Clear, start, end, nullptr,
                     [&] { zapPageRange(*v, start, end, &details); });
    }
    // truncate_inode_pages_range: drop the cached pages beyond EOF.
    for (auto it = cache_.lower_bound(firstGone); it != cache_.end();) {
      dropPage(it->second);
      it = cache_.erase(it);
    }
    // Zero the tail of a partial last page (truncate_inode_partial_folio).
    if (newSize & (kPageSize - 1)) {
      auto it = cache_.find(newSize >> kPageShift);
      if (it != cache_.end()) {
        std::uint64_t inPage = newSize & (kPageSize - 1);
        std::vector<std::uint8_t> zeros(kPageSize - inPage, 0);
        physMem_.write(paOf(it->second) + inPage, zeros.data(), zeros.size());
      }
    }
  }
  size_ = newSize;
  return Errno::Ok;
}

File::File(std::shared_ptr<Inode> inode, unsigned fmode, FileOperations* fops)
    : inode_(std::move(inode)), fmode_(fmode), fops_(fops) {
  HMMSIM_ASSERT(inode_ && fops_, "File needs an inode and file operations");
}

File::~File() {
  fops_->release(*this);
}

IoResult File::read(void* buf, std::uint64_t len) {
  IoResult r = pread(buf, len, pos_);
  if (r.ok()) pos_ += r.bytes;
  return r;
}

IoResult File::write(const void* buf, std::uint64_t len) {
  IoResult r = pwrite(buf, len, pos_);
  if (r.ok()) pos_ += r.bytes;
  return r;
}

IoResult File::pread(void* buf, std::uint64_t len, std::uint64_t offset) const {
  if (!readable()) return IoResult{Errno::Acces, 0};
  if (fops_->isDevice()) return IoResult{Errno::Inval, 0};
  if (len > 0 && buf == nullptr) return IoResult{Errno::Fault, 0};
  return IoResult{Errno::Ok, inode_->readAt(offset, buf, len)};
}

IoResult File::pwrite(const void* buf, std::uint64_t len, std::uint64_t offset) {
  if (!writable()) return IoResult{Errno::Acces, 0};
  if (fops_->isDevice()) return IoResult{Errno::Inval, 0};
  if (len > 0 && buf == nullptr) return IoResult{Errno::Fault, 0};
  if (offset + len < offset) return IoResult{Errno::Inval, 0};
  return inode_->writeAt(offset, buf, len);
}

Errno File::ftruncate(std::uint64_t size) {
  if (!writable() || fops_->isDevice()) return Errno::Inval;
  return inode_->truncate(size);
}

std::shared_ptr<File> File::open(std::shared_ptr<Inode> inode, unsigned fmode) {
  FileOperations* fops = inode->fileOperations();
  if (fops == nullptr) fops = &genericFileOperations();
  return std::make_shared<File>(std::move(inode), fmode, fops);
}

std::shared_ptr<File> tmpfile(PhysMem& physMem, std::uint64_t size, std::string name) {
  auto inode = std::make_shared<Inode>(physMem, size, nullptr, std::move(name));
  return File::open(std::move(inode), FMODE_READ | FMODE_WRITE);
}

std::shared_ptr<File> openDeviceFile(PhysMem& physMem, FileOperations& fops, unsigned fmode,
                                     std::string name) {
  auto inode = std::make_shared<Inode>(physMem, 0, &fops, std::move(name));
  return File::open(std::move(inode), fmode);
}

}  // namespace hmmsim
