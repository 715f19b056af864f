// The CPU core module (models/cpu_mmu/cpu_core.h) running programs against an Mm with a DRAM
// behind it: simulated time of faults, TLB misses, memory traffic and system calls, and the TLB
// shootdown that the mm's notifier rounds cause. Assertions after sc_start().

#include <catch2/catch.hpp>

#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>
#include <tlm>

#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vma.h"
#include "sim/trace.h"

using namespace hmmsim;
using sc_core::SC_NS;
using sc_core::sc_time;

namespace {

PhysMemParams ram(std::uint64_t bytes = 64ull << 20) {
  PhysMemParams p;
  p.ramSize = bytes;
  return p;
}

// 1 byte/ns, 100 ns latency: a 4 KiB page transfer takes 4196 ns.
DramParams dram() {
  DramParams p;
  p.channels = 1;
  p.channelBandwidthBps = 8e9;
  p.latencyPs = 100'000;
  return p;
}

// Round numbers: fault 1000 ns, TLB miss 30 ns, syscall 500 ns, shootdown 200 ns, hit 0.
CpuCoreParams costs() {
  CpuCoreParams p;
  p.faultCostPs = 1'000'000;
  p.tlbMissCostPs = 30'000;
  p.syscallCostPs = 500'000;
  p.tlbShootdownCostPs = 200'000;
  p.tlbHitCostPs = 0;
  return p;
}

constexpr std::uint64_t kPage = kPageSize;
sc_time pageXfer() {
  return sc_time(4096 + 100, SC_NS);
}

struct Platform {
  explicit Platform(CpuProgram program, std::uint64_t ramBytes = 64ull << 20, MmParams mmParams = {},
                    CpuCoreParams coreParams = costs(), const std::string& prefix = "")
      : mem(ram(ramBytes)),
        mm(mem, (prefix + "proc0.mm").c_str(), mmParams),
        dramModule((prefix + "dram").c_str(), dram(), mem),
        core((prefix + "cpu0").c_str(), coreParams, mm, std::move(program)) {
    core.iSocket.bind(dramModule.tSocket);
  }
  PhysMem mem;
  Mm mm;
  Dram dramModule;
  CpuCore core;
};

}  // namespace

