// dmirror: the kernel's HMM test device. See dmirror.h.

#include "models/devices/dmirror/dmirror.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "hmm/device_exclusive.h"
#include "hmm/hmm.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror_p2p.h"
#include "models/devices/dmirror/dmirror_snapshot_notifier.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

/// Largest bounce buffer a command may need (the kernel's vmalloc fails beyond memory). Unit:
/// bytes. Larger requests return NoMem before touching anything.
constexpr std::uint64_t kMaxBounceBytes = 1ull << 32;

/// Largest bounce buffer a device keeps for the next command (takeBounce). Unit: bytes. Larger
/// ones (benchmarks moving hundreds of MiB) are freed after their command.
constexpr std::size_t kSpareBounceBytes = 4u << 20;

/// The interval of every handle's notifier: [0, ULONG_MAX & PAGE_MASK).
constexpr std::uint64_t kMirrorLength = ~0ull & ~(kPageSize - 1);

HmmMirrorParams mirrorParams(const DmirrorParams& p) {
  HmmMirrorParams mp;
  mp.maxRetries = p.maxRetries;
  mp.faultChunkPages = p.faultChunkPages;
  mp.skipOwnMigrate = true;     // dmirror_interval_invalidate skips its own migrations
  mp.skipOwnExclusive = false;  // dmirror passes a NULL owner to make_device_exclusive
  return mp;
}

