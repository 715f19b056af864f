#pragma once
// Files, inodes and the page cache: the kernel's struct file, struct inode + address_space, and
// struct file_operations, reduced to what mappings need.
//
// What it models:
// - Inode: a size and a page cache (index -> frame) shared by every File opened on it and by
//   every MAP_SHARED mapping, so read/write/pread/pwrite and stores through a shared mapping see
//   the same bytes (filemap.cpp). The page cache holds one reference on each cached frame.
// - The list of vmas mapping the inode (i_mmap), used by truncate to unmap beyond-EOF pages
//   (unmap_mapping_range, MMU_NOTIFY_CLEAR) before dropping them from the cache.
// - File: an open file (mode, position, operations, private data) referencing its inode.
// - FileOperations: release and mmap. A regular file's mmap installs the page cache's
//   VmOperations (generic_file_mmap); a device file's mmap is the driver's and installs the
//   driver's VmOperations, flags (VM_IO|VM_PFNMAP|...) and vm_private_data.
// - Shared anonymous memory and tmpfile() are in-memory files (shmem/tmpfs): pages live only in
//   the page cache, there is no backing store, and nothing is ever written back.
// What it leaves out: directories and names, writeback and dirty tracking, readahead, swap,
// file locks, permissions beyond the open mode, O_DIRECT, holes punched by fallocate.
// Timing: none (pure core); a SystemC shell charges copies if it wants.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/intrusive/list.hpp>

#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class File;
class Mm;
class PhysMem;
class VmOperations;

// Open modes (the kernel's FMODE_* bits, as set from O_RDONLY/O_WRONLY/O_RDWR).
inline constexpr unsigned FMODE_READ = 0x1;
inline constexpr unsigned FMODE_WRITE = 0x2;

/// Result of a read/write: bytes moved, or an error (then `bytes` is 0). The kernel's ssize_t.
struct IoResult {
  Errno err = Errno::Ok;
  std::uint64_t bytes = 0;
  bool ok() const { return err == Errno::Ok; }
};

/// struct file_operations, the part mappings need. Device drivers derive from it.
class FileOperations {
 public:
  FileOperations() = default;
  FileOperations(const FileOperations&) = delete;
  FileOperations& operator=(const FileOperations&) = delete;
  virtual ~FileOperations() = default;

  /// f_op->mmap: called by Mm::mmap after the vma is set up (range, flags, pgoff, file) and
  /// before it is inserted. The callee sets vma.vmOps, may add flags (VM_IO, VM_PFNMAP,
  /// VM_MIXEDMAP, VM_DONTEXPAND, VM_DONTCOPY, ...) and vma.vmPrivateData, and may populate PTEs
  /// once the vma is inserted (by doing so lazily in its fault()).
  /// Returns Ok, or an error that mmap returns unchanged (then nothing is mapped): e.g. Inval
  /// for a bad offset/length, NoDev when the device cannot be mapped, Acces, NoMem.
  virtual Errno mmap(File& file, Vma& vma) = 0;
  /// f_op->release: the last reference to `file` is gone.
  virtual void release(File& /*file*/) {}
  /// True for device files, whose data is not in the page cache: read/write return Errno::Inval
  /// for them (drivers talk through ioctls in hmmsim, outside this interface).
  virtual bool isDevice() const { return true; }
  virtual const char* name() const { return "f_op"; }
};

/// An inode with its page cache (struct inode + struct address_space, merged).
/// Owned through std::shared_ptr by the Files opened on it.
class Inode {
 public:
  /// `physMem` provides the frames of the page cache; `fops` (not owned, may be null for a
  /// regular in-memory file, then the page cache's own mmap is used).
  Inode(PhysMem& physMem, std::uint64_t size, FileOperations* fops = nullptr, std::string name = "tmpfile");
  ~Inode();  ///< drops every cached frame; no vma may still map it
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  PhysMem& physMem() const { return physMem_; }
  FileOperations* fileOperations() const { return fops_; }
  const std::string& name() const { return name_; }

  /// i_size in bytes.
  std::uint64_t size() const { return size_; }
  /// Number of pages covering size() (pages at index >= this are beyond EOF).
  std::uint64_t sizePages() const { return (size_ + kPageSize - 1) >> kPageShift; }

  // ---- page cache (mm/filemap.c) -----------------------------------------------------------
  /// filemap_get_folio: the frame caching page `index`, if present.
  std::optional<Pfn> findPage(std::uint64_t index) const;
  /// filemap_grab/shmem_get_folio(SGP_CACHE): the frame for page `index`, allocating a zeroed
  /// frame and inserting it if absent. Does not take a reference for the caller: the caller that
  /// maps it takes its own (the fault path's get_page). Returns Errno::NoMem when no frame is
  /// free, Errno::Fault when index is beyond EOF (the fault path turns that into SIGBUS).
  Errno findOrCreatePage(std::uint64_t index, Pfn& out);
  /// Number of pages in the cache (tests).
  std::uint64_t nrPages() const { return cache_.size(); }

