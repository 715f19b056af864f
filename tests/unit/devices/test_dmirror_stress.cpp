// Randomized stress of device migration across a fork family: the address-space stress of
// mm_stress.h with dmirror operations mixed in (MIGRATE_TO_DEV / MIGRATE_TO_SYS on a private
// and a coherent device, device READs compared with the bytes the processes wrote), and the
// whole-system audit after every step. Device-private pages shared after fork exercise the
// anon_vma rmap walk of migrate_vma and migrate_to_ram.

#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <vector>

#include "models/devices/dmirror/dmirror.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "tests/unit/cpu_mmu/mm_stress.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kMaxReadPages = 16;
const Va kBounce(0x7d0000000000ull);  // each process's bounce buffer, outside the stress arena

struct Devices {
  explicit Devices(PhysMem& pm) {
    devs[0] = std::make_unique<DmirrorDevice>(pm, 0, MemoryType::DevicePrivate);
    devs[1] = std::make_unique<DmirrorDevice>(pm, 1, MemoryType::DeviceCoherent);
  }
  std::array<std::unique_ptr<DmirrorDevice>, 2> devs;
  std::uint64_t migrated = 0, readBytesChecked = 0;
};

StressHooks dmirrorHooks(Devices& d) {
  StressHooks h;
  h.onSpawn = [&d](Proc& p) {
    if (p.files.empty() && !p.mm->vmaLookup(kBounce)) {  // the first process maps it; forks inherit it
      const VaResult r = p.mm->mmap(kBounce, kMaxReadPages * kPageSize, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      REQUIRE(r.ok());
    }
    for (auto& dev : d.devs) {
      auto f = dev->open(*p.mm);
      REQUIRE(f);
      p.files.push_back(std::move(f));
    }
  };
  h.deviceOp = [&d](Proc& p, Va a, std::uint64_t n, Rng& rng) {
    if (!p.shadow.empty() && rng.below(4) != 0) {  // mostly where the process wrote
      auto it = p.shadow.lower_bound(a.value());
      if (it == p.shadow.end()) it = p.shadow.begin();
      a = Va(it->first).alignDown(kPageSize);
    }
    const std::size_t which = rng.below(2);
    File& f = *p.files[which];
    HmmDmirrorCmd cmd;
    cmd.addr = a.value();
    cmd.ptr = kBounce.value();
    cmd.npages = std::min<std::uint64_t>(n >> kPageShift, kMaxReadPages);
    switch (rng.below(3)) {
      case 0:
        if (d.devs[which]->ioctl(f, HMM_DMIRROR_MIGRATE_TO_DEV, cmd) == Errno::Ok) d.migrated += cmd.cpages;
        break;
      case 1:
        (void)d.devs[which]->ioctl(f, HMM_DMIRROR_MIGRATE_TO_SYS, cmd);
        break;
      default: {
        // READ through the device (hmm_range_fault + the device's mirror), compared with the
        // bytes the process wrote there.
        if (d.devs[which]->ioctl(f, HMM_DMIRROR_READ, cmd) != Errno::Ok) break;
        std::vector<std::uint8_t> got(cmd.npages * kPageSize);
        REQUIRE(copyFromUser(*p.mm, got.data(), kBounce, got.size()) == Errno::Ok);
        for (auto it = p.shadow.lower_bound(a.value());
             it != p.shadow.end() && it->first < a.value() + got.size(); ++it) {
          INFO(p.mm->name() << " byte at " << Va(it->first) << " read through dmirror" << which);
          REQUIRE(int(got[it->first - a.value()]) == int(it->second));
          ++d.readBytesChecked;
        }
      }
    }
  };
  return h;
}

}  // namespace

TEST_CASE("random address-space operations and dmirror migrations across a fork family stay consistent") {
  for (std::uint64_t seed : {7u, 8u}) {
    PhysMem pm(Stress::ram());
    Devices d(pm);
    {
      Stress s(pm, seed, dmirrorHooks(d));
      runAudited(s, seed, 1500);
      CHECK(s.forks > 3);
      CHECK(s.verifiedBytes > 200);
    }
    CHECK(d.migrated > 50);
    CHECK(d.readBytesChecked > 50);
  }
}