/// The end of a migration chunk starting at `addr`: the next 2 MiB boundary (at most 512 pages),
/// clipped to `end` and to the vma.
Va migrateChunkEnd(Va addr, Va end, const Vma& vma) {
  Va next = addr.alignDown(kPmdSize) + kPmdSize;
  if (next > end) next = end;
  if (next > vma.vmEnd) next = vma.vmEnd;
  return next;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Dmirror (one open handle)
// ------------------------------------------------------------------------------------------

Dmirror::Dmirror(DmirrorDevice& dev, Mm& mm, const std::string& statsName)
    : dev_(dev), mm_(mm), mirror_(mm, *this, dev.owner(), mirrorParams(dev.params()), statsName) {}

Dmirror::~Dmirror() {
  mirror_.remove();
}

void Dmirror::zapDeviceRange(Va start, Va end, const MmuNotifierRange& /*range*/) {
  // dmirror_do_update: xa_for_each_range(pt, start >> PAGE_SHIFT, end >> PAGE_SHIFT). The last
  // index of xa_for_each_range is inclusive, so lib/test_hmm.c also erases the device PTE of the
  // page just past the range. That is over-invalidation (always safe), and it is observable: the
  // next READ of that page faults again (faults=), and a MIGRATE_TO_DEV read-back of it finds no
  // entry. The model of the kernel's test device keeps it, so its counters match the kernel's.
  auto it = pt_.lower_bound(start.value() >> kPageShift);
  const auto last = pt_.upper_bound(end.value() >> kPageShift);
  pt_.erase(it, last);
}

void Dmirror::commitPfns(const HmmRange& range) {
  // dmirror_do_fault: hmm_range_fault was asked to populate every page, so each entry is VALID.
  // The kernel WARNs and returns -EFAULT when a write fault yields a read-only entry (hmm_range_fault
  // reports an owner-matched device-private page as it is, without faulting it writable); the
  // mirror's commit hook cannot fail, so the error is recorded and returned by fault().
  const std::uint64_t n = (range.end - range.start) >> kPageShift;
  for (std::uint64_t i = 0; i < n; ++i) {
    const unsigned long e = range.hmmPfns[i];
    HMMSIM_ASSERT(!(e & HMM_PFN_ERROR) && (e & HMM_PFN_VALID),
                  "dmirror: hmm_range_fault returned a non-valid entry for a faulted page");
    DmirrorPte pte;
    pte.pfn = hmmPfnToPfn(e);
    // The correct driver stores the page that holds the data (for an owner-matched
    // device-private page hmmsim's device frame holds it). 6.12 stores the device-private page
    // itself, whose physical address the CPU cannot dereference (faultStoresDevicePage).
    if (dev_.params().faultStoresDevicePage && isDevicePrivate(dev_.physMem().frame(pte.pfn).pgmap))
      pte.devicePrivatePage = true;
    if (e & HMM_PFN_WRITE) {
      pte.tag = DmirrorPte::Tag::Write;
    } else if (range.defaultFlags & HMM_PFN_REQ_WRITE) {
      commitFault_ = true;
      return;
    }
    pt_[(range.start.value() >> kPageShift) + i] = pte;
  }
}

std::optional<DmirrorPte> Dmirror::pte(Va va) const {
  auto it = pt_.find(va.value() >> kPageShift);
  if (it == pt_.end()) return std::nullopt;
  return it->second;
}

// ------------------------------------------------------------------------------------------
// DmirrorDevice
// ------------------------------------------------------------------------------------------

DmirrorDevice::DmirrorDevice(PhysMem& pm, unsigned id, MemoryType type, const DmirrorParams& params)
    : pm_(pm),
      id_(id),
      name_("hmm_dmirror" + std::to_string(id)),
      params_(params),
      stats_(name_),
      calloc_(stats_.counter("calloc", "pages", "device pages allocated for migrations")),
      ioctls_(stats_.counter("ioctls", "calls", "ioctl calls")),
      deviceFaults_(stats_.counter("device_faults", "faults", "dmirror_fault calls that succeeded")),
      migratedToDev_(stats_.counter("migrated_to_dev", "pages", "pages migrated to device memory")),
      migratedToSys_(stats_.counter("migrated_to_sys", "pages", "pages migrated back by MIGRATE_TO_SYS")),
      migrateToRamCalls_(stats_.counter("migrate_to_ram", "faults", "CPU faults on device-private pages")),
      copier_(pm, params.copy, name_ + ".copy") {
  HMMSIM_ASSERT(type == MemoryType::DevicePrivate || type == MemoryType::DeviceCoherent,
                "dmirror: device memory must be private or coherent");
  DeviceMemoryParams dp;
  dp.type = type;
  dp.chunkBytes = params.chunkBytes;
  dp.capacityBytes = params.capacityBytes;
  dp.preallocateFirstChunk = true;
  HMMSIM_ASSERT(dp.check().empty(), "dmirror " << name_ << ": " << dp.check());
  devmem_ = std::make_unique<DeviceMemory>(pm, dp, owner(), name_ + ".devmem");
  devmem_->setMigrateToRam([this](VmFault& vmf) { return devmemFault(vmf); });
}

DmirrorDevice::~DmirrorDevice() {
  HMMSIM_ASSERT(handles_.empty(), "dmirror " << name_ << " destroyed with open handles");
  if (p2p_) p2p_->fabric->detach(*this);
}

void DmirrorDevice::attachP2p(std::unique_ptr<DmirrorP2p> p2p) {
  p2p_ = std::move(p2p);
}

std::shared_ptr<File> DmirrorDevice::open(Mm& mm) {
  if (mm.exited()) return nullptr;
  auto d = std::make_unique<Dmirror>(*this, mm, name_ + ".h" + std::to_string(handles_.size()));
  if (d->mirror_.insert(Va(0), kMirrorLength) != Errno::Ok) return nullptr;
  auto file = openDeviceFile(pm_, *this, FMODE_READ | FMODE_WRITE, "/dev/" + name_);
  file->privateData = d.get();
  handles_.push_back(std::move(d));
  return file;
}

Dmirror* DmirrorDevice::handleOf(File& file) {
  for (auto& h : handles_)
    if (h.get() == file.privateData) return h.get();
  return nullptr;
}

void DmirrorDevice::release(File& file) {
  Dmirror* d = handleOf(file);
  if (!d) return;
  file.privateData = nullptr;
  if (p2p_) p2p_->handleClosed(*d);
  d->mirror_.remove();
  handles_.remove_if([d](const std::unique_ptr<Dmirror>& h) { return h.get() == d; });
  if (params_.evictOnRelease) removeChunks();
}

Errno DmirrorDevice::ioctl(File& file, unsigned command, HmmDmirrorCmd& user) {
  ++ioctls_;
  Dmirror* d = handleOf(file);
  if (!d) return Errno::Inval;
  HmmDmirrorCmd cmd = user;  // copy_from_user
  if (cmd.addr & (kPageSize - 1)) return Errno::Inval;
  if (cmd.addr >= cmd.addr + (cmd.npages << kPageShift)) return Errno::Inval;
  cmd.cpages = 0;
  cmd.faults = 0;
  Errno ret = Errno::Ok;
  switch (command) {
    case HMM_DMIRROR_READ:
      ret = read(*d, cmd);
      break;
    case HMM_DMIRROR_WRITE:
      ret = write(*d, cmd);
      break;
    case HMM_DMIRROR_MIGRATE_TO_DEV:
      ret = migrateToDevice(*d, cmd);
      break;
    case HMM_DMIRROR_MIGRATE_TO_SYS:
      ret = migrateToSystem(*d, cmd);
      break;
    case HMM_DMIRROR_EXCLUSIVE:
      ret = exclusive(*d, cmd);
      break;
    case HMM_DMIRROR_CHECK_EXCLUSIVE:
      ret = checkAtomic(*d, Va(cmd.addr), Va(cmd.addr + (cmd.npages << kPageShift)));
      break;
    case HMM_DMIRROR_SNAPSHOT:
      ret = snapshot(*d, cmd);
      break;
    case HMM_DMIRROR_RELEASE:
      removeChunks();
      break;
    case HMM_DMIRROR_FLAGS:
      d->flags = cmd.npages;
      break;
    default:
      return Errno::Inval;
  }
  if (ret != Errno::Ok) return ret;
  user = cmd;  // copy_to_user
  return Errno::Ok;
}

// ---- READ / WRITE ------------------------------------------------------------------------

std::vector<std::uint8_t> DmirrorDevice::takeBounce(std::size_t size) {
  std::vector<std::uint8_t> bounce = std::move(spareBounce_);
  spareBounce_.clear();                           // a moved-from vector's state is only "valid"
  if (bounce.size() < size) bounce.resize(size);  // never shrunk: growing again would zero it
  return bounce;
}

void DmirrorDevice::returnBounce(std::vector<std::uint8_t>&& bounce) {
  if (bounce.capacity() <= kSpareBounceBytes && bounce.capacity() >= spareBounce_.capacity())
    spareBounce_ = std::move(bounce);
}

Errno DmirrorDevice::readBack(Dmirror& d, Va start, Va end, HmmDmirrorCmd& cmd) {
  std::vector<std::uint8_t> bounce = takeBounce(end - start);
  std::uint64_t cpages = 0;
  d.mirror_.updateLock().lock();
  Errno ret = doRead(d, start, end, start, bounce, cpages);
  d.mirror_.updateLock().unlock();
  if (ret == Errno::Ok && copyToUser(d.mm(), Va(cmd.ptr), bounce.data(), end - start) != Errno::Ok)
    ret = Errno::Fault;
  cmd.cpages = cpages;
  returnBounce(std::move(bounce));
  return ret;
}

Errno DmirrorDevice::doRead(Dmirror& d, Va start, Va end, Va bounceAddr, std::vector<std::uint8_t>& bounce,
                            std::uint64_t& cpages) {
  std::uint8_t* ptr = bounce.data() + ((start - bounceAddr) & ~(kPageSize - 1));
  for (std::uint64_t vpn = start.value() >> kPageShift; vpn < (end.value() >> kPageShift); ++vpn) {
    auto it = d.pt_.find(vpn);
    if (it == d.pt_.end()) return Errno::NoEnt;
    if (it->second.devicePrivatePage) reportDevicePageAccess(Va(vpn << kPageShift), it->second.pfn, "READ");
    pm_.read(paOf(it->second.pfn), ptr, kPageSize);
    ptr += kPageSize;
    ++cpages;
  }
  return Errno::Ok;
}

Errno DmirrorDevice::doWrite(Dmirror& d, Va start, Va end, Va bounceAddr,
                             const std::vector<std::uint8_t>& bounce, std::uint64_t& cpages) {
  const std::uint8_t* ptr = bounce.data() + ((start - bounceAddr) & ~(kPageSize - 1));
  for (std::uint64_t vpn = start.value() >> kPageShift; vpn < (end.value() >> kPageShift); ++vpn) {
    auto it = d.pt_.find(vpn);
    if (it == d.pt_.end() || it->second.tag != DmirrorPte::Tag::Write) return Errno::NoEnt;
    if (it->second.devicePrivatePage) reportDevicePageAccess(Va(vpn << kPageShift), it->second.pfn, "WRITE");
    pm_.write(paOf(it->second.pfn), ptr, kPageSize);
    ptr += kPageSize;
    ++cpages;
  }
  return Errno::Ok;
}

void DmirrorDevice::reportDevicePageAccess(Va va, Pfn pfn, const char* command) const {
  // Rule 2 (no access to a frame that is not there for the CPU): the kernel's memcpy_from_page /
  // memcpy_to_page maps the device-private page, whose physical address is fake, and oopses.
  // hmmsim's device frame holds the bytes, so the copy below still moves the right data.
  if (!checker_) return;
  std::ostringstream cause;
  cause << command << " of " << va << " copies through device-private pfn 0x" << std::hex << pfn.value()
        << std::dec << " (dmirror_do_fault stored the device page instead of the system page behind it)";
  checker_->report(Violation{CheckRule::FreedFrame, 0, name_, paOf(pfn).value(), cause.str()});
}

Errno DmirrorDevice::fault(Dmirror& d, Va start, Va end, bool write) {
  // dmirror_fault: mmget_not_zero failing returns 0 in the kernel (and its READ loop would spin);
  // hmmsim reports Fault for an exited mm.
  if (d.mm().exited()) return Errno::Fault;
  d.commitFault_ = false;
  const Errno ret = hmmStatusToErrno(d.mirror_.fault(start, end, write));
  if (ret == Errno::Ok && d.commitFault_) return Errno::Fault;
  return ret;
}

Errno DmirrorDevice::read(Dmirror& d, HmmDmirrorCmd& cmd) {
  const std::uint64_t size = cmd.npages << kPageShift;
  if (size > kMaxBounceBytes) return Errno::NoMem;
  std::vector<std::uint8_t> bounce = takeBounce(size);
  Errno ret = p2p_ ? p2p_->read(d, cmd, bounce) : copyWithFaults(d, cmd, bounce, false);
  if (ret == Errno::Ok && copyToUser(d.mm(), Va(cmd.ptr), bounce.data(), size) != Errno::Ok)
    ret = Errno::Fault;
  returnBounce(std::move(bounce));
  return ret;
}

Errno DmirrorDevice::copyWithFaults(Dmirror& d, HmmDmirrorCmd& cmd, std::vector<std::uint8_t>& bounce,
                                    bool write) {
  Va start(cmd.addr);
  const Va end(cmd.addr + (cmd.npages << kPageShift));
  std::uint64_t cpages = 0;
  Errno ret;
  for (;;) {
    d.mirror_.updateLock().lock();
    ret = write ? doWrite(d, start, end, Va(cmd.addr), bounce, cpages)
                : doRead(d, start, end, Va(cmd.addr), bounce, cpages);
    d.mirror_.updateLock().unlock();
    if (ret != Errno::NoEnt) break;
    start = Va(cmd.addr + (cpages << kPageShift));
    ret = fault(d, start, end, write);
    if (ret != Errno::Ok) break;
    ++cmd.faults;
    ++deviceFaults_;
  }
  cmd.cpages = cpages;
  return ret;
}

Errno DmirrorDevice::write(Dmirror& d, HmmDmirrorCmd& cmd) {
  const std::uint64_t size = cmd.npages << kPageShift;
  if (size > kMaxBounceBytes) return Errno::NoMem;
  std::vector<std::uint8_t> bounce = takeBounce(size);
  Errno ret = Errno::Fault;
  if (copyFromUser(d.mm(), bounce.data(), Va(cmd.ptr), size) == Errno::Ok)
    ret = p2p_ ? p2p_->write(d, cmd, bounce) : copyWithFaults(d, cmd, bounce, true);
  returnBounce(std::move(bounce));
  return ret;
}

// ---- migration -----------------------------------------------------------------------------

void DmirrorDevice::eraseMigrated(Mm& mm, const Dmirror* except, Va start, const unsigned long* entries,
                                  unsigned long n, unsigned long bit) {
  // Every handle of this device that mirrors `mm` skips the device's own MIGRATE events, so each
  // must drop the pages a migration moved (see the header comment).
  for (auto& h : handles_) {
    if (&h->mm() != &mm || h.get() == except) continue;
    h->mirror_.updateLock().lock();
    for (unsigned long i = 0; i < n; ++i) {
      if (!(entries[i] & bit)) continue;
      const unsigned long nr = (entries[i] & MIGRATE_PFN_COMPOUND) ? kPagesPerPmd : 1;
      for (unsigned long j = 0; j < nr && i + j < n; ++j) h->pt_.erase((start.value() >> kPageShift) + i + j);
    }
    h->mirror_.updateLock().unlock();
  }
}

std::optional<Pfn> DmirrorDevice::allocDevicePage(bool& failFlag) {
  if (failFlag) return std::nullopt;
  auto p = devmem_->allocPage();
  if (p) ++calloc_;
  return p;
}

void DmirrorDevice::migrateAllocAndCopy(MigrateVma& args, Dmirror& d) {
  // dmirror_migrate_alloc_and_copy (THP version).
  for (unsigned long i = 0; i < args.npages; ++i) {
    const unsigned long s = args.src[i];
    if (!(s & MIGRATE_PFN_MIGRATE)) continue;
    const std::optional<Pfn> spage = migratePfnToPfn(s);
    // A device page is never selected with SELECT_SYSTEM (the kernel WARNs and skips it).
    if (spage && pm_.isDevicePfn(*spage)) continue;
    const bool writable = (s & MIGRATE_PFN_WRITE) || (!spage && (args.vma->vmFlags & VM_WRITE));
    const unsigned long wbit = writable ? MIGRATE_PFN_WRITE : 0;
    if (s & MIGRATE_PFN_COMPOUND) {
      std::optional<Pfn> folio;
      if (d.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) {
        d.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;  // one shot
      } else {
        folio = devmem_->allocFolio();
      }
      if (folio) {
        calloc_ += kPagesPerPmd;
        if (spage)
          copier_.copyFolio(*folio, *spage, PhysMem::kPmdOrder);
        else
          copier_.clearFolio(*folio, PhysMem::kPmdOrder);
        args.dst[i] = migratePfn(*folio) | MIGRATE_PFN_COMPOUND | wbit;
        i += kPagesPerPmd - 1;
        continue;
      }
      // Fallback: 4 KiB device pages for every subpage (migrate_vma_pages splits the source).
      for (unsigned long j = 0; j < kPagesPerPmd && i + j < args.npages; ++j) {
        bool never = false;
        auto p = allocDevicePage(never);
        if (!p) continue;
        if (spage)
          copier_.copyFolio(*p, *spage + j);
        else
          copier_.clearFolio(*p);
        args.dst[i + j] = migratePfn(*p) | wbit;
      }
      i += kPagesPerPmd - 1;
      continue;
    }
    bool fail = (d.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) != 0;
    auto p = allocDevicePage(fail);
    if (fail) d.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
    if (!p) continue;
    if (spage)
      copier_.copyFolio(*p, *spage);
    else
      copier_.clearFolio(*p);
    args.dst[i] = migratePfn(*p) | wbit;
  }
}

void DmirrorDevice::migrateFinalizeAndMap(MigrateVma& args, Dmirror& d) {
  // dmirror_migrate_finalize_and_map: map what migrated, under the update lock.
  d.mirror_.updateLock().lock();
  for (unsigned long i = 0; i < args.npages; ++i) {
    if (!(args.src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const auto dpage = migratePfnToPfn(args.dst[i]);
    if (!dpage) continue;
    const unsigned long nr = (args.dst[i] & MIGRATE_PFN_COMPOUND) ? kPagesPerPmd : 1;
    DmirrorPte pte;
    pte.tag = (args.dst[i] & MIGRATE_PFN_WRITE) ? DmirrorPte::Tag::Write : DmirrorPte::Tag::Read;
    const std::uint64_t vpn = (args.start.value() >> kPageShift) + i;
    for (unsigned long j = 0; j < nr; ++j) {
      pte.pfn = *dpage + j;
      d.pt_[vpn + j] = pte;
    }
    migratedToDev_ += nr;
  }
  d.mirror_.updateLock().unlock();
  eraseMigrated(d.mm(), &d, args.start, args.src, args.npages, MIGRATE_PFN_MIGRATE);
}

namespace {
/// struct migrate_vma for one chunk [start, end) of `vma`, with cleared src/dst arrays (the
/// setup common to dmirror_migrate_to_device and dmirror_migrate_to_system).
MigrateVma migrateArgs(Vma& vma, std::vector<unsigned long>& src, std::vector<unsigned long>& dst, Va start,
                       Va end, const void* owner, unsigned long flags) {
  std::fill(src.begin(), src.end(), 0UL);
  std::fill(dst.begin(), dst.end(), 0UL);
  MigrateVma args;
  args.vma = &vma;
  args.src = src.data();
  args.dst = dst.data();
  args.start = start;
  args.end = end;
  args.pgmapOwner = owner;
  args.flags = flags;
  return args;
}
}  // namespace

Errno DmirrorDevice::migrateToDevice(Dmirror& d, HmmDmirrorCmd& cmd) {
  const std::uint64_t size = cmd.npages << kPageShift;
  const Va start(cmd.addr);
  const Va end(cmd.addr + size);
  if (size > kMaxBounceBytes) return Errno::NoMem;
  Mm& mm = d.mm();
  if (mm.exited()) return Errno::Inval;
  std::vector<unsigned long> src(kPagesPerPmd), dst(kPagesPerPmd);
  {
    MmapReadLock lock(mm);
    for (Va addr = start; addr < end;) {
      Vma* vma = mm.vmaLookup(addr);
      if (!vma || !(vma->vmFlags & VM_READ)) return Errno::Inval;
      const Va next = migrateChunkEnd(addr, end, *vma);
      MigrateVma args = migrateArgs(*vma, src, dst, addr, next, owner(),
                                    MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
      const Errno err = migrateVmaSetup(args);
      if (err != Errno::Ok) return err;
      migrateAllocAndCopy(args, d);
      waitCopies(&mm);
      migrateVmaPages(args);
      migrateFinalizeAndMap(args, d);
      migrateVmaFinalize(args);
      addr = next;
    }
  }
  // Return the migrated data so the test can check it was migrated: any page that did not
  // migrate (and is not otherwise mirrored) makes the read-back fail with -ENOENT.
  return readBack(d, start, end, cmd);
}

bool DmirrorDevice::devmemFaultAllocAndCopy(MigrateVma& args, Dmirror* d) {
  // dmirror_devmem_fault_alloc_and_copy (THP version). Returns false when a system page could
  // not be allocated (VM_FAULT_OOM / -ENOMEM).
  bool ok = true;
  for (unsigned long i = 0; i < args.npages; ++i) {
    const unsigned long s = args.src[i];
    const auto spage = migratePfnToPfn(s);
    if (!spage || !(s & MIGRATE_PFN_MIGRATE)) continue;
    const DevPagemap* pg = pm_.frame(*spage).pgmap;
    if (!isDevicePrivate(pg) && !isDeviceCoherent(pg)) continue;  // kernel: WARN_ON + skip
    const unsigned long wbit = (s & MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
    const bool compound = (s & MIGRATE_PFN_COMPOUND) != 0;
    std::optional<Pfn> dpage;
    if (compound) {
      if (d && (d->flags & HMM_DMIRROR_FLAG_FAIL_ALLOC))
        d->flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;  // one shot: fall back to 4 KiB pages
      else
        dpage = migrateAllocSystemFolio(pm_, PhysMem::kPmdOrder);
    } else {
      dpage = migrateAllocSystemFolio(pm_, 0);
    }
    if (compound && !dpage) {
      for (unsigned long j = 0; j < kPagesPerPmd && i + j < args.npages; ++j) {
        auto p = migrateAllocSystemFolio(pm_, 0);
        if (!p) {
          ok = false;
          continue;
        }
        copier_.copyFolio(*p, *spage + j);
        args.dst[i + j] = migratePfn(*p) | wbit;
      }
      i += kPagesPerPmd - 1;
      continue;
    }
    if (!dpage) {
      ok = false;
      continue;
    }
    copier_.copyFolio(*dpage, *spage, compound ? PhysMem::kPmdOrder : 0);
    args.dst[i] = migratePfn(*dpage) | wbit | (compound ? MIGRATE_PFN_COMPOUND : 0);
    if (compound) i += kPagesPerPmd - 1;
  }
  // xa_erase of the migrated range in the device page table(s): done by the callers, which know
  // which handles mirror the mm.
  return ok;
}

Errno DmirrorDevice::migrateToSystem(Dmirror& d, HmmDmirrorCmd& cmd) {
  const std::uint64_t size = cmd.npages << kPageShift;
  const Va start(cmd.addr);
  const Va end(cmd.addr + size);
  Mm& mm = d.mm();
  if (mm.exited()) return Errno::Inval;
  std::vector<unsigned long> src(kPagesPerPmd), dst(kPagesPerPmd);
  MmapReadLock lock(mm);
  Errno ret = Errno::Ok;
  for (Va addr = start; addr < end;) {
    Vma* vma = mm.vmaLookup(addr);
    if (!vma || !(vma->vmFlags & VM_READ)) return Errno::Inval;
    const Va next = migrateChunkEnd(addr, end, *vma);
    MigrateVma args =
        migrateArgs(*vma, src, dst, addr, next, owner(),
                    (isPrivate() ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT) |
                        MIGRATE_VMA_SELECT_COMPOUND);
    const Errno err = migrateVmaSetup(args);
    if (err != Errno::Ok) return err;
    if (!devmemFaultAllocAndCopy(args, &d)) ret = Errno::NoMem;
    waitCopies(&mm);
    // Erase the device mappings of the pages being migrated back (xa_erase under the lock).
    eraseMigrated(mm, nullptr, addr, args.dst, args.npages, MIGRATE_PFN_VALID);
    migrateVmaPages(args);
    for (unsigned long i = 0; i < args.npages; ++i)
      if ((args.src[i] & MIGRATE_PFN_VALID) && (args.src[i] & MIGRATE_PFN_MIGRATE)) {
        const unsigned long nr = (args.src[i] & MIGRATE_PFN_COMPOUND) ? kPagesPerPmd : 1;
        cmd.cpages += nr;
        migratedToSys_ += nr;
      }
    migrateVmaFinalize(args);
    if (ret != Errno::Ok) return ret;
    addr = next;
  }
  return ret;
}

VmFaultResult DmirrorDevice::devmemFault(VmFault& vmf) {
  // dmirror_devmem_fault (migrate_to_ram): the faulting page, or its whole folio when PMD-mapped.
  ++migrateToRamCalls_;
  const Pfn page = *vmf.page;
  Mm& mm = *vmf.vma->vmMm;
  // The kernel takes the whole folio when it is PMD-mapped. hmmsim's fault path splits a
  // device-private PMD entry into ptes before calling migrate_to_ram (models/cpu_mmu/memory.cpp),
  // so the folio is recognised by its order: its 512 pages are still mapped contiguously, and
  // the whole 2 MiB range is migrated back as the kernel's newest dmirror does.
  bool wholeFolio = false;
  Va start = vmf.address;
  if (pm_.folioOrder(page) == PhysMem::kPmdOrder) {
    const Pfn head = pm_.compoundHead(page);
    const Va folioStart = vmf.address - ((page - head) << kPageShift);
    wholeFolio = folioStart.isAligned(kPmdSize) && folioStart >= vmf.vma->vmStart &&
                 folioStart + kPmdSize <= vmf.vma->vmEnd;
    if (wholeFolio) start = folioStart;
  }
  const Va end = wholeFolio ? start + kPmdSize : start + kPageSize;
  const std::uint64_t n = (end - start) >> kPageShift;
  std::vector<unsigned long> src(n), dst(n);
  MigrateVma args;
  args.vma = vmf.vma;
  args.src = src.data();
  args.dst = dst.data();
  args.start = start;
  args.end = end;
  args.pgmapOwner = owner();
  args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_COMPOUND;
  args.faultPage = page;
  if (migrateVmaSetup(args) != Errno::Ok) return VmFaultResult::Sigbus;
  const bool ok = devmemFaultAllocAndCopy(args, nullptr);
  waitCopies(vmf.vma->vmMm);
  // Erase the range from every handle mirroring this mm (see the header comment).
  eraseMigrated(mm, nullptr, start, dst.data(), n, MIGRATE_PFN_VALID);
  migrateVmaPages(args);
  migrateVmaFinalize(args);
  return ok ? VmFaultResult::None : VmFaultResult::Oom;
}

// ---- SNAPSHOT ------------------------------------------------------------------------------

std::uint8_t DmirrorDevice::mkentry(unsigned long entry) {
  if (entry & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
  if (!(entry & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
  const Pfn pfn = hmmPfnToPfn(entry);
  std::uint8_t perm = HMM_DMIRROR_PROT_NONE;
  const DevPagemap* pg = pm_.isDevicePfn(pfn) ? pm_.frame(pfn).pgmap : nullptr;
  if (isDevicePrivate(pg)) {
    perm = pg->owner == owner() ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
  } else if (isDeviceCoherent(pg)) {
    perm = pg->owner == owner() ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
  } else if (pm_.isZeroPfn(pfn)) {
    perm = HMM_DMIRROR_PROT_ZERO;
  }
  perm |= (entry & HMM_PFN_WRITE) ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
  const unsigned order = hmmPfnToMapOrder(entry);
  if (order + kPageShift == kPmdShift)
    perm |= HMM_DMIRROR_PROT_PMD;
  else if (order + kPageShift == kPudShift)
    perm |= HMM_DMIRROR_PROT_PUD;
  return perm;
}

Errno DmirrorDevice::snapshot(Dmirror& d, HmmDmirrorCmd& cmd) {
  if (p2p_) return p2p_->snapshot(d, cmd);
  Mm& mm = d.mm();
  if (mm.exited()) return Errno::Inval;
  const Va start(cmd.addr);
  const Va end(cmd.addr + (cmd.npages << kPageShift));
  std::vector<unsigned long> pfns(kDmirrorSnapshotChunkPages);
  std::vector<std::uint8_t> perm(kDmirrorSnapshotChunkPages);
  Va uptr(cmd.ptr);
  DmirrorSnapshotNotifierOps ops(d.mirror_.updateLock());
  for (Va addr = start; addr < end;) {
    const Va next = std::min(end, addr + (std::uint64_t(kDmirrorSnapshotChunkPages) << kPageShift));
    const std::uint64_t n = (next - addr) >> kPageShift;
    // dmirror_range_snapshot: a notifier on exactly this range for the duration.
    MmuIntervalNotifier sub;
    Errno ret = mmuIntervalNotifierInsert(sub, mm, addr, next - addr, ops);
    if (ret != Errno::Ok) return ret;
    HmmRange range;
    range.notifier = &sub;
    range.start = addr;
    range.end = next;
    range.hmmPfns = pfns.data();
    range.devPrivateOwner = owner();
    unsigned retries = 0;
    for (;;) {
      if (retries++ > params_.maxRetries) {
        ret = Errno::Busy;
        break;
      }
      std::fill(pfns.begin(), pfns.end(), 0UL);
      range.notifierSeq = sub.readBegin();
      HmmStatus st;
      {
        MmapReadLock lock(mm);
        st = hmmRangeFault(range, &d.mirror_.hmmStats());
      }
      if (st == HmmStatus::Busy) continue;
      if (st != HmmStatus::Ok) {
        ret = hmmStatusToErrno(st);
        break;
      }
      d.mirror_.updateLock().lock();
      if (sub.readRetry(range.notifierSeq)) {
        d.mirror_.updateLock().unlock();
        continue;
      }
      for (std::uint64_t i = 0; i < n; ++i) perm[i] = mkentry(pfns[i]);
      d.mirror_.updateLock().unlock();
      break;
    }
    sub.remove();
    if (ret != Errno::Ok) return ret;
    if (copyToUser(mm, uptr, perm.data(), n) != Errno::Ok) return Errno::Fault;
    cmd.cpages += n;
    uptr = uptr + n;
    addr = next;
  }
  return Errno::Ok;
}

// ---- EXCLUSIVE -----------------------------------------------------------------------------

Errno DmirrorDevice::exclusive(Dmirror& d, HmmDmirrorCmd& cmd) {
  const std::uint64_t size = cmd.npages << kPageShift;
  const Va start(cmd.addr);
  const Va end(cmd.addr + size);
  if (size > kMaxBounceBytes) return Errno::NoMem;
  Mm& mm = d.mm();
  if (mm.exited()) return Errno::Inval;
  {
    MmapReadLock lock(mm);
    for (Va addr = start; addr < end; addr = addr + kPageSize) {
      const DeviceExclusiveResult r = makeDeviceExclusive(mm, addr, nullptr);
      if (!r.ok()) return r.err;
      // dmirror_atomic_map: store an ATOMIC entry while the folio is still locked.
      d.mirror_.updateLock().lock();
      d.pt_[addr.value() >> kPageShift] = DmirrorPte{r.page, DmirrorPte::Tag::Atomic};
      d.mirror_.updateLock().unlock();
      deviceExclusiveRelease(mm, r.folio);
    }
  }
  // Return the data so the test can check it.
  return readBack(d, start, end, cmd);
}

Errno DmirrorDevice::checkAtomic(Dmirror& d, Va start, Va end) {
  d.mirror_.updateLock().lock();
  Errno ret = Errno::Ok;
  for (auto it = d.pt_.lower_bound(start.value() >> kPageShift);
       it != d.pt_.end() && it->first < (end.value() >> kPageShift); ++it)
    if (it->second.tag == DmirrorPte::Tag::Atomic) {
      ret = Errno::Perm;
      break;
    }
  d.mirror_.updateLock().unlock();
  return ret;
}

void DmirrorDevice::waitCopies(Mm* mm) {
  if (copyWait_ && copier_.pendingPs() != 0) copyWait_(mm, copier_.takePendingPs());
}

// ---- chunks --------------------------------------------------------------------------------

void DmirrorDevice::evictChunk(DeviceMemory::Chunk& chunk) {
  // dmirror_device_evict_chunk: migrate every allocated page of the chunk back to RAM.
  const unsigned long npages = chunk.pgmap.nrPages;
  std::vector<unsigned long> src(npages), dst(npages);
  migrateDeviceRange(pm_, src.data(), chunk.pgmap.pfnFirst, npages);
  for (unsigned long i = 0; i < npages; ++i) {
    const auto spage = migratePfnToPfn(src[i]);
    if (!spage || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const bool compound = (src[i] & MIGRATE_PFN_COMPOUND) != 0;
    const unsigned order = compound ? PhysMem::kPmdOrder : 0;
    auto dpage = migrateAllocSystemFolio(pm_, order);
    HMMSIM_ASSERT(dpage, "dmirror " << name_ << ": no system memory to evict device memory "
                                    << "(the kernel allocates with __GFP_NOFAIL)");
    copier_.copyFolio(*dpage, *spage, order);
    dst[i] = migratePfn(*dpage) | (src[i] & MIGRATE_PFN_WRITE) | (compound ? MIGRATE_PFN_COMPOUND : 0);
  }
  waitCopies(nullptr);
  migrateDevicePages(pm_, src.data(), dst.data(), npages);
  migrateDeviceFinalize(pm_, src.data(), dst.data(), npages);
}

void DmirrorDevice::removeChunks() {
  // dmirror_device_remove_chunks.
  for (std::size_t i = 0; i < devmem_->chunkCount(); ++i) {
    DeviceMemory::Chunk& c = devmem_->chunk(i);
    if (!c.live) continue;
    devmem_->beginRemove(i);
    // p2p: importers of the chunk's pages through special vmas are revoked before the pages go
    // (those in anonymous vmas are invalidated by the eviction's MIGRATE rounds).
    if (p2p_) p2p_->revokeChunk(i);
    evictChunk(c);
    devmem_->removeChunk(i);  // Busy (a pinned page) leaves the chunk registered
  }
}

// ---- mmap ----------------------------------------------------------------------------------

Errno DmirrorDevice::mmap(File& /*file*/, Vma& vma) {
  if (vma.vmPgoff >= (HMM_DMIRROR_P2P_MMAP_OFFSET >> kPageShift))
    return p2p_ ? p2p_->mmapSpecial(vma) : Errno::Inval;
  // dmirror_fops_mmap: a zeroed page at every address, inserted with vm_insert_page.
  for (Va addr = vma.vmStart; addr < vma.vmEnd; addr = addr + kPageSize) {
    auto page = pm_.allocFrame(0);
    if (!page) return Errno::NoMem;
    pm_.zeroFrame(*page);
    const Errno ret = vmInsertPage(vma, addr, *page);
    pm_.putPage(*page);  // put_page (or __free_page on failure): the pte holds its own reference
    if (ret != Errno::Ok) return ret;
  }
  return Errno::Ok;
}

}  // namespace hmmsim
