#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;

namespace {

PhysMemParams smallRam(std::uint64_t bytes = 64ull << 20) {
  PhysMemParams p;
  p.ramBase = Pa(0);
  p.ramSize = bytes;
  return p;
}

// Stand-in pgmap identities: PhysMem only stores and compares the pointer.
DevPagemap* fakePgmap(int& storage) {
  return reinterpret_cast<DevPagemap*>(&storage);
}

struct RecordingHook : FrameFreeHook {
  std::vector<Pfn> freed;
  std::vector<unsigned> orderAtFree;
  PhysMem* pm = nullptr;
  void folioFree(Pfn head) override {
    freed.push_back(head);
    orderAtFree.push_back(pm->folioOrder(head));
  }
};

}  // namespace

TEST_CASE("allocFrame returns a live order-0 frame with refcount 1 inside RAM") {
  PhysMem pm(smallRam());
  const auto p = pm.allocFrame(0);
  REQUIRE(p);
  CHECK(pm.isRam(*p));
  CHECK(*p != pm.zeroPfn());
  const Frame& f = pm.frame(*p);
  CHECK(f.refcount() == 1);
  CHECK(f.mapcount == 0);
  CHECK_FALSE(f.isCompound());
  CHECK_FALSE(f.isBuddy());
  CHECK(f.pgmap == nullptr);
  CHECK(f.generation() != 0);
}

TEST_CASE("putPage at refcount one frees the frame and changes its generation") {
  PhysMem pm(smallRam());
  const Pfn p = *pm.allocFrame(0);
  const std::uint64_t free0 = pm.freePages();
  const std::uint64_t gen = pm.generationOf(p);
  CHECK(pm.putPage(p));
  CHECK(pm.frame(p).refcount() == 0);
  CHECK(pm.generationOf(p) != gen);
  CHECK(pm.freePages() == free0 + 1);
  CHECK(pm.stats().counterValue("frames_freed") == 1);
}

TEST_CASE("getPage keeps a frame alive until the last putPage") {
  PhysMem pm(smallRam());
  const Pfn p = *pm.allocFrame(0);
  pm.getPage(p);
  pm.getPage(p);
  CHECK(pm.frame(p).refcount() == 3);
  CHECK_FALSE(pm.putPage(p));
  CHECK_FALSE(pm.putPage(p));
  CHECK(pm.frame(p).refcount() == 1);
  CHECK(pm.putPage(p));
}

TEST_CASE("a reallocated frame gets a generation it never had before") {
  PhysMem pm(smallRam(2ull << 20));
  std::set<std::uint64_t> seen;
  Pfn first = *pm.allocFrame(0);
  seen.insert(pm.generationOf(first));
  pm.putPage(first);
  seen.insert(pm.generationOf(first));
  for (int i = 0; i < 10; ++i) {
    const Pfn p = *pm.allocFrame(0);
    CHECK(p == first);  // LIFO: the frame just freed comes back
    CHECK(seen.insert(pm.generationOf(p)).second);
    pm.putPage(p);
    CHECK(seen.insert(pm.generationOf(p)).second);
  }
}

TEST_CASE("references taken on a tail page count on the folio head") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  CHECK(pm.frame(h).isHead());
  CHECK(pm.frame(h).order() == 9);
  CHECK(pm.frame(h + 100).isTail());
  CHECK(pm.compoundHead(h + 100) == h);
  CHECK(pm.folioOrder(h + 511) == 9);
  pm.getPage(h + 100);
  CHECK(pm.frame(h).refcount() == 2);
  CHECK(pm.frame(h + 100).refcount() == 0);
  CHECK_FALSE(pm.putPage(h + 7));
  CHECK(pm.putPage(h + 300));
  CHECK_FALSE(pm.frame(h + 100).isTail());
  CHECK(pm.freePages() == pm.ramPages() - 1);  // only the zero page is in use
}

TEST_CASE("untouched frames read as zeros") {
  PhysMem pm(smallRam());
  const Pfn p = *pm.allocFrame(0);
  std::vector<std::uint8_t> buf(kPageSize * 3, 0xaa);
  pm.read(paOf(p), buf.data(), buf.size());
  for (auto b : buf) REQUIRE(b == 0);
  CHECK_FALSE(pm.isTouched(p));
  CHECK(pm.dataPages() == 0);
}

TEST_CASE("a write crossing a page boundary lands in both frames and reads back") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(1);
  std::vector<std::uint8_t> src(200);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = std::uint8_t(i + 1);
  const Pa at = paOf(h) + (kPageSize - 100);
  pm.write(at, src.data(), src.size());
  CHECK(pm.isTouched(h));
  CHECK(pm.isTouched(h + 1));
  CHECK(pm.dataPages() == 2);
  std::vector<std::uint8_t> back(200);
  pm.read(at, back.data(), back.size());
  CHECK(back == src);
  std::uint8_t before = 0xff;
  pm.read(at - 1, &before, 1);
  CHECK(before == 0);
}

TEST_CASE("copyFrame of an untouched source leaves the destination untouched") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0);
  const std::uint8_t x = 7;
  pm.write(paOf(dst), &x, 1);
  REQUIRE(pm.isTouched(dst));
  pm.copyFrame(dst, src);
  CHECK_FALSE(pm.isTouched(dst));
  CHECK_FALSE(pm.isTouched(src));
  std::uint8_t y = 1;
  pm.read(paOf(dst), &y, 1);
  CHECK(y == 0);
}

