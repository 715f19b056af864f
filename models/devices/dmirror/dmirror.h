#pragma once
// dmirror: the kernel's HMM test device (lib/test_hmm.c, newest linux-mm version, with THP
// migration), a fake device that mirrors a process address space through hmm_range_fault and an
// mmu interval notifier, owns ZONE_DEVICE memory (device private or device coherent) and migrates
// anonymous memory to and from it. Its ioctls are what tools/testing/selftests/mm/hmm-tests.c
// drives; tests/conformance/ ports that suite onto this model.
//
// Models: up to four devices (dmirror0/1 private, dmirror2/3 coherent: DmirrorDevice), each open
// handle (Dmirror) mirroring one Mm with its own interval notifier on [0, ULONG_MAX & PAGE_MASK),
// its own update lock (the HmmMirror's SleepingMutex) and a software device page table (VA>>12 ->
// frame; untagged = read-only, WRITE tag, ATOMIC tag for device-exclusive; no page references are
// held: invalidation keeps it correct); the invalidate callback (skip self-owned MIGRATE events;
// trylock when non-blockable; set_seq; erase [start, end] inclusive of the page at end, as
// xa_for_each_range does); dmirror_fault in 32-page hmm_range
// chunks; the commands READ, WRITE, MIGRATE_TO_DEV, MIGRATE_TO_SYS, SNAPSHOT, EXCLUSIVE,
// CHECK_EXCLUSIVE, RELEASE, FLAGS with the kernel's argument checks, error codes and counters;
// device memory in 256 MiB chunks (one preallocated) with free lists of pages and PMD folios
// (hmm/memremap.h DeviceMemory); migrate_to_ram for private pages (the whole 2 MiB folio when the
// page belongs to one);
// eviction of every chunk on RELEASE and on close; mmap of the device file (vm_insert_page of
// zeroed pages: a VM_MIXEDMAP vma).
//
// Deliberate differences from lib/test_hmm.c:
//  - Backing pages: the kernel's private device pages are fake (dpage->zone_device_data = a
//    system page holding the data) because real device-private memory is not CPU addressable.
//    hmmsim's device frames carry real bytes (PhysMem), so the device page table stores the
//    frame that holds the data: the system page for mirrored RAM, the device frame itself for
//    device memory. READ/WRITE observe the same bytes; no backing page is allocated.
//  - HMM_RANGE_DEFAULT_TIMEOUT (1 s) is a budget of restarts (DmirrorParams::maxRetries, via
//    HmmMirrorParams), since the pure core has no clock; exhausting it returns -EBUSY as the
//    timeout does.
//  - The ioctl argument is passed by reference instead of a user pointer; the copy in/out is
//    kept: on error the caller's struct is not written.
//  - MIGRATE_TO_DEV/SYS chunks end at the next 2 MiB boundary (at most 512 pages, the kernel's
//    PTRS_PER_PTE) so a PMD-mapped THP is never cut by a chunk boundary.
//  - Migrations erase the moved pages from every open handle of the device that mirrors the
//    mm (MIGRATE_TO_DEV: the other handles; MIGRATE_TO_SYS and migrate_to_ram: all of them).
//    The kernel erases them only in the handle doing the migration (migrate_to_ram: the one that
//    migrated the page, found through the backing page), so a second handle of the same device
//    on the same mm, which skips the device's own MIGRATE events, would keep stale entries.
// Timing: none in the pure core: copies accumulate simulated time in the device's MigrateCopier.
//   With a copy wait (setCopyWait; the platform's dmirror installs a SystemC wait) the thread that
//   migrates waits for its copies between the copy step and migrate_vma_pages, as the kernel's
//   copy_highpage loop runs there: MIGRATE_TO_DEV/SYS, a CPU or device fault's migrate_to_ram,
//   a chunk eviction.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "hmm/mirror.h"
#include "models/cpu_mmu/file.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "sim/checker.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;
class PhysMem;
class DmirrorDevice;
class DmirrorP2p;