  /// Copy bytes at file offset `pos` out of the cache (absent pages read as zeros). Clamped at
  /// EOF: returns the number of bytes read (0 at or past EOF).
  std::uint64_t readAt(std::uint64_t pos, void* buf, std::uint64_t len) const;
  /// Copy bytes into the cache at `pos`, allocating pages and extending size() as needed.
  /// Returns the bytes written, or Errno::NoMem (partial writes report what was written).
  IoResult writeAt(std::uint64_t pos, const void* buf, std::uint64_t len);

  /// truncate/ftruncate: set the size. Shrinking unmaps beyond-EOF pages from every mapping
  /// (unmap_mapping_range: MMU_NOTIFY_CLEAR per vma, zapping private COW copies too, as the
  /// kernel's truncate_pagecache does) and drops them from the cache; the tail of the last
  /// partial page is zeroed. Growing only sets the size. Returns Ok (no error is modelled).
  Errno truncate(std::uint64_t newSize);

  // ---- i_mmap: vmas mapping this inode (maintained by Mm) ---------------------------------
  void linkVma(Vma& vma);
  void unlinkVma(Vma& vma);
  std::uint64_t mapCount() const { return mmaps_.size(); }

 private:
  using VmaList = boost::intrusive::list<Vma, boost::intrusive::base_hook<VmaFileHook>,
                                         boost::intrusive::constant_time_size<true>>;
  void dropPage(Pfn pfn);

  PhysMem& physMem_;
  FileOperations* fops_;
  std::string name_;
  std::uint64_t size_;
  std::map<std::uint64_t, Pfn> cache_;  ///< page index -> frame (the kernel's xarray i_pages)
  VmaList mmaps_;
};

/// An open file (struct file). Created with File::open / tmpfile(); shared through shared_ptr
/// (the kernel's file refcount: fget/fput); vmas hold references.
class File : public std::enable_shared_from_this<File> {
 public:
  File(std::shared_ptr<Inode> inode, unsigned fmode, FileOperations* fops);
  ~File();  ///< calls fops->release(*this) when it has fops
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  Inode& inode() const { return *inode_; }
  const std::shared_ptr<Inode>& inodePtr() const { return inode_; }
  unsigned fMode() const { return fmode_; }
  bool readable() const { return (fmode_ & FMODE_READ) != 0; }
  bool writable() const { return (fmode_ & FMODE_WRITE) != 0; }
  /// The file's operations (f_op): the inode's FileOperations for device files, the page
  /// cache's (generic_file_mmap) otherwise. Never null.
  FileOperations& fOp() const { return *fops_; }
  /// Driver data (private_data).
  void* privateData = nullptr;
  std::uint64_t pos() const { return pos_; }

  /// read(2)/write(2) at the file position, advancing it. pread/pwrite at `offset`, leaving the
  /// position alone. Errors: Errno::Inval for a device file (its data is not in the page cache),
  /// Errno::Fault for a null buffer with len > 0, Errno::NoMem when the cache cannot grow.
  /// A read needs FMODE_READ and a write FMODE_WRITE; the kernel returns -EBADF otherwise,
  /// sim/errno.h has no EBADF, so hmmsim returns Errno::Acces (deliberate difference).
  IoResult read(void* buf, std::uint64_t len);
  IoResult write(const void* buf, std::uint64_t len);
  IoResult pread(void* buf, std::uint64_t len, std::uint64_t offset) const;
  IoResult pwrite(const void* buf, std::uint64_t len, std::uint64_t offset);
  /// ftruncate(2): Errno::Inval without FMODE_WRITE (as the kernel), else Inode::truncate.
  Errno ftruncate(std::uint64_t size);

  /// open(2) of an existing inode with `fmode` (FMODE_READ|FMODE_WRITE bits).
  static std::shared_ptr<File> open(std::shared_ptr<Inode> inode, unsigned fmode);

 private:
  std::shared_ptr<Inode> inode_;
  unsigned fmode_;
  FileOperations* fops_;
  std::uint64_t pos_ = 0;
};

/// O_TMPFILE / memfd_create: a new in-memory file of `size` bytes (zeros), opened read-write.
std::shared_ptr<File> tmpfile(PhysMem& physMem, std::uint64_t size = 0, std::string name = "tmpfile");

/// A device file: an inode whose FileOperations are the driver's (`fops`, not owned), opened
/// with `fmode`. mmap on it calls fops.mmap.
std::shared_ptr<File> openDeviceFile(PhysMem& physMem, FileOperations& fops, unsigned fmode,
                                     std::string name);

/// generic_file_mmap's file_operations: what a regular (in-memory) file uses; its mmap installs
/// filemapVmOps(). Stateless and shared.
FileOperations& genericFileOperations();

/// The VmOperations the page cache installs for regular files and shared anonymous memory
/// (generic_file_vm_ops / shmem_vm_ops): fault() = filemap_fault / shmem_fault, providing the
/// cache's frame for vmf.pgoff (allocated zeroed if absent; SIGBUS beyond EOF).
VmOperations& filemapVmOps();

}  // namespace hmmsim