TEST_CASE("copyFrame copies every byte of a touched source") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0);
  std::vector<std::uint8_t> page(kPageSize);
  for (std::size_t i = 0; i < page.size(); ++i) page[i] = std::uint8_t(i * 7);
  pm.write(paOf(src), page.data(), page.size());
  pm.copyFrame(dst, src);
  std::vector<std::uint8_t> back(kPageSize);
  pm.read(paOf(dst), back.data(), back.size());
  CHECK(back == page);
  CHECK(pm.frameData(dst) == pm.frameData(src));  // shared copy-on-write until either is written
}

TEST_CASE("zeroFrame drops the buffer and the frame reads zeros") {
  PhysMem pm(smallRam());
  const Pfn p = *pm.allocFrame(0);
  const std::uint32_t v = 0xdeadbeef;
  pm.write(paOf(p) + 64, &v, sizeof v);
  pm.zeroFrame(p);
  CHECK_FALSE(pm.isTouched(p));
  CHECK(pm.dataPages() == 0);
  std::uint32_t back = 1;
  pm.read(paOf(p) + 64, &back, sizeof back);
  CHECK(back == 0);
}

TEST_CASE("a freed frame's bytes are gone when it is allocated again") {
  PhysMem pm(smallRam());
  const Pfn p = *pm.allocFrame(0);
  const std::uint8_t x = 0x5a;
  pm.write(paOf(p) + 9, &x, 1);
  pm.putPage(p);
  CHECK(pm.dataPages() == 0);
  const Pfn q = *pm.allocFrame(0);
  REQUIRE(q == p);
  CHECK_FALSE(pm.isTouched(q));
}

TEST_CASE("THP split keeps every subpage's data, owner, flags and mapcount") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  Frame& hf = pm.frame(h);
  int anonVma = 0;
  hf.mapping = &anonVma;
  hf.index = 1000;
  hf.set(kFrameAnon);
  hf.set(kFrameDirty);
  hf.set(kFrameLocked);
  // PTE-mapped THP: every subpage mapped once, each mapping holding a folio reference, plus
  // the caller's reference.
  for (unsigned i = 0; i < 512; ++i) pm.frame(h + i).mapcount = 1;
  pm.folioRefAdd(h, 512);
  for (unsigned i = 0; i < 512; i += 37) {
    const std::uint32_t v = 0x1000 + i;
    pm.write(paOf(h + i) + 8, &v, sizeof v);
  }
  REQUIRE(pm.splitFolio(h) == Errno::Ok);
  for (unsigned i = 0; i < 512; ++i) {
    const Frame& f = pm.frame(h + i);
    REQUIRE_FALSE(f.isCompound());
    REQUIRE(f.order() == 0);
    REQUIRE(pm.compoundHead(h + i) == h + i);
    REQUIRE(f.mapcount == 1);
    REQUIRE(f.refcount() == (i == 0 ? 2 : 1));
    REQUIRE(f.mapping == &anonVma);
    REQUIRE(f.index == 1000 + i);
    REQUIRE(f.isAnon());
    REQUIRE(f.isDirty());
    REQUIRE(f.isLocked() == (i == 0));  // the caller keeps the head locked; tails are unlocked
  }
  for (unsigned i = 0; i < 512; i += 37) {
    std::uint32_t v = 0;
    pm.read(paOf(h + i) + 8, &v, sizeof v);
    REQUIRE(v == 0x1000 + i);
  }
  CHECK(pm.stats().counterValue("folio_splits") == 1);
}

TEST_CASE("THP split frees the subpages nobody maps") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  const std::uint64_t free0 = pm.freePages();
  // Only the first half stays mapped (the other half was munmapped).
  for (unsigned i = 0; i < 256; ++i) pm.frame(h + i).mapcount = 1;
  pm.folioRefAdd(h, 256);
  const std::uint64_t genTail = pm.generationOf(h + 300);
  REQUIRE(pm.splitFolio(h) == Errno::Ok);
  CHECK(pm.freePages() == free0 + 256);
  CHECK(pm.frame(h + 300).refcount() == 0);
  CHECK(pm.generationOf(h + 300) != genTail);
  CHECK(pm.frame(h + 255).refcount() == 1);
}

TEST_CASE("THP split with an extra pin returns Busy and changes nothing") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  for (unsigned i = 0; i < 512; ++i) pm.frame(h + i).mapcount = 1;
  pm.folioRefAdd(h, 512 + 1);  // one GUP pin too many
  CHECK(pm.splitFolio(h) == Errno::Busy);
  CHECK(pm.frame(h).isHead());
  CHECK(pm.frame(h).refcount() == 514);
  CHECK(pm.compoundHead(h + 5) == h);
}

TEST_CASE("THP split of a folio still mapped by a PMD returns Busy") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  pm.frame(h).setEntireMapcount(1);
  pm.getPage(h);
  CHECK(pm.splitFolio(h) == Errno::Busy);
  CHECK(pm.frame(h).isHead());
}