/// Parameters of one dmirror device.
struct DmirrorParams {
  /// Device memory chunk size. Unit: bytes. Default 256 MiB (DEVMEM_CHUNK_SIZE).
  std::uint64_t chunkBytes = 256ull << 20;
  /// Most device memory (chunks added on demand). Unit: bytes. Default 1 GiB.
  std::uint64_t capacityBytes = 1ull << 30;
  /// Pages per hmm_range in dmirror_fault. Unit: pages. Default 32.
  unsigned faultChunkPages = 32;
  /// HMM_RANGE_DEFAULT_TIMEOUT as a restart budget per range. Unit: restarts. Default 1000.
  unsigned maxRetries = 1000;
  /// Evict all of the device's chunks when a handle is closed (newest kernels). Default true.
  bool evictOnRelease = true;
  /// Cost of the migration copy engine.
  MigrateCopyParams copy;
  /// Reproduce 6.12's dmirror_do_fault mistake: when hmm_range_fault returns one of the
  /// device's own private pages, store that device-private page itself instead of the system
  /// page that backs it; the READ/WRITE copy then goes through the device page's (not CPU
  /// addressable) physical address, which oopses the real kernel. hmmsim reports it to the
  /// attached InvariantChecker (rule 2) and goes on. Default false (the correct driver).
  bool faultStoresDevicePage = false;
};

/// One device page-table entry (the xarray value of the kernel: page pointer + tag).
struct DmirrorPte {
  enum class Tag : std::uint8_t {
    Read = 0,    ///< untagged: read-only
    Atomic = 1,  ///< DPT_XA_TAG_ATOMIC: exclusive access (make_device_exclusive)
    Write = 3,   ///< DPT_XA_TAG_WRITE: read-write
  };
  Pfn pfn;  ///< the frame holding the data (see the header comment)
  Tag tag = Tag::Read;
  /// The entry holds a device-private page as the kernel's struct page, not the page holding its
  /// data (only with DmirrorParams::faultStoresDevicePage): a copy through it dereferences the
  /// device page's fake physical address.
  bool devicePrivatePage = false;
};

/// struct dmirror: one open handle mirroring one Mm.
class Dmirror final : public HmmMirrorDriver {
 public:
  Dmirror(DmirrorDevice& dev, Mm& mm, const std::string& statsName);
  ~Dmirror() override;
  Dmirror(const Dmirror&) = delete;
  Dmirror& operator=(const Dmirror&) = delete;

  /// HmmMirrorDriver: erase the device PTEs of [start, end], the page at `end` included (dmirror_do_update).
  void zapDeviceRange(Va start, Va end, const MmuNotifierRange& range) override;
  /// HmmMirrorDriver: dmirror_do_fault, store the pfns of a validated range.
  void commitPfns(const HmmRange& range) override;

  Mm& mm() { return mm_; }
  DmirrorDevice& device() { return dev_; }
  HmmMirror& mirror() { return mirror_; }
  /// The device PTE of the page containing `va`, if any (tests).
  std::optional<DmirrorPte> pte(Va va) const;
  std::size_t pteCount() const { return pt_.size(); }
  /// The FLAGS command's value (HMM_DMIRROR_FLAG_*).
  std::uint64_t flags = 0;

 private:
  friend class DmirrorDevice;
  DmirrorDevice& dev_;
  Mm& mm_;
  HmmMirror mirror_;
  std::map<std::uint64_t, DmirrorPte> pt_;  ///< VA >> 12 -> entry (the kernel's xarray pt)
  /// dmirror_do_fault's -EFAULT (a write fault that produced a read-only entry: an owner-matched
  /// read-only device-private page), reported by DmirrorDevice::fault after the mirror returns.
  bool commitFault_ = false;
};

/// struct dmirror_device: /dev/hmm_dmirror<id>. Its FileOperations are the device file's.
class DmirrorDevice final : public FileOperations {
 public:
  /// `type`: DevicePrivate (dmirror0/1) or DeviceCoherent (dmirror2/3). One chunk is
  /// preallocated (dmirror_device_init). Lifetime: must outlive every Mm that maps its pages
  /// (or close all handles first, which evicts them) and every File opened on it.
  DmirrorDevice(PhysMem& pm, unsigned id, MemoryType type, const DmirrorParams& params = {});
  ~DmirrorDevice() override;
  DmirrorDevice(const DmirrorDevice&) = delete;
  DmirrorDevice& operator=(const DmirrorDevice&) = delete;

  /// open("/dev/hmm_dmirror<id>", O_RDWR) by a process whose address space is `mm`
  /// (dmirror_fops_open): a new handle mirroring `mm`. Returns nullptr when the notifier cannot
  /// be inserted (the mm has exited: -EINVAL in the kernel).
  std::shared_ptr<File> open(Mm& mm);

