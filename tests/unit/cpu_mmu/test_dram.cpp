// The DRAM target (models/cpu_mmu/dram.h): latency and bandwidth, bandwidth sharing between
// concurrent streams, channel interleaving, data through PhysMem, address errors.
// Threads record; assertions run after sc_start().

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;
using sc_core::SC_NS;
using sc_core::sc_time;

namespace {

// 1 GB/s per channel = 1 byte per ns; 100 ns latency.
DramParams slowDram(unsigned channels, std::uint64_t interleave) {
  DramParams p;
  p.channels = channels;
  p.interleaveBytes = interleave;
  p.channelBandwidthBps = 8e9;
  p.latencyPs = 100'000;
  return p;
}

PhysMemParams ram() {
  PhysMemParams p;
  p.ramBase = Pa(0);
  p.ramSize = 64ull << 20;
  return p;
}

constexpr std::uint64_t kChunk = 64 * 1024;

// One initiator thread issuing `count` blocking requests of kChunk bytes from `base` (stride
// `stride`), waiting for each one's annotated delay before the next (one outstanding request).
struct Stream : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Stream> socket{"socket"};
  std::uint64_t base, stride;
  int count;
  bool write;
  sc_time finished;
  std::vector<tlm::tlm_response_status> status;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(kChunk, 0x5a);

  SC_HAS_PROCESS(Stream);
  Stream(sc_core::sc_module_name n, std::uint64_t base_, std::uint64_t stride_, int count_, bool write_)
      : sc_core::sc_module(n), base(base_), stride(stride_), count(count_), write(write_) {
    SC_THREAD(run);
  }
  void run() {
    for (int i = 0; i < count; ++i) {
      tlm::tlm_generic_payload gp;
      gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
      gp.set_address(base + std::uint64_t(i) * stride);
      gp.set_data_ptr(buf.data());
      gp.set_data_length(kChunk);
      gp.set_streaming_width(kChunk);
      gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sc_time delay = sc_core::SC_ZERO_TIME;
      socket->b_transport(gp, delay);
      status.push_back(gp.get_response_status());
      wait(delay);
    }
    finished = sc_core::sc_time_stamp();
  }
};

// One request of `len` bytes read at `addr`, issued at SystemC time `at` (plus `deltas` delta
// cycles, to order issuers at one time) with annotated delay `ahead`: an initiator running ahead
// of SystemC time under temporal decoupling. `done` is when its data is back.
struct OneShot : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<OneShot> socket{"socket"};
  std::uint64_t addr, len;
  sc_time at, ahead;
  int deltas;
  sc_time done;
  std::vector<std::uint8_t> buf;

  SC_HAS_PROCESS(OneShot);
  OneShot(sc_core::sc_module_name n, std::uint64_t addr_, std::uint64_t len_, sc_time at_, sc_time ahead_,
          int deltas_)
      : sc_core::sc_module(n), addr(addr_), len(len_), at(at_), ahead(ahead_), deltas(deltas_), buf(len_) {
    SC_THREAD(run);
  }
  void run() {
    wait(at);
    for (int i = 0; i < deltas; ++i) wait(sc_core::SC_ZERO_TIME);
    tlm::tlm_generic_payload gp;
    gp.set_command(tlm::TLM_READ_COMMAND);
    gp.set_address(addr);
    gp.set_data_ptr(buf.data());
    gp.set_data_length(len);
    gp.set_streaming_width(len);
    sc_time delay = ahead;
    socket->b_transport(gp, delay);
    done = sc_core::sc_time_stamp() + delay;
  }
};

}  // namespace

TEST_CASE("a lone DRAM stream takes latency plus serialization per request") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(1, 4096), mem);
  Stream s("s", 1 << 20, kChunk, 4, true);
  s.socket.bind(dram.tSocket);
  sc_core::sc_start();
  CHECK(s.finished == sc_time(4 * (65536 + 100), SC_NS));
  CHECK(dram.stats().counterValue("bytes_written") == 4 * kChunk);
  CHECK(dram.stats().counterValue("queued_ps") == 0);
}

TEST_CASE("two concurrent DRAM streams on one channel share its bandwidth") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(1, 4096), mem);
  Stream a("a", 1 << 20, kChunk, 4, false);
  Stream b("b", 8 << 20, kChunk, 4, false);
  a.socket.bind(dram.tSocket);
  b.socket.bind(dram.tSocket);
  sc_core::sc_start();
  // The channel moves 8 x 64 KiB back to back: the later stream ends after all of it, and each
  // stream got about half of the 1 GB/s (alone: 4 x 65.6 us).
  const sc_time channelBusy(8 * 65536, SC_NS);
  const sc_time last = std::max(a.finished, b.finished);
  CHECK(last >= channelBusy);
  CHECK(last <= channelBusy + sc_time(4 * 100, SC_NS));
  const sc_time alone(4 * (65536 + 100), SC_NS);
  CHECK(a.finished.to_seconds() > 1.7 * alone.to_seconds());
  CHECK(b.finished.to_seconds() > 1.7 * alone.to_seconds());
  CHECK(dram.stats().counterValue("queued_ps") > 0);
  // The channel was busy for all 8 transfers: utilization near 100 % of the run.
  CHECK(dram.stats().counterValue("ch0_busy_ps") == 8ull * 65536 * 1000);
}