TEST_CASE("splitFolio refuses order-0 frames and 1 GiB folios with Inval") {
  PhysMem pm(smallRam(2ull << 30));
  const Pfn p = *pm.allocFrame(0);
  CHECK(pm.splitFolio(p) == Errno::Inval);
  const Pfn g = *pm.allocFrame(18);
  CHECK(pm.splitFolio(g) == Errno::Inval);
  CHECK(pm.splitFolio(pm.zeroPfn()) == Errno::Inval);
}

TEST_CASE("the zero page is reserved, reads zeros and is never freed") {
  PhysMem pm(smallRam());
  const Pfn z = pm.zeroPfn();
  CHECK(pm.isRam(z));
  CHECK(pm.frame(z).isReserved());
  CHECK(pm.frame(z).isZeroPage());
  for (int i = 0; i < 5; ++i) CHECK_FALSE(pm.putPage(z));
  pm.getPage(z);
  CHECK(pm.frame(z).refcount() == 1);
  // The allocator never hands it out.
  std::set<std::uint64_t> got;
  while (auto p = pm.allocFrame(0)) got.insert(p->value());
  CHECK(got.count(z.value()) == 0);
  CHECK(got.size() == pm.ramPages() - 1);
}

TEST_CASE("the huge zero folio is an order-9 reserved folio allocated once") {
  PhysMem pm(smallRam());
  const std::uint64_t free0 = pm.freePages();
  const auto hz = pm.hugeZeroPfn();
  REQUIRE(hz);
  CHECK(pm.freePages() == free0 - 512);
  CHECK(pm.hugeZeroPfn() == hz);
  CHECK(pm.freePages() == free0 - 512);
  CHECK(hz->value() % 512 == 0);
  CHECK(pm.folioOrder(*hz + 3) == 9);
  CHECK(pm.isHugeZeroPfn(*hz + 511));
  CHECK_FALSE(pm.isHugeZeroPfn(*hz + 512));
  CHECK(pm.frame(*hz).isReserved());
  CHECK_FALSE(pm.putPage(*hz + 1));
  CHECK(pm.frame(*hz).isHead());
}

TEST_CASE("the huge zero folio is absent when no 2 MiB block is free") {
  PhysMem pm(smallRam(2ull << 20));  // the zero page already broke the only 2 MiB block
  CHECK_FALSE(pm.hugeZeroPfn());
}

TEST_CASE("device ranges sit above RAM with pgmap set and are never returned by allocFrame") {
  PhysMem pm(smallRam(8ull << 20));
  int a = 0, b = 0;
  const Pfn d1 = pm.addDeviceRange(fakePgmap(a), 1000, nullptr);
  const Pfn d2 = pm.addDeviceRange(fakePgmap(b), 512, nullptr);
  CHECK(d1 >= pm.ramEndPfn());
  CHECK(d2 >= d1 + 1000);
  CHECK(d1.value() % (1u << 18) == 0);
  CHECK(pm.isDevicePfn(d1 + 999));
  CHECK_FALSE(pm.pfnValid(d1 + 1000));
  CHECK(pm.deviceRangePages(d1) == 1000);
  CHECK(pm.frame(d1 + 5).pgmap == fakePgmap(a));
  CHECK(pm.frame(d2).pgmap == fakePgmap(b));
  CHECK(pm.frame(d2).isZoneDevice());
  CHECK(pm.frame(d2).refcount() == 0);
  while (auto p = pm.allocFrame(0)) REQUIRE(pm.isRam(*p));
}

TEST_CASE("a device folio whose refcount drops to zero goes to the range's free hook") {
  PhysMem pm(smallRam());
  int a = 0;
  RecordingHook hook;
  hook.pm = &pm;
  const Pfn d = pm.addDeviceRange(fakePgmap(a), 2048, &hook);
  pm.zoneDevicePageInit(d + 512, 9);
  Frame& h = pm.frame(d + 512);
  CHECK(h.refcount() == 1);
  CHECK(h.isLocked());
  CHECK(pm.compoundHead(d + 700) == d + 512);
  int owner = 0;
  h.mapping = &owner;
  h.set(kFrameAnon);
  const std::uint64_t gen = pm.generationOf(d + 600);
  const std::uint64_t free0 = pm.freePages();
  pm.getPage(d + 600);
  CHECK_FALSE(pm.putPage(d + 512));
  CHECK(hook.freed.empty());
  CHECK(pm.putPage(d + 600));
  REQUIRE(hook.freed.size() == 1);
  CHECK(hook.freed[0] == d + 512);
  CHECK(hook.orderAtFree[0] == 9);
  CHECK(pm.frame(d + 512).mapping == nullptr);
  CHECK_FALSE(pm.frame(d + 512).isAnon());
  CHECK(pm.frame(d + 512).pgmap == fakePgmap(a));
  CHECK(pm.generationOf(d + 600) != gen);
  CHECK(pm.freePages() == free0);              // RAM untouched
  CHECK(pm.compoundHead(d + 700) == d + 700);  // dissolved after the hook
  // The driver can hand it out again.
  pm.zoneDevicePageInit(d + 512);
  CHECK(pm.frame(d + 512).refcount() == 1);
}

