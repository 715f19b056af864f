// The NVMe controller alone (models/devices/nvme): the driver half brings it up through its
// registers and admin queue, I/O commands move block data byte-exact between the media and host
// or peer memory, CQEs carry the phase tag, MSIs land, and the timing follows the media's latency
// and bandwidth. Assertions after sc_start().
#include "tests/unit/devices/nic_nvme_fixture.h"

#include <catch2/catch.hpp>

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kCmb = kNvmeBar + (2ull << 20);
constexpr std::uint64_t kHostBuf = 0x0c00'0000ull;
constexpr std::uint64_t kReadBuf = 0x0c80'0000ull;
constexpr std::uint64_t kPrpLists = 0x0d00'0000ull;

NvmeDriverParams driverParams() {
  NvmeDriverParams dp;
  dp.barBase = kNvmeBar;
  dp.adminSqPa = kAdminSq;
  dp.adminCqPa = kAdminCq;
  return dp;
}

// PRP1/PRP2 for a buffer of `bytes` at `addr`, contiguous; writes a PRP list at `list` if needed.
std::pair<std::uint64_t, std::uint64_t> prps(CpuHost& h, std::uint64_t addr, std::uint64_t bytes,
                                             std::uint64_t list) {
  const std::uint64_t first = std::min<std::uint64_t>(bytes, 4096 - addr % 4096);
  if (bytes == first) return {addr, 0};
  if (bytes - first <= 4096) return {addr, addr + first};
  std::vector<std::uint64_t> e;
  for (std::uint64_t a = addr + first; a < addr + bytes; a += 4096) e.push_back(a);
  h.store(list, e.data(), e.size() * 8);
  return {addr, list};
}

struct Bringup {
  bool ready = false;
  std::uint16_t create = 0xffff;
};

// Enable the controller, vector 1 -> the MSI mailbox, I/O queue pair 1 at (sq, cq).
Bringup bringUp(NvmeDriver& d, std::uint64_t sq, std::uint64_t cq, std::uint32_t entries) {
  Bringup b;
  b.ready = d.enable();
  d.setMsix(1, kMsiMailbox, 0x41);
  b.create = d.createIoQueuePair(1, sq, cq, entries, 1, true);
  return b;
}

}  // namespace

TEST_CASE(
    "the driver brings the controller up and a write then a read through CMB queues move blocks byte-exact") {
  Machine m("");
  const std::vector<std::uint8_t> data = pattern(3 * 4096, 7);
  m.pm.write(Pa(kHostBuf + 0x100), data.data(), data.size());  // PRP1 with an offset: 4 pages
  Bringup b;
  nvme::Cqe wc, rc;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    b = bringUp(d, kCmb, kCmb + 0x1000, 64);
    auto [w1, w2] = prps(h, kHostBuf + 0x100, data.size(), kPrpLists);
    d.submit(1, nvme::Sqe::readWrite(true, 5, 100, 3, w1, w2));
    wc = d.waitCompletion(1);
    auto [r1, r2] = prps(h, kReadBuf, data.size(), kPrpLists + 0x1000);
    d.submit(1, nvme::Sqe::readWrite(false, 6, 100, 3, r1, r2));
    rc = d.waitCompletion(1);
  });
  cpu.connectInterrupt(1, m.nvme->completionEvent(1));
  sc_core::sc_start();
  CHECK(b.ready);
  CHECK(b.create == 0);
  CHECK(wc.status == 0);
  CHECK(wc.cid == 5);
  CHECK(wc.sqId == 1);
  CHECK(wc.phase);
  CHECK(rc.status == 0);
  CHECK(rc.cid == 6);
  CHECK(rc.sqHead == 2);
  CHECK(m.readPhys(kReadBuf, data.size()) == data);
  // The SQEs are in the CMB, in the specification's layout, where the CPU wrote them.
  std::uint8_t raw[64];
  m.pm.read(Pa(kCmb + 64), raw, 64);
  const nvme::Sqe s = nvme::Sqe::decode(raw);
  CHECK(s.opcode == 0x02);
  CHECK(s.cid == 6);
  CHECK(s.slba() == 100);
  CHECK(s.blocks() == 3);
  CHECK(s.prp2 == kPrpLists + 0x1000);
  // The MSI wrote the vector's data.
  CHECK(m.readPhys(kMsiMailbox, 4) == std::vector<std::uint8_t>({0x41, 0, 0, 0}));
  CHECK(cpu.interrupts == 2);
  CHECK(cpu.busErrors == 0);
  CHECK(m.nvme->media().storedBlocks() == 3);  // only written blocks hold bytes
  StatsGroup& st = m.nvme->stats();
  CHECK(st.counterValue("reads") == 1);
  CHECK(st.counterValue("writes") == 1);
  CHECK(st.counterValue("data_bytes_in") == data.size());
  CHECK(st.counterValue("data_bytes_out") == data.size());
  CHECK(st.counterValue("msis") == 2);
  CHECK(st.counterValue("errors") == 0);
  // SQE fetches and CQE posts of queue 1 stayed inside the controller (CMB).
  CHECK(st.counterValue("cmb_accesses") >= 4);
}