TEST_CASE("a CPU program that maps, touches and munmaps memory takes the expected time and flushes its TLB") {
  Platform p({
      CpuOp::mmap(0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::store(0, 0, 4 * kPage, 0xab),  // 4 write faults, 4 TLB misses
      CpuOp::load(0, 0, 4 * kPage),         // 4 TLB hits
      CpuOp::munmap(0, 0, 4 * kPage),       // UNMAP round: TLB flush of the 4 pages
      CpuOp::load(0, 0, 1),                 // no vma: SIGSEGV
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.done());
  REQUIRE(c.results().size() == 5);
  const sc_time mmapT(500, SC_NS);
  const sc_time storePage = sc_time(30 + 1000, SC_NS) + pageXfer();
  CHECK(c.results()[0].err == Errno::Ok);
  CHECK(c.results()[0].end == mmapT);
  CHECK(c.results()[1].end == mmapT + 4 * storePage);
  CHECK(c.results()[2].end == mmapT + 4 * storePage + 4 * pageXfer());
  CHECK(c.results()[2].data == std::vector<std::uint8_t>(4 * kPage, 0xab));
  CHECK(c.results()[3].err == Errno::Ok);
  const sc_time afterMunmap = mmapT + 4 * storePage + 4 * pageXfer() + sc_time(500 + 200, SC_NS);
  CHECK(c.results()[3].end == afterMunmap);
  CHECK(c.results()[4].err == Errno::Fault);
  CHECK(c.killed());
  CHECK(c.finishTime() == afterMunmap + sc_time(30 + 1000, SC_NS));

  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 5);
  CHECK(core.stats().counterValue("tlb_shootdowns") == 1);
  CHECK(core.stats().counterValue("signals") == 1);
  CHECK(core.tlb().stats().counterValue("misses") == 5);
  CHECK(core.tlb().stats().counterValue("hits") == 4);
  CHECK(core.tlb().stats().counterValue("entries_flushed") == 4);
  CHECK(core.tlb().validEntries() == 0);
  CHECK(p.mm.mmStats().notifyEvents[static_cast<unsigned>(MmuNotifierEvent::Unmap)]->value() == 1);
}

TEST_CASE(
    "a store after a load of an untouched anonymous page faults again and shoots down the zero-page TLB "
    "entry") {
  Platform p({
      CpuOp::mmap(0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::load(0, 0, 8),      // read fault: the shared zero page, mapped read-only
      CpuOp::store(0, 0, 8, 7),  // hits a read-only TLB entry: walk, write fault (COW from the zero page)
      CpuOp::load(0, 0, 8),      // TLB hit on the new page
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 4);
  CHECK_FALSE(c.killed());
  CHECK(c.results()[1].data == std::vector<std::uint8_t>(8, 0));
  CHECK(c.results()[3].data == std::vector<std::uint8_t>(8, 7));
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 2);
  CHECK(core.tlb().stats().counterValue("hits") == 2);      // the store's read-only hit, the last load
  CHECK(core.tlb().stats().counterValue("misses") == 1);    // the first load
  CHECK(core.stats().counterValue("tlb_shootdowns") >= 1);  // the COW replaced a mapped pte
}

TEST_CASE("a store to memory made read-only by mprotect kills the process with SIGSEGV") {
  Platform p({
      CpuOp::mmap(0, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE), CpuOp::store(0, 0, 2 * kPage, 1),
      CpuOp::mprotect(0, 0, 2 * kPage, PROT_READ),  // PROTECTION_VMA round: TLB flush
      CpuOp::load(0, kPage, 4), CpuOp::store(0, 0, 4, 2), CpuOp::load(0, 0, 4),  // never runs
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 5);
  CHECK(c.results()[2].err == Errno::Ok);
  CHECK(c.results()[3].data == std::vector<std::uint8_t>(4, 1));
  CHECK(c.results()[4].err == Errno::Fault);
  CHECK(c.killed());
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("tlb_shootdowns") == 1);
}

TEST_CASE(
    "fork write-protects the parent: its next store takes a COW fault and the child keeps the old bytes") {
  Platform p({
      CpuOp::mmap(0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::store(0, 0, 16, 0x11),
      CpuOp::fork(),                 // PROTECTION_PAGE round on the parent: TLB flush
      CpuOp::store(0, 0, 16, 0x22),  // COW fault in the parent
      CpuOp::load(0, 0, 16),
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 5);
  CHECK_FALSE(c.killed());
  REQUIRE(c.children().size() == 1);
  CHECK(c.results()[4].data == std::vector<std::uint8_t>(16, 0x22));
  std::uint8_t childBytes[16] = {};
  REQUIRE(copyFromUser(*c.children()[0], childBytes, c.slotAddress(0), sizeof childBytes) == Errno::Ok);
  CHECK(std::vector<std::uint8_t>(childBytes, childBytes + 16) == std::vector<std::uint8_t>(16, 0x11));
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 2);
  CHECK(core.stats().counterValue("tlb_shootdowns") >= 1);
}

TEST_CASE("MADV_DONTNEED flushes the TLB and the next load faults in a zero page") {
  Platform p({
      CpuOp::mmap(0, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::store(0, 0, 2 * kPage, 0x5a),
      CpuOp::madvise(0, 0, 2 * kPage, MADV_DONTNEED),  // CLEAR round: TLB flush
      CpuOp::load(0, kPage, 8),
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 4);
  CHECK(c.results()[2].err == Errno::Ok);
  CHECK(c.results()[3].data == std::vector<std::uint8_t>(8, 0));
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 3);
  CHECK(core.stats().counterValue("tlb_shootdowns") == 1);
  CHECK(core.tlb().stats().counterValue("entries_flushed") == 2);
  CHECK(p.mm.mmStats().notifyEvents[static_cast<unsigned>(MmuNotifierEvent::Clear)]->value() == 1);
}

TEST_CASE("mremap moving a mapping keeps its bytes at the new address and flushes the old translations") {
  const std::uint64_t at = 0x1000'0000;
  Platform p({
      CpuOp::mmap(0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, at),
      CpuOp::mmap(1, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, at + kPage),  // blocks growing in place
      CpuOp::store(0, 0, kPage, 0x3c),
      CpuOp::mremap(0, 0, kPage, 64 * kPage, MREMAP_MAYMOVE, 2),  // must move: UNMAP round on the old range
      CpuOp::load(2, 0, 16), CpuOp::load(0, 0, 1),                // the old address is gone: SIGSEGV
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 6);
  CHECK(c.results()[3].err == Errno::Ok);
  CHECK(c.slotAddress(2) != Va(at));
  CHECK(c.results()[4].data == std::vector<std::uint8_t>(16, 0x3c));
  CHECK(c.results()[5].err == Errno::Fault);
  CHECK(c.killed());
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("tlb_shootdowns") >= 1);
  CHECK(p.mm.mmStats().notifyEvents[static_cast<unsigned>(MmuNotifierEvent::Unmap)]->value() >= 1);
}

namespace {
// A device driver's mirror of part of the process: records what its interval notifier saw.
class MirrorOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    sub.setSeq(curSeq);
    events.push_back(range.event);
    starts.push_back(range.start);
    ends.push_back(range.end);
    at.push_back(sc_core::sc_time_stamp());
    return true;
  }
  std::vector<MmuNotifierEvent> events;
  std::vector<Va> starts, ends;
  std::vector<sc_time> at;
};
}  // namespace

TEST_CASE(
    "an interval notifier on the process's mm sees the core's munmap as one UNMAP round over the range") {
  const std::uint64_t at = 0x2000'0000;
  Platform p({
      CpuOp::mmap(0, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, at),
      CpuOp::store(0, 0, 8 * kPage, 1),
      CpuOp::compute(10'000'000),  // 10 us
      CpuOp::munmap(0, 2 * kPage, 4 * kPage),
  });
  MirrorOps ops;
  MmuIntervalNotifier mirror;
  REQUIRE(mmuIntervalNotifierInsert(mirror, p.mm, Va(at), 8 * kPage, ops) == Errno::Ok);
  const std::uint64_t seq = mirror.readBegin();
  sc_core::sc_start();
  REQUIRE(ops.events.size() == 1);
  CHECK(ops.events[0] == MmuNotifierEvent::Unmap);
  CHECK(ops.starts[0] == Va(at + 2 * kPage));
  CHECK(ops.ends[0] == Va(at + 6 * kPage));
  // The round happened when the core executed munmap, after the stores and the compute.
  CHECK(ops.at[0] == p.core.results()[3].start);
  CHECK(ops.at[0] > sc_time(10, sc_core::SC_US));
  CHECK(mirror.readRetry(seq));
  mirror.remove();
}

TEST_CASE("a THP-backed region is cached as one 2 MiB TLB entry after a single fault") {
  const std::uint64_t at = 0x4000'0000;  // 2 MiB aligned
  Platform p({
      CpuOp::mmap(0, 2 * kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, at),
      CpuOp::madvise(0, 0, 2 * kPmdSize, MADV_HUGEPAGE),
      CpuOp::store(0, 0, 64, 9),             // huge anonymous fault: one PMD mapping
      CpuOp::load(0, kPmdSize - kPage, 64),  // same 2 MiB page, another 4 KiB subpage: TLB hit
  });
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 4);
  CHECK_FALSE(c.killed());
  CHECK(c.results()[3].data == std::vector<std::uint8_t>(64, 0));
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 1);
  CHECK(core.tlb().stats().counterValue("hits_2m") == 1);
  CHECK(core.tlb().stats().counterValue("misses") == 1);
}