TEST_CASE("removeDeviceRange refuses while a device frame is referenced") {
  PhysMem pm(smallRam());
  int a = 0;
  const Pfn d = pm.addDeviceRange(fakePgmap(a), 64, nullptr);
  pm.zoneDevicePageInit(d + 3);
  CHECK(pm.removeDeviceRange(d) == Errno::Busy);
  CHECK(pm.pfnValid(d + 3));
  CHECK(pm.removeDeviceRange(d + 1) == Errno::Inval);
  pm.putPage(d + 3);
  CHECK(pm.removeDeviceRange(d) == Errno::Ok);
  CHECK_FALSE(pm.pfnValid(d));
  CHECK(pm.removeDeviceRange(d) == Errno::Inval);
  // The space is reused by the next range.
  CHECK(pm.addDeviceRange(fakePgmap(a), 64, nullptr) == d);
}

TEST_CASE("device frames hold real bytes") {
  PhysMem pm(smallRam());
  int a = 0;
  const Pfn d = pm.addDeviceRange(fakePgmap(a), 16, nullptr);
  const char msg[] = "vram";
  pm.write(paOf(d + 2) + 1, msg, sizeof msg);
  char back[sizeof msg] = {};
  pm.read(paOf(d + 2) + 1, back, sizeof back);
  CHECK(std::strcmp(back, msg) == 0);
  CHECK(pm.isTouched(d + 2));
}

TEST_CASE("allocation is a deterministic function of the call sequence") {
  auto run = [] {
    PhysMem pm(smallRam(64ull << 20));
    std::vector<std::uint64_t> out;
    std::vector<Pfn> live;
    std::uint64_t x = 12345;
    for (int i = 0; i < 2000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const unsigned pick = unsigned(x >> 60);
      if (pick < 6 && !live.empty()) {
        const std::size_t k = (x >> 20) % live.size();
        pm.putPage(live[k]);
        live.erase(live.begin() + long(k));
      } else {
        const unsigned order = pick == 15 ? 9 : (pick == 14 ? 3 : 0);
        if (auto p = pm.allocFrame(order)) {
          live.push_back(*p);
          out.push_back(p->value());
          out.push_back(pm.generationOf(*p));
        }
      }
    }
    out.push_back(pm.freePages());
    return out;
  };
  const auto a = run();
  const auto b = run();
  CHECK(a.size() > 1000);
  CHECK(a == b);
}

TEST_CASE("OOM returns nullopt and changes nothing") {
  PhysMem pm(smallRam(4ull << 20));
  const std::uint64_t free0 = pm.freePages();
  REQUIRE(pm.allocFrame(9));  // the second 2 MiB block
  const std::uint64_t free1 = pm.freePages();
  CHECK(free1 == free0 - 512);
  CHECK_FALSE(pm.allocFrame(9));
  CHECK_FALSE(pm.allocFrame(18));
  CHECK(pm.freePages() == free1);
  CHECK(pm.stats().counterValue("alloc_failures") == 2);
  // The smaller blocks are still all there.
  std::uint64_t n = 0;
  while (pm.allocFrame(0)) ++n;
  CHECK(n == free1);
  CHECK_FALSE(pm.allocFrame(0));
}

TEST_CASE("freeing every page of a broken-up 1 GiB block merges it back") {
  PhysMem pm(smallRam(2ull << 30));
  // Block 0 holds the zero page. Taking all of its 2 MiB chunks, 20 more, and 1000 small pages
  // breaks block 1 apart at every order.
  std::vector<Pfn> folios;
  for (unsigned i = 0; i < 511 + 20; ++i) folios.push_back(*pm.allocFrame(9));
  for (unsigned i = 0; i < 1000; ++i) folios.push_back(*pm.allocFrame(i % 5 == 0 ? 3 : 0));
  CHECK_FALSE(pm.allocFrame(18));
  // Free in a scrambled order so merges happen in every direction.
  for (std::size_t i = 0; i < folios.size(); ++i) std::swap(folios[i], folios[(i * 7919) % folios.size()]);
  for (Pfn p : folios) pm.putPage(p);
  CHECK(pm.freePages() == pm.ramPages() - 1);
  REQUIRE(pm.allocFrame(18));
  CHECK_FALSE(pm.allocFrame(18));
  // Block 0 merged back as far as the zero page allows: its upper half is whole.
  CHECK(pm.allocFrame(17));
}

TEST_CASE("a 1 GiB folio resolves tails to its head without creating all their metadata") {
  PhysMem pm(smallRam(4ull << 30));
  const std::uint64_t meta0 = pm.metadataBytes();
  const Pfn g = *pm.allocFrame(18);
  CHECK(g.value() % (1u << 18) == 0);
  CHECK(pm.metadataBytes() - meta0 <= 512 * 64);  // only the head chunk
  CHECK(pm.compoundHead(g + 200000) == g);
  CHECK(pm.folioOrder(g + 200000) == 18);
  CHECK(pm.frame(g + 200000).isTail());  // created lazily as a tail
  const std::uint64_t gen = pm.generationOf(g + 200000);
  const std::uint8_t x = 1;
  pm.write(paOf(g + 131072), &x, 1);
  CHECK(pm.putPage(g + 5));
  CHECK(pm.generationOf(g + 200000) != gen);
  CHECK_FALSE(pm.frame(g + 200000).isTail());
  CHECK_FALSE(pm.isTouched(g + 131072));
}