  /// unlocked_ioctl(file, command, &cmd). Generic checks: a file not opened here, an unaligned
  /// cmd.addr, or addr >= addr + (npages << 12) (npages == 0 or overflow) -> Inval; an unknown
  /// command -> Inval. cpages/faults are reset, then per command:
  ///  READ            Ok; Fault (a page cannot be faulted readable, e.g. PROT_NONE, or `ptr` is
  ///                  not writable user memory); Busy (restart budget spent); NoMem.
  ///  WRITE           Ok; Perm (a read-only vma); Fault (as READ, or `ptr` unreadable); Busy.
  ///  MIGRATE_TO_DEV  Ok; Inval (a chunk without vma or without VM_READ; migrate_vma_setup's
  ///                  Inval); NoEnt (a page did not migrate and is not mirrored); Fault (`ptr`).
  ///  MIGRATE_TO_SYS  Ok; Inval (no vma / no VM_READ / setup refused); NoMem (no system page).
  ///  SNAPSHOT        Ok; Busy; Fault (`ptr`); Inval (notifier insert refused).
  ///  EXCLUSIVE       Ok; make_device_exclusive's Fault/NoMem/OpNotSupp; NoEnt (read-back
  ///                  miss); Fault (`ptr`).
  ///  CHECK_EXCLUSIVE Ok, or Perm when an ATOMIC entry remains in the range.
  ///  RELEASE         Ok (all chunks evicted to RAM and unregistered).
  ///  FLAGS           Ok (flags = npages).
  /// On error `cmd` is not written (the kernel does not copy the struct back).
  Errno ioctl(File& file, unsigned command, HmmDmirrorCmd& cmd);

  /// f_op->mmap: insert a zeroed page at every address of the vma (vm_insert_page: the vma
  /// becomes VM_MIXEDMAP). Returns Ok, NoMem, or vm_insert_page's error.
  Errno mmap(File& file, Vma& vma) override;
  /// f_op->release: remove the notifier, drop the device page table, evict the chunks
  /// (evictOnRelease).
  void release(File& file) override;
  const char* name() const override { return name_.c_str(); }

  /// dmirror_device_remove_chunks: migrate every device page back to RAM (migrate_device_range)
  /// and unregister every chunk. Chunks still referenced (pinned) stay registered.
  void removeChunks();

  unsigned id() const { return id_; }
  MemoryType type() const { return devmem_->type(); }
  bool isPrivate() const { return type() == MemoryType::DevicePrivate; }
  /// The owner cookie (pgmap owner, dev_private_owner): this device.
  const void* owner() const { return this; }
  DeviceMemory& devmem() { return *devmem_; }
  MigrateCopier& copier() { return copier_; }
  /// How migration copies take simulated time: after each copy step `wait(mm, ps)` gets the
  /// copier's pending time (mm: the migrating process, nullptr for an eviction) and may delay the
  /// calling thread. Empty (default): the time stays pending in copier().
  void setCopyWait(std::function<void(Mm* mm, std::uint64_t ps)> wait) { copyWait_ = std::move(wait); }
  PhysMem& physMem() { return pm_; }
  const DmirrorParams& params() const { return params_; }
  /// The handle behind `file`, or nullptr.
  Dmirror* handleOf(File& file);
  std::size_t openHandles() const { return handles_.size(); }
  StatsGroup& stats() { return stats_; }
  /// Where the device reports invariant violations (not owned; null: none are reported).
  void attachChecker(InvariantChecker* checker) { checker_ = checker; }
  /// The p2p half (models/devices/dmirror/dmirror_p2p.h), or nullptr (the kernel's device: every
  /// command behaves exactly as lib/test_hmm.c). Set by DmirrorP2pFabric::attach. With it, READ,
  /// WRITE and SNAPSHOT go through the importer pattern and an mmap at
  /// HMM_DMIRROR_P2P_MMAP_OFFSET exports a special vma.
  DmirrorP2p* p2p() { return p2p_.get(); }
  void attachP2p(std::unique_ptr<DmirrorP2p> p2p);
  /// Device pages (4 KiB units) allocated by migrations (the kernel's calloc).
  std::uint64_t calloc() const { return calloc_.value(); }