TEST_CASE("a 1 GiB hugetlb page is cached as one 1 GiB TLB entry after a single fault") {
  MmParams mp;
  mp.hugetlbPages1G = 1;
  Platform p(
      {
          CpuOp::mmap(0, kPudSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB | MAP_HUGE_1GB),
          CpuOp::store(0, 0, 64, 7),                   // hugetlb fault: one PUD mapping
          CpuOp::load(0, 400 * kPmdSize + kPage, 64),  // same 1 GiB page, far away: TLB hit
      },
      4ull << 30, mp);
  sc_core::sc_start();
  const CpuCore& c = p.core;
  REQUIRE(c.results().size() == 3);
  CHECK_FALSE(c.killed());
  CHECK(c.results()[2].data == std::vector<std::uint8_t>(64, 0));
  CpuCore& core = p.core;
  CHECK(core.stats().counterValue("page_faults") == 1);
  CHECK(core.tlb().stats().counterValue("hits_1g") == 1);
  CHECK(core.tlb().stats().counterValue("misses") == 1);
}

TEST_CASE(
    "with walkThroughMemory a TLB miss reads one entry per level through DRAM: 4, 3 for a THP, 2 for 1 GiB") {
  const std::uint64_t thpAt = 0x4000'0000;
  auto program = [&] {
    return CpuProgram{
        CpuOp::mmap(0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
        CpuOp::store(0, 0, 8, 1),  // 4 KiB page: fault, then a 4-level walk
        CpuOp::mmap(1, kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, thpAt),
        CpuOp::madvise(1, 0, kPmdSize, MADV_HUGEPAGE),
        CpuOp::store(1, 0, 8, 2),  // THP: a 3-level walk
        CpuOp::mmap(2, kPudSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB | MAP_HUGE_1GB),
        CpuOp::store(2, 0, 8, 3),  // 1 GiB hugetlb: a 2-level walk
    };
  };
  MmParams mp;
  mp.hugetlbPages1G = 1;
  CpuCoreParams walking = costs();
  walking.walkThroughMemory = true;
  Platform flat(program(), 4ull << 30, mp, costs(), "flat.");
  Platform walked(program(), 4ull << 30, mp, walking, "walked.");
  sc_core::sc_start();
  REQUIRE(flat.core.done());
  REQUIRE(walked.core.done());
  CHECK_FALSE(walked.core.killed());
  CHECK(flat.core.stats().counterValue("walk_reads") == 0);
  CHECK(walked.core.stats().counterValue("walk_reads") == 4 + 3 + 2);
  // Each entry read is an 8-byte DRAM read: 8 ns at 1 B/ns plus 100 ns latency, one after the other.
  const sc_time entryRead(108, SC_NS);
  const auto& f = flat.core.results();
  const auto& w = walked.core.results();
  CHECK((w[1].end - w[1].start) - (f[1].end - f[1].start) == 4 * entryRead);
  CHECK((w[4].end - w[4].start) - (f[4].end - f[4].start) == 3 * entryRead);
  CHECK((w[6].end - w[6].start) - (f[6].end - f[6].start) == 2 * entryRead);
}

TEST_CASE("with temporal decoupling (1 us quantum) a CPU program ends at the same simulated time") {
  tlm::tlm_global_quantum::instance().set(sc_time(1, sc_core::SC_US));
  Platform p({
      CpuOp::mmap(0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::store(0, 0, 4 * kPage, 0xab),
      CpuOp::load(0, 0, 4 * kPage),
      CpuOp::compute(250'000),
      CpuOp::load(0, 0, 4 * kPage),
      CpuOp::munmap(0, 0, 4 * kPage),
  });
  sc_core::sc_start();
  const sc_time storePage = sc_time(30 + 1000, SC_NS) + pageXfer();
  const sc_time expect = sc_time(500, SC_NS) + 4 * storePage + 4 * pageXfer() + sc_time(250, SC_NS) +
                         4 * pageXfer() + sc_time(500 + 200, SC_NS);
  CHECK(p.core.finishTime() == expect);
  CHECK(p.core.results().back().end == expect);
}

TEST_CASE("a traced CPU core records each page fault as a slice and each shootdown as an instant") {
  TraceSink trace;
  trace.enable(TraceCategory::CpuFault);
  trace.enable(TraceCategory::HmmNotifier);
  Platform p({
      CpuOp::mmap(0, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE),
      CpuOp::store(0, 0, 2 * kPage, 1),
      CpuOp::munmap(0, 0, 2 * kPage),
  });
  p.core.setTrace(&trace);
  sc_core::sc_start();
  CHECK(trace.eventCount() == 3);  // two write faults, one shootdown
  const std::string json = trace.toJson();
  CHECK(json.find("write_fault") != std::string::npos);
  CHECK(json.find("tlb_shootdown") != std::string::npos);
  CHECK(json.find("event=unmap") != std::string::npos);
}

TEST_CASE(
    "another thread's shootdown at the time a core retires an op is owed by the next op, in any order") {
  // Two identical machines; at T another process drops the core's pages (MADV_DONTNEED: a CLEAR
  // round, one TLB flush of the core). In "method" it is an SC_METHOD, which SystemC runs before
  // every thread at T; in "late" a thread that waits three delta cycles after T, so the core has
  // retired its ops at T first. The flush is owed by the core's first retire after T either way.
  const std::uint64_t at = 0x1000'0000, tPs = 50'000'000;
  auto program = [&] {
    return CpuProgram{CpuOp::mmap(0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, at),
                      CpuOp::store(0, 0, 4 * kPage, 1), CpuOp::until(tPs), CpuOp::compute(100'000),
                      CpuOp::compute(100'000)};
  };
  Platform method(program(), 64ull << 20, {}, costs(), "method.");
  Platform late(program(), 64ull << 20, {}, costs(), "late.");
  auto drop = [](Platform& p) { CHECK(p.mm.madvise(Va(at), 4 * kPage, MADV_DONTNEED) == Errno::Ok); };
  sc_core::sc_spawn_options once;
  once.spawn_method();
  once.dont_initialize();
  sc_core::sc_event tick;
  once.set_sensitivity(&tick);
  sc_core::sc_spawn([&] { drop(method); }, "drop_method", &once);
  tick.notify(sc_time(tPs, sc_core::SC_PS));
  sc_core::sc_spawn(
      [&] {
        sc_core::wait(sc_time(tPs, sc_core::SC_PS));
        for (int i = 0; i < 3; ++i) sc_core::wait(sc_core::SC_ZERO_TIME);
        drop(late);
      },
      "drop_late");
  sc_core::sc_start();
  for (Platform* p : {&method, &late}) {
    const std::vector<CpuOpResult>& r = p->core.results();
    REQUIRE(r.size() == 5);
    CHECK(p->core.stats().counterValue("tlb_shootdowns") == 1);
    CHECK(r[2].end == sc_time(tPs, sc_core::SC_PS));            // until: nothing owed at T
    CHECK(r[3].end - r[3].start == sc_time(100, SC_NS));        // retired at T
    CHECK(r[4].end - r[4].start == sc_time(100 + 200, SC_NS));  // the first retire after T
  }
}