TEST_CASE("a 64 GiB PhysMem starts with under 1 MiB of metadata") {
  PhysMemParams p;
  p.ramSize = 64ull << 30;
  PhysMem pm(p);
  CHECK(pm.ramPages() == (64ull << 30) / kPageSize);
  CHECK(pm.freePages() == pm.ramPages() - 1);
  CHECK(pm.metadataBytes() < (1u << 20));
}

TEST_CASE("RAM need not start at physical address zero") {
  PhysMemParams p;
  p.ramBase = Pa(6ull << 30);
  p.ramSize = 3ull << 30;
  PhysMem pm(p);
  CHECK(pm.zeroPfn() == pfnOf(p.ramBase));
  const auto g = pm.allocFrame(18);
  REQUIRE(g);
  CHECK(g->value() % (1u << 18) == 0);
  CHECK(pm.isRam(*g + ((1u << 18) - 1)));
  std::uint64_t n = 0;
  while (pm.allocFrame(9)) ++n;
  CHECK(n == (3ull << 30) / (2ull << 20) - 1 - 512);
}

TEST_CASE("parameter check names the bad parameter") {
  PhysMemParams p;
  p.ramSize = 3ull << 20;
  CHECK(p.check().find("ram_size") != std::string::npos);
  p.ramSize = 4ull << 20;
  p.ramBase = Pa(4096);
  CHECK(p.check().find("ram_base") != std::string::npos);
  p.ramBase = Pa(0);
  CHECK(p.check().empty());
}

TEST_CASE("THP split of a page-cache folio leaves each subpage its cache reference") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  int mapping = 0;
  pm.frame(h).mapping = &mapping;
  pm.frame(h).set(kFramePageCache);
  pm.folioRefAdd(h, 512);         // the page cache: one reference per page
  pm.frame(h + 10).mapcount = 1;  // one subpage mapped by a PTE
  pm.getPage(h);
  CHECK(pm.splitFolio(h, 1) == Errno::Busy);  // without per-page refs the count does not add up
  REQUIRE(pm.splitFolio(h, 1, 1) == Errno::Ok);
  CHECK(pm.frame(h).refcount() == 2);       // cache + caller
  CHECK(pm.frame(h + 10).refcount() == 2);  // cache + mapping
  CHECK(pm.frame(h + 11).refcount() == 1);  // cache only: not freed
  CHECK(pm.frame(h + 11).test(kFramePageCache));
  CHECK(pm.frame(h + 11).index == 11);
}

TEST_CASE("folioMapcount adds PMD mappings and subpage PTE mappings") {
  PhysMem pm(smallRam());
  const Pfn h = *pm.allocFrame(9);
  pm.frame(h).setEntireMapcount(2);
  pm.frame(h + 3).mapcount = 1;
  pm.frame(h + 400).mapcount = 2;
  CHECK(pm.folioMapcount(h + 7) == 5);
  CHECK(pm.folioNrPages(h + 7) == 512);
  const Pfn p = *pm.allocFrame(0);
  pm.frame(p).mapcount = 1;
  CHECK(pm.folioMapcount(p) == 1);
  CHECK(pm.folioNrPages(p) == 1);
}

TEST_CASE("folio trylock fails while the folio is locked") {
  PhysMem pm(smallRam());
  Frame& f = pm.frame(*pm.allocFrame(0));
  CHECK(f.trylock());
  CHECK(f.isLocked());
  CHECK_FALSE(f.trylock());
  f.unlock();
  CHECK(f.trylock());
}

TEST_CASE("a recycled data buffer reads as zeros for its next frame") {
  PhysMem pm(smallRam());
  const Pfn a = *pm.allocFrame(0);
  std::vector<std::uint8_t> ones(kPageSize, 0xff);
  pm.write(paOf(a), ones.data(), ones.size());
  pm.zeroFrame(a);  // the buffer goes back to the pool
  const Pfn b = *pm.allocFrame(0);
  const std::uint8_t x = 3;
  pm.write(paOf(b) + 100, &x, 1);  // a partial write reuses the buffer
  std::vector<std::uint8_t> back(kPageSize);
  pm.read(paOf(b), back.data(), back.size());
  for (std::size_t i = 0; i < back.size(); ++i) REQUIRE(back[i] == (i == 100 ? 3 : 0));
  CHECK(pm.dataHostBytes() >= kPageSize);
}

TEST_CASE("thousands of touched frames keep their own bytes") {
  PhysMem pm(smallRam(64ull << 20));
  std::vector<Pfn> pages;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    pages.push_back(*pm.allocFrame(0));
    pm.write(paOf(pages.back()) + (i % 1000) * 4, &i, sizeof i);
  }
  CHECK(pm.dataPages() == 3000);
  for (std::uint32_t i = 0; i < 3000; ++i) {
    std::uint32_t v = 0;
    pm.read(paOf(pages[i]) + (i % 1000) * 4, &v, sizeof v);
    REQUIRE(v == i);
  }
  for (Pfn p : pages) pm.putPage(p);
  CHECK(pm.dataPages() == 0);
}