TEST_CASE("queues in host memory and a PRP pointing at a peer's BAR: read data lands in the peer's memory") {
  Machine m("");
  const std::vector<std::uint8_t> data = pattern(8192, 3);
  m.nvme->media().write(40, 2, data.data());  // blocks already on the media
  constexpr std::uint64_t kGpuDst = kGpuBar + 0x30'0000;
  nvme::Cqe rc, zc;
  Bringup b;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    b = bringUp(d, 0x0e10'0000, 0x0e11'0000, 16);
    d.submit(1, nvme::Sqe::readWrite(false, 1, 40, 2, kGpuDst, kGpuDst + 4096));
    rc = d.waitCompletion(1);
    // A block never written reads as zeros.
    d.submit(1, nvme::Sqe::readWrite(false, 2, 9999, 1, kReadBuf, 0));
    zc = d.waitCompletion(1);
  });
  cpu.connectInterrupt(1, m.nvme->completionEvent(1));
  m.pm.write(Pa(kReadBuf), pattern(4096, 9).data(), 4096);
  sc_core::sc_start();
  CHECK(b.create == 0);
  CHECK(rc.status == 0);
  CHECK(m.readPhys(kGpuDst, data.size()) == data);
  CHECK(zc.status == 0);
  CHECK(m.readPhys(kReadBuf, 4096) == std::vector<std::uint8_t>(4096, 0));
  CHECK(m.nvme->media().storedBlocks() == 2);
  // The read stayed under the switch: no p2p through the root complex; the SQEs came by DMA.
  CHECK(m.fab.rootComplex(m.rc).stats().counterValue("p2p_transactions") == 0);
  CHECK(m.fab.memory(m.gpuNode).stats().counterValue("bytes_written") == data.size());
  CHECK(m.nvme->stats().counterValue("cmb_accesses") == 0);
}

TEST_CASE("the phase tag flips at every wrap of a small completion queue and the driver follows it") {
  Machine m("");
  std::vector<nvme::Cqe> cqes;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    bringUp(d, kCmb, kCmb + 0x1000, 4);
    for (std::uint16_t i = 0; i < 10; ++i) {
      const std::vector<std::uint8_t> blk = pattern(4096, i);
      h.store(kHostBuf, blk.data(), blk.size());
      d.submit(1, nvme::Sqe::readWrite(true, i, i, 1, kHostBuf, 0));
      cqes.push_back(d.waitCompletion(1));
    }
  });
  cpu.connectInterrupt(1, m.nvme->completionEvent(1));
  sc_core::sc_start();
  REQUIRE(cqes.size() == 10);
  for (std::size_t i = 0; i < cqes.size(); ++i) {
    CHECK(cqes[i].cid == i);
    CHECK(cqes[i].status == 0);
    CHECK(cqes[i].phase == ((i / 4) % 2 == 0));  // entries 0-3 phase 1, 4-7 phase 0, 8-9 phase 1
  }
  std::vector<std::uint8_t> got(4096);
  for (std::uint64_t i = 0; i < 10; ++i) {
    m.nvme->media().read(i, 1, got.data());
    CHECK(got == pattern(4096, static_cast<std::uint32_t>(i)));
  }
}