TEST_CASE("DRAM streams on different channels do not slow each other down") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(2, kChunk), mem);              // 64 KiB interleave: even chunks channel 0, odd 1
  Stream a("a", 1 << 20, 2 * kChunk, 4, false);             // channel 0
  Stream b("b", (1 << 20) + kChunk, 2 * kChunk, 4, false);  // channel 1
  a.socket.bind(dram.tSocket);
  b.socket.bind(dram.tSocket);
  sc_core::sc_start();
  CHECK(dram.channelOf(Pa(1 << 20)) != dram.channelOf(Pa((1 << 20) + kChunk)));
  CHECK(a.finished == sc_time(4 * (65536 + 100), SC_NS));
  CHECK(b.finished == sc_time(4 * (65536 + 100), SC_NS));
}

TEST_CASE("a DRAM booking ahead of SystemC time does not delay an earlier request that fits before it") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(1, 1 << 20), mem);  // one piece per request
  // `late` books [10 us, 14.096 us) first; `early` (one delta later, arrival 0) fits before it;
  // `overlapping` (arrival 5 us, 8.192 us of data) would run into it and goes after it.
  OneShot late("late", 1 << 20, 4096, sc_time(0, SC_NS), sc_time(10'000, SC_NS), 0);
  OneShot early("early", 2 << 20, 4096, sc_time(0, SC_NS), sc_time(0, SC_NS), 1);
  OneShot overlapping("overlapping", 3 << 20, 8192, sc_time(0, SC_NS), sc_time(5'000, SC_NS), 2);
  late.socket.bind(dram.tSocket);
  early.socket.bind(dram.tSocket);
  overlapping.socket.bind(dram.tSocket);
  sc_core::sc_start();
  CHECK(late.done == sc_time(10'000 + 4096 + 100, SC_NS));
  CHECK(early.done == sc_time(4096 + 100, SC_NS));
  CHECK(overlapping.done == sc_time(10'000 + 4096 + 8192 + 100, SC_NS));
  // Only `overlapping` waited: from its arrival at 5 us to the end of `late`'s booking.
  CHECK(dram.stats().counterValue("queued_ps") == (10'000ull + 4096 - 5'000) * 1000);
}

TEST_CASE("bytes written through the DRAM target are stored in PhysMem and read back") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(2, 4096), mem);
  Stream w("w", 2 << 20, kChunk, 1, true);
  w.socket.bind(dram.tSocket);
  sc_core::sc_start();
  std::vector<std::uint8_t> back(kChunk, 0);
  mem.read(Pa(2 << 20), back.data(), back.size());
  CHECK(back == std::vector<std::uint8_t>(kChunk, 0x5a));
  CHECK(w.status.at(0) == tlm::TLM_OK_RESPONSE);
}

TEST_CASE("a DRAM access outside system RAM completes with an address error and moves nothing") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(1, 4096), mem);
  Stream s("s", (64ull << 20) - 4096, kChunk, 1, true);  // runs past the end of RAM
  s.socket.bind(dram.tSocket);
  sc_core::sc_start();
  CHECK(s.status.at(0) == tlm::TLM_ADDRESS_ERROR_RESPONSE);
  CHECK(dram.stats().counterValue("address_errors") == 1);
  CHECK(dram.stats().counterValue("bytes_written") == 0);
  CHECK_FALSE(mem.isTouched(pfnOf(Pa((64ull << 20) - 4096))));
}

namespace {
// Issues one 64 B write whose payload has no data buffer.
struct NullDataInitiator : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<NullDataInitiator> socket{"socket"};
  tlm::tlm_response_status status = tlm::TLM_INCOMPLETE_RESPONSE;
  SC_HAS_PROCESS(NullDataInitiator);
  explicit NullDataInitiator(sc_core::sc_module_name n) : sc_core::sc_module(n) { SC_THREAD(run); }
  void run() {
    tlm::tlm_generic_payload gp;
    gp.set_command(tlm::TLM_WRITE_COMMAND);
    gp.set_address(0);
    gp.set_data_ptr(nullptr);
    gp.set_data_length(64);
    gp.set_streaming_width(64);
    sc_time delay = sc_core::SC_ZERO_TIME;
    socket->b_transport(gp, delay);
    status = gp.get_response_status();
  }
};
}  // namespace

TEST_CASE("a DRAM write without a data buffer completes with a generic error and moves nothing") {
  PhysMem mem(ram());
  Dram dram("dram", slowDram(1, 4096), mem);
  NullDataInitiator initiator("null_data");
  initiator.socket.bind(dram.tSocket);
  sc_core::sc_start();
  CHECK(initiator.status == tlm::TLM_GENERIC_ERROR_RESPONSE);
  CHECK(dram.stats().counterValue("other_errors") == 1);
  CHECK(dram.stats().counterValue("bytes_written") == 0);
  CHECK_FALSE(mem.isTouched(Pfn(0)));
}