TEST_CASE("random allocs, puts and splits never hand out overlapping or misaligned blocks") {
  PhysMem pm(smallRam(64ull << 20));            // one 64 MiB buddy block (order 14)
  std::map<std::uint64_t, std::uint64_t> live;  // head pfn -> frames
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  auto overlaps = [&live](std::uint64_t p, std::uint64_t n) {
    auto it = live.upper_bound(p + n - 1);
    if (it == live.begin()) return false;
    --it;
    return it->first + it->second > p;
  };
  for (int step = 0; step < 4000; ++step) {
    const std::uint64_t r = next() % 10;
    if (r < 5 || live.empty()) {
      static const unsigned orders[] = {0, 0, 0, 1, 3, 9};
      const unsigned order = orders[next() % 6];
      const std::uint64_t free0 = pm.freePages();
      const auto p = pm.allocFrame(order);
      if (!p) {
        REQUIRE(pm.freePages() == free0);
        continue;
      }
      const std::uint64_t n = 1ull << order;
      REQUIRE(p->value() % n == 0);
      REQUIRE(pm.isRam(*p));
      REQUIRE(*p != pm.zeroPfn());
      REQUIRE_FALSE(overlaps(p->value(), n));
      REQUIRE(pm.freePages() == free0 - n);
      live.emplace(p->value(), n);
    } else {
      auto it = live.begin();
      std::advance(it, long(next() % live.size()));
      const Pfn head(it->first);
      const std::uint64_t n = it->second;
      if (n == 512 && r == 9) {
        // Split the THP, keep its head, the other 511 go back to the allocator.
        const std::uint64_t free0 = pm.freePages();
        REQUIRE(pm.splitFolio(head) == Errno::Ok);
        REQUIRE(pm.freePages() == free0 + 511);
        it->second = 1;
      } else {
        const std::uint64_t free0 = pm.freePages();
        REQUIRE(pm.putPage(head));
        REQUIRE(pm.freePages() == free0 + n);
        live.erase(it);
      }
    }
  }
  for (const auto& [p, n] : live) pm.putPage(Pfn(p));
  CHECK(pm.freePages() == pm.ramPages() - 1);
  // Everything merged back: the upper 32 MiB is one block again.
  CHECK(pm.allocFrame(13));
}

TEST_CASE("pages parked on the per-cpu list merge back when a THP allocation needs them") {
  PhysMem pm(smallRam(4ull << 20));
  std::vector<Pfn> pages;
  while (auto p = pm.allocFrame(0)) pages.push_back(*p);
  CHECK(pages.size() == 1023);
  for (Pfn p : pages) pm.putPage(p);
  CHECK(pm.freePages() == 1023);
  // The freed pages are hot: the last one freed comes back first.
  const Pfn again = *pm.allocFrame(0);
  CHECK(again == pages.back());
  pm.putPage(again);
  // Chunk 1 is whole only after the per-cpu list is drained into the buddy lists.
  const auto thp = pm.allocFrame(9);
  REQUIRE(thp);
  CHECK(thp->value() == 512);
  CHECK(pm.freePages() == 511);
}

namespace {
std::vector<std::uint8_t> pageOf(const PhysMem& pm, Pfn p) {
  std::vector<std::uint8_t> v(kPageSize);
  pm.read(paOf(p), v.data(), v.size());
  return v;
}
}  // namespace

TEST_CASE("after copyFrame, writing the source leaves the copy intact") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0);
  std::vector<std::uint8_t> a(kPageSize, 0x11);
  pm.write(paOf(src), a.data(), a.size());
  pm.copyFrame(dst, src);
  CHECK(pm.frameData(dst) == pm.frameData(src));  // shared until written
  const std::uint8_t x = 0x99;
  pm.write(paOf(src) + 5, &x, 1);
  CHECK(pageOf(pm, dst) == a);
  auto b = a;
  b[5] = 0x99;
  CHECK(pageOf(pm, src) == b);
  CHECK(pm.frameData(dst) != pm.frameData(src));
}

TEST_CASE("after copyFrame, writing the copy leaves the source intact") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0), third = *pm.allocFrame(0);
  std::vector<std::uint8_t> a(kPageSize);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::uint8_t(i);
  pm.write(paOf(src), a.data(), a.size());
  pm.copyFrame(dst, src);
  pm.copyFrame(third, dst);  // three frames on one buffer
  std::uint8_t* w = pm.frameDataForWrite(dst);
  w[0] = 0xee;
  CHECK(pageOf(pm, src) == a);
  CHECK(pageOf(pm, third) == a);
  CHECK(pageOf(pm, dst)[0] == 0xee);
  CHECK(pm.dataPages() == 3);
}

TEST_CASE("freeing one side of a copy keeps the other side's bytes") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0);
  std::vector<std::uint8_t> a(kPageSize, 0x42);
  pm.write(paOf(src), a.data(), a.size());
  pm.copyFrame(dst, src);
  pm.putPage(src);
  CHECK(pageOf(pm, dst) == a);
  // The freed frame comes back empty, and the survivor can be written in place.
  const Pfn again = *pm.allocFrame(0);
  CHECK_FALSE(pm.isTouched(again));
  const std::uint8_t x = 1;
  pm.write(paOf(dst), &x, 1);
  CHECK(pageOf(pm, dst)[0] == 1);
  CHECK(pageOf(pm, dst)[1] == 0x42);
  pm.zeroFrame(dst);
  CHECK(pm.dataPages() == 0);
}