TEST_CASE("bad commands complete with the specification's status codes") {
  Machine m("");
  std::vector<nvme::Cqe> cqes;
  std::uint16_t dupCreate = 0;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    bringUp(d, kCmb, kCmb + 0x1000, 16);
    dupCreate = d.createIoQueuePair(1, kCmb, kCmb + 0x1000, 16, 1, true);  // qid 1 exists
    d.submit(1, nvme::Sqe::readWrite(false, 1, (1ull << 28) - 1, 2, kReadBuf, kReadBuf + 4096));
    cqes.push_back(d.waitCompletion(1));
    nvme::Sqe bad;
    bad.opcode = 0x7f;
    bad.cid = 2;
    d.submit(1, bad);
    cqes.push_back(d.waitCompletion(1));
    d.submit(1, nvme::Sqe::readWrite(false, 3, 0, 512, kReadBuf, kPrpLists));  // 2 MiB > MDTS
    cqes.push_back(d.waitCompletion(1));
  });
  cpu.connectInterrupt(1, m.nvme->completionEvent(1));
  sc_core::sc_start();
  CHECK(dupCreate == static_cast<std::uint16_t>(nvme::Status::InvalidQueueId));
  REQUIRE(cqes.size() == 3);
  CHECK(cqes[0].status == static_cast<std::uint16_t>(nvme::Status::LbaOutOfRange));
  CHECK(cqes[1].status == static_cast<std::uint16_t>(nvme::Status::InvalidOpcode));
  CHECK(cqes[2].status == static_cast<std::uint16_t>(nvme::Status::InvalidField));
  CHECK(m.nvme->stats().counterValue("errors") == 4);  // the admin command's too
  CHECK(m.nvme->stats().counterValue("data_bytes_out") == 0);
}

TEST_CASE("a read's media time is its latency plus its bytes over the media bandwidth, exactly") {
  // Two machines in one simulation, differing only in the media's read latency.
  MachineParams slow;
  slow.nvme.media.readLatencyPs += 37'000'000;
  Machine a("a_"), b("b_", slow);
  std::uint64_t doneA = 0, doneB = 0;
  auto body = [](std::uint64_t& done) {
    return [&done](CpuHost& h) {
      NvmeDriver d(h, driverParams());
      bringUp(d, kCmb, kCmb + 0x1000, 16);
      auto [p1, p2] = prps(h, kReadBuf, 32 * 4096, kPrpLists);
      d.submit(1, nvme::Sqe::readWrite(false, 1, 0, 32, p1, p2));  // 128 KiB
      d.waitCompletion(1);
      done = h.nowPs();
    };
  };
  CpuHost ca("ca", a.bus, body(doneA)), cb("cb", b.bus, body(doneB));
  ca.connectInterrupt(1, a.nvme->completionEvent(1));
  cb.connectInterrupt(1, b.nvme->completionEvent(1));
  sc_core::sc_start();
  const NvmeParams p;
  const auto& ra = a.nvme->records().back();
  const auto& rb = b.nvme->records().back();
  const auto xferPs = static_cast<std::uint64_t>(128.0 * 1024 * 8000 / p.media.readBandwidthGbps + 0.5);
  CHECK(ra.mediaDonePs - ra.fetchPs == p.commandOverheadPs + p.media.readLatencyPs + xferPs);
  CHECK(rb.cqePs - rb.doorbellPs - (ra.cqePs - ra.doorbellPs) == 37'000'000);
  CHECK(doneB - doneA == 37'000'000);
}

TEST_CASE("many reads in flight stream at the media bandwidth within 1 %") {
  MachineParams mp;
  mp.nvme.media.readBandwidthGbps = 20.0;
  Machine m("", mp);
  constexpr int kCommands = 256;
  constexpr std::uint32_t kBlocks = 64;  // 256 KiB each
  std::uint64_t firstDoorbell = 0, lastCqe = 0;
  int ok = 0;
  CpuHost cpu("cpu", m.bus, [&](CpuHost& h) {
    NvmeDriver d(h, driverParams());
    bringUp(d, kCmb, kCmb + 0x10000, 512);
    for (int i = 0; i < kCommands; ++i) {
      auto [p1, p2] = prps(h, kReadBuf, kBlocks * 4096ull, kPrpLists + 4096ull * i);
      d.submit(1, nvme::Sqe::readWrite(false, static_cast<std::uint16_t>(i), std::uint64_t(i) * kBlocks,
                                       kBlocks, p1, p2));
    }
    for (int i = 0; i < kCommands; ++i) ok += d.waitCompletion(1).status == 0;
  });
  cpu.connectInterrupt(1, m.nvme->completionEvent(1));
  sc_core::sc_start();
  CHECK(ok == kCommands);
  const auto& recs = m.nvme->records();
  firstDoorbell = recs[recs.size() - kCommands].doorbellPs;
  lastCqe = recs.back().cqePs;
  const double bits = kCommands * kBlocks * 4096.0 * 8;
  const double gbps = bits / static_cast<double>(lastCqe - firstDoorbell) * 1000.0;
  CHECK(gbps == Approx(20.0).epsilon(0.01));
  CHECK(gbps < 20.0);
}