 private:
  /// The copy step is done: the copy wait (if any) takes the copier's pending time.
  void waitCopies(Mm* mm);
  friend class Dmirror;
  friend class DmirrorP2p;
  // Commands (lib/test_hmm.c names).
  Errno read(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno write(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno migrateToDevice(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno migrateToSystem(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno snapshot(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno exclusive(Dmirror& d, HmmDmirrorCmd& cmd);
  Errno checkAtomic(Dmirror& d, Va start, Va end);
  // Helpers.
  Errno doRead(Dmirror& d, Va start, Va end, Va bounceAddr, std::vector<std::uint8_t>& bounce,
               std::uint64_t& cpages);
  Errno doWrite(Dmirror& d, Va start, Va end, Va bounceAddr, const std::vector<std::uint8_t>& bounce,
                std::uint64_t& cpages);
  Errno fault(Dmirror& d, Va start, Va end, bool write);
  /// Report to the checker a copy through an entry that holds a device-private page.
  void reportDevicePageAccess(Va va, Pfn pfn, const char* command) const;
  /// The tail of MIGRATE_TO_DEV and EXCLUSIVE: read [start, end) back through the device page
  /// table (no faulting: a page the device does not hold makes it -ENOENT) into the user
  /// buffer cmd.ptr, and set cmd.cpages. Returns Ok, NoEnt, or Fault (the copy-out failed).
  Errno readBack(Dmirror& d, Va start, Va end, HmmDmirrorCmd& cmd);
  /// The READ/WRITE loop of lib/test_hmm.c: copy through the device page table under the update
  /// lock; on -ENOENT fault from the first uncopied page (faults++) and copy again.
  Errno copyWithFaults(Dmirror& d, HmmDmirrorCmd& cmd, std::vector<std::uint8_t>& bounce, bool write);
  void migrateAllocAndCopy(MigrateVma& args, Dmirror& d);
  void migrateFinalizeAndMap(MigrateVma& args, Dmirror& d);
  bool devmemFaultAllocAndCopy(MigrateVma& args, Dmirror* d);
  VmFaultResult devmemFault(VmFault& vmf);
  void evictChunk(DeviceMemory::Chunk& chunk);
  /// Erase, in every handle of this device mirroring `mm` except `except`, the pages of
  /// [start, start + n pages) whose entry has `bit` (MIGRATE in src, VALID in dst).
  void eraseMigrated(Mm& mm, const Dmirror* except, Va start, const unsigned long* entries, unsigned long n,
                     unsigned long bit);
  std::uint8_t mkentry(unsigned long entry);
  std::optional<Pfn> allocDevicePage(bool& failFlag);
  /// The bounce buffer of one command (dmirror_bounce_init's kvmalloc), at least `size` bytes
  /// (the command uses the first `size`). Its bytes
  /// are unspecified, as kvmalloc's are: every command writes all of them before reading any
  /// (READ fills it from the device, WRITE copies it from the user, the read-back of MIGRATE and
  /// EXCLUSIVE fills it) and copies nothing out when it fails part-way.
  std::vector<std::uint8_t> takeBounce(std::size_t size);
  /// Give a buffer from takeBounce back for the next command to reuse.
  void returnBounce(std::vector<std::uint8_t>&& bounce);

  PhysMem& pm_;
  unsigned id_;
  std::string name_;
  DmirrorParams params_;
  StatsGroup stats_;
  Counter& calloc_;
  Counter& ioctls_;
  Counter& deviceFaults_;
  Counter& migratedToDev_;
  Counter& migratedToSys_;
  Counter& migrateToRamCalls_;
  MigrateCopier copier_;
  std::function<void(Mm*, std::uint64_t)> copyWait_;  ///< setCopyWait
  std::unique_ptr<DeviceMemory> devmem_;
  std::list<std::unique_ptr<Dmirror>> handles_;
  InvariantChecker* checker_ = nullptr;
  /// The last command's bounce buffer, kept for the next one (takeBounce): a fresh host
  /// allocation per command (fresh, zeroed pages under the sanitizers) cost the fuzzer more
  /// than the command itself. Empty while a command holds it, so a re-entered command allocates.
  std::vector<std::uint8_t> spareBounce_;
  std::unique_ptr<DmirrorP2p> p2p_;  // last: destroyed first (gives back what it imported)
};

}  // namespace hmmsim