TEST_CASE("copying a frame over a copy of itself or onto itself changes nothing") {
  PhysMem pm(smallRam());
  const Pfn src = *pm.allocFrame(0), dst = *pm.allocFrame(0);
  std::vector<std::uint8_t> a(kPageSize, 0x7);
  pm.write(paOf(src), a.data(), a.size());
  pm.copyFrame(src, src);
  pm.copyFrame(dst, src);
  pm.copyFrame(dst, src);
  pm.copyFrame(src, dst);
  CHECK(pm.dataPages() == 2);
  pm.zeroFrame(src);
  CHECK(pageOf(pm, dst) == a);
  pm.zeroFrame(dst);
  CHECK(pm.dataPages() == 0);
}

namespace {
// A page-by-page reference of PhysMem's allocator: the kernel's buddy lists (LIFO, head = most
// recently freed) and per-cpu list (batch 63, high 6 * 63), with every pcp bulk free done one
// page at a time as free_pcppages_bulk does. PhysMem frees aligned runs of such a batch as whole
// blocks; the allocations it hands out must be exactly this model's.
class ReferenceBuddy {
 public:
  static constexpr unsigned kMaxOrder = 18, kPmdOrder = 9, kBatch = 63, kHigh = 6 * 63;

  explicit ReferenceBuddy(std::uint64_t pages) : pages_(pages) {
    std::vector<std::pair<std::uint64_t, unsigned>> blocks;
    for (std::uint64_t p = 0; p < pages;) {
      unsigned order = kMaxOrder;
      while (order > kPmdOrder && ((p & ((1ull << order) - 1)) != 0 || p + (1ull << order) > pages)) --order;
      blocks.emplace_back(p, order);
      p += 1ull << order;
    }
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) push(it->first, it->second);
  }

  std::optional<std::uint64_t> alloc(unsigned order) {
    auto r = order == 0 ? pcpAlloc() : allocBlock(order);
    if (!r && !pcp_.empty()) {
      for (std::uint64_t p : pcp_) freeBlock(p, 0);
      pcp_.clear();
      r = order == 0 ? pcpAlloc() : allocBlock(order);
    }
    return r;
  }
  void free(std::uint64_t p, unsigned order) {
    if (order != 0) return freeBlock(p, order);
    pcp_.push_back(p);
    if (pcp_.size() <= kHigh) return;
    for (unsigned i = 0; i < kBatch; ++i) freeBlock(pcp_[i], 0);
    pcp_.erase(pcp_.begin(), pcp_.begin() + kBatch);
  }

 private:
  void push(std::uint64_t p, unsigned order) {
    lists_[order].push_front(p);
    where_[p] = {order, lists_[order].begin()};
  }
  void unlink(std::uint64_t p) {
    auto it = where_.find(p);
    lists_[it->second.first].erase(it->second.second);
    where_.erase(it);
  }
  std::optional<std::uint64_t> allocBlock(unsigned order) {
    unsigned k = order;
    while (k <= kMaxOrder && lists_[k].empty()) ++k;
    if (k > kMaxOrder) return std::nullopt;
    const std::uint64_t p = lists_[k].front();
    unlink(p);
    while (k > order) {
      --k;
      push(p + (1ull << k), k);
    }
    return p;
  }
  void freeBlock(std::uint64_t p, unsigned order) {
    while (order < kMaxOrder) {
      const std::uint64_t buddy = p ^ (1ull << order);
      if (buddy + (1ull << order) > pages_) break;
      auto it = where_.find(buddy);
      if (it == where_.end() || it->second.first != order) break;
      unlink(buddy);
      p &= ~(1ull << order);
      ++order;
    }
    push(p, order);
  }
  std::optional<std::uint64_t> pcpAlloc() {
    if (pcp_.empty()) {
      std::vector<std::uint64_t> got;
      while (got.size() < kBatch) {
        const auto b = allocBlock(0);
        if (!b) break;
        got.push_back(*b);
      }
      pcp_.assign(got.rbegin(), got.rend());
      if (pcp_.empty()) return std::nullopt;
    }
    const std::uint64_t p = pcp_.back();
    pcp_.pop_back();
    return p;
  }

  std::uint64_t pages_;
  std::list<std::uint64_t> lists_[kMaxOrder + 1];
  std::map<std::uint64_t, std::pair<unsigned, std::list<std::uint64_t>::iterator>> where_;
  std::vector<std::uint64_t> pcp_;
};
}  // namespace

TEST_CASE("per-cpu bulk frees of pfn runs hand out exactly the pages page-by-page frees would") {
  PhysMem pm(smallRam(32ull << 20));
  ReferenceBuddy ref(pm.ramPages());
  REQUIRE(ref.alloc(0) == std::optional<std::uint64_t>(pm.zeroPfn().value()));
  std::vector<std::pair<std::uint64_t, unsigned>> live;  // (pfn, order), allocation order
  std::uint64_t x = 0x2545F4914F6CDD1Dull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  auto allocBoth = [&](unsigned order) {
    const auto got = pm.allocFrame(order);
    const auto want = ref.alloc(order);
    REQUIRE(got.has_value() == want.has_value());
    if (got) {
      REQUIRE(got->value() == *want);
      live.emplace_back(got->value(), order);
    }
  };
  auto freeBoth = [&](std::size_t i) {
    pm.putPage(Pfn(live[i].first));
    ref.free(live[i].first, live[i].second);
  };
  // Rounds of: allocate a burst (mostly 4 KiB, some THPs), then free it in one of three ways:
  // in allocation order (long ascending runs), reversed, or scattered, plus random singles.
  for (int round = 0; round < 40; ++round) {
    const std::size_t burst = 200 + next() % 3000;
    for (std::size_t i = 0; i < burst; ++i) allocBoth(next() % 50 == 0 ? 9 : 0);
    const unsigned how = unsigned(next() % 3);
    const std::size_t n = live.size() * (1 + next() % 3) / 4;  // a quarter to three quarters
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = how == 1 ? n - 1 - i : i;
    if (how == 2)
      for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[next() % i]);
    for (std::size_t i : order) freeBoth(i);
    live.erase(live.begin(), live.begin() + long(n));
  }
  for (std::size_t i = 0; i < live.size(); ++i) freeBoth(i);
  live.clear();
  // After everything came back, the two agree on a full drain-and-refill too.
  for (int i = 0; i < 9000; ++i) allocBoth(i % 7 == 0 ? 9 : 0);
  CHECK(pm.freePages() <= pm.ramPages());
}

TEST_CASE("a device range added at a BAR address sits exactly there and holds real bytes") {
  PhysMem pm(smallRam(8ull << 20));
  int a = 0;
  const Pa bar(0x40'0000'0000ull);  // 256 GiB: a 64-bit prefetchable BAR
  REQUIRE(pm.addDeviceRangeAt(bar, 1024, fakePgmap(a), nullptr) == Errno::Ok);
  CHECK(pm.isDevicePfn(pfnOf(bar)));
  CHECK(pm.isDevicePfn(pfnOf(bar) + 1023));
  CHECK_FALSE(pm.pfnValid(pfnOf(bar) + 1024));
  CHECK_FALSE(pm.pfnValid(pfnOf(bar) - 1));
  CHECK(pm.deviceRangePages(pfnOf(bar)) == 1024);
  CHECK(pm.frame(pfnOf(bar) + 7).pgmap == fakePgmap(a));
  const std::uint8_t out[6] = {1, 2, 3, 4, 5, 6};
  pm.write(bar + 4093, out, sizeof out);  // crosses a frame boundary
  std::uint8_t in[8] = {};
  pm.read(bar + 4092, in, sizeof in);
  const std::uint8_t expect[8] = {0, 1, 2, 3, 4, 5, 6, 0};
  CHECK(std::equal(in, in + 8, expect));
  // Auto-placed ranges go around it.
  const Pfn d = pm.addDeviceRange(fakePgmap(a), 512, nullptr);
  CHECK((d + 512 <= pfnOf(bar) || d >= pfnOf(bar) + 1024));
  CHECK(pm.removeDeviceRange(pfnOf(bar)) == Errno::Ok);
  CHECK_FALSE(pm.pfnValid(pfnOf(bar)));
}

TEST_CASE("a device range at a given address is refused with a reason when it cannot sit there") {
  PhysMem pm(smallRam(8ull << 20));
  int a = 0;
  const Pa bar(1ull << 32);
  REQUIRE(pm.addDeviceRangeAt(bar, 512, fakePgmap(a), nullptr) == Errno::Ok);
  CHECK(pm.addDeviceRangeAt(bar + (1ull << 20), 512, fakePgmap(a), nullptr) == Errno::Inval);
  CHECK(pm.checkDeviceRangeAt(bar + (1ull << 20), 512).find("2 MiB") != std::string::npos);
  CHECK(pm.addDeviceRangeAt(bar + (2ull << 20), 100, fakePgmap(a), nullptr) == Errno::Inval);
  CHECK(pm.checkDeviceRangeAt(bar, 512).find("overlaps the device range") != std::string::npos);
  CHECK(pm.addDeviceRangeAt(bar - (2ull << 20), 1024, fakePgmap(a), nullptr) == Errno::Inval);
  CHECK(pm.checkDeviceRangeAt(Pa(0), 512).find("overlaps system RAM") != std::string::npos);
  CHECK(pm.checkDeviceRangeAt(Pa(1ull << 52), 512).find("outside") != std::string::npos);
  CHECK(pm.checkDeviceRangeAt(bar, 0).find("empty") != std::string::npos);
  CHECK(pm.addDeviceRangeAt(bar + (2ull << 20), 512, fakePgmap(a), nullptr) == Errno::Ok);  // adjacent
  CHECK(pm.deviceRangePages(pfnOf(bar)) == 512);
}

TEST_CASE("a 16 GiB device memory costs no frame metadata and no data until it is touched") {
  PhysMem pm(smallRam(8ull << 20));
  int a = 0;
  const std::uint64_t before = pm.metadataBytes();
  const Pa vram(0x40'0000'0000ull);
  REQUIRE(pm.addDeviceRangeAt(vram, (16ull << 30) / kPageSize, fakePgmap(a), nullptr) == Errno::Ok);
  CHECK(pm.dataPages() == 0);
  // Chunk descriptors only (24 B per 2 MiB of the span up to the range's end): no struct pages.
  const std::uint64_t spanChunks = ((0x40'0000'0000ull + (16ull << 30)) >> 21);
  CHECK(pm.metadataBytes() - before <= spanChunks * 32 + 64);
  const std::uint8_t v = 0x5a;
  pm.write(vram + (16ull << 30) - 1, &v, 1);
  CHECK(pm.dataPages() == 1);
}
