// TLP segmentation (tlp.h).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "models/pcie/tlp.h"

using namespace hmmsim;

namespace {

std::vector<std::uint32_t> requestSizes(std::uint64_t addr, std::uint64_t len, std::uint32_t max) {
  std::vector<std::uint32_t> out;
  RequestSplitter s(addr, len, max);
  TlpSegment seg;
  std::uint64_t expectAddr = addr;
  while (s.next(seg)) {
    REQUIRE(seg.addr == expectAddr);
    expectAddr += seg.bytes;
    out.push_back(seg.bytes);
  }
  return out;
}

std::vector<std::uint32_t> completionSizes(std::uint64_t addr, std::uint32_t len, std::uint32_t mps,
                                           std::uint32_t rcb, bool chunks) {
  std::vector<std::uint32_t> out;
  CompletionSplitter s(addr, len, mps, rcb, chunks);
  TlpSegment seg;
  while (s.next(seg)) out.push_back(seg.bytes);
  return out;
}

}  // namespace

TEST_CASE("an aligned 1500 B write becomes five 256 B MWr and one of 220 B") {
  CHECK(requestSizes(0x10000, 1500, 256) == std::vector<std::uint32_t>{256, 256, 256, 256, 256, 220});
}

TEST_CASE("a write never crosses a 4 KiB boundary") {
  CHECK(requestSizes(0xF80, 256, 256) == std::vector<std::uint32_t>{128, 128});
}

TEST_CASE("a read is split into MRRS-sized requests that do not cross 4 KiB") {
  CHECK(requestSizes(0x0, 2048, 512) == std::vector<std::uint32_t>{512, 512, 512, 512});
  CHECK(requestSizes(0xE00, 1024, 4096) == std::vector<std::uint32_t>{512, 512});
}

TEST_CASE("completions are MPS-sized and split on RCB boundaries") {
  // Aligned: two MPS completions.
  CHECK(completionSizes(0x1000, 512, 256, 64, false) == std::vector<std::uint32_t>{256, 256});
  // Unaligned start: the first completion ends on an RCB (64 B) boundary.
  CHECK(completionSizes(32, 512, 256, 64, false) == std::vector<std::uint32_t>{224, 256, 32});
}

TEST_CASE("an RCB-chunking completer returns one completion per RCB block") {
  CHECK(completionSizes(0, 512, 256, 64, true) == std::vector<std::uint32_t>(8, 64));
  CHECK(completionSizes(32, 128, 256, 64, true) == std::vector<std::uint32_t>{32, 64, 32});
}

TEST_CASE("aligned bursts produce exactly the TLP counts the bandwidth model assumes") {
  for (std::uint32_t mps : {128u, 256u, 512u, 1024u}) {
    for (std::uint32_t mrrs : {128u, 512u, 4096u}) {
      for (std::uint64_t size : {1u, 64u, 100u, 256u, 1500u, 4096u, 65536u}) {
        PcieLinkConfig c;
        c.mpsBytes = mps;
        c.mrrsBytes = mrrs;
        const BurstWire w = writeBurstWire(c, 0x100000, size);
        const BurstWire r = readBurstWire(c, 0x100000, size);
        const std::uint64_t nMwr = (size + mps - 1) / mps;
        const std::uint64_t nMrd = (size + mrrs - 1) / mrrs;
        INFO("mps " << mps << " mrrs " << mrrs << " size " << size);
        CHECK(w.reqTlps == nMwr);
        CHECK(w.reqWireBytes == nMwr * 24 + size);
        CHECK(r.reqTlps == nMrd);
        CHECK(r.reqWireBytes == nMrd * 24);
        // Completions per MRd: ceil(request/MPS); summed over MRRS-sized requests.
        std::uint64_t cpl = 0;
        for (std::uint64_t off = 0; off < size; off += mrrs) {
          const std::uint64_t req = std::min<std::uint64_t>(mrrs, size - off);
          cpl += (req + mps - 1) / mps;
        }
        CHECK(r.cplTlps == cpl);
        CHECK(r.cplWireBytes == cpl * 20 + size);
      }
    }
  }
}

TEST_CASE("an unaligned write needs one TLP more than the aligned model counts") {
  PcieLinkConfig c;  // MPS 256
  CHECK(writeBurstWire(c, 0x0, 256).reqTlps == 1);
  CHECK(writeBurstWire(c, 0xF80, 256).reqTlps == 2);
}

TEST_CASE("closed-form burst totals equal what the splitters produce, aligned or not") {
  for (std::uint32_t mps : {128u, 256u, 512u}) {
    for (std::uint32_t rcb : {64u, 128u, 256u}) {
      for (bool chunks : {false, true}) {
        PcieLinkConfig c;
        c.mpsBytes = mps;
        c.mrrsBytes = 512;
        c.rcbBytes = rcb;
        c.rcbChunks = chunks;
        for (std::uint64_t addr : {0ull, 32ull, 100ull, 0xF80ull, 0x1FC0ull}) {
          for (std::uint64_t len : {1ull, 64ull, 300ull, 512ull, 1500ull, 9000ull}) {
            INFO("mps " << mps << " rcb " << rcb << " chunks " << chunks << " addr " << addr << " len "
                        << len);
            // Reference: walk the splitters TLP by TLP.
            std::uint64_t mwr = 0, mwrBytes = 0, mrd = 0, cpl = 0, cplBytes = 0;
            RequestSplitter w(addr, len, mps);
            TlpSegment seg;
            while (w.next(seg)) {
              ++mwr;
              mwrBytes += 24 + seg.bytes;
            }
            RequestSplitter r(addr, len, 512);
            while (r.next(seg)) {
              ++mrd;
              CompletionSplitter cs(seg.addr, seg.bytes, mps, rcb, chunks);
              TlpSegment cseg;
              while (cs.next(cseg)) {
                ++cpl;
                cplBytes += 20 + cseg.bytes;
              }
            }
            const BurstWire bw = writeBurstWire(c, addr, len);
            const BurstWire br = readBurstWire(c, addr, len);
            CHECK(bw.reqTlps == mwr);
            CHECK(bw.reqWireBytes == mwrBytes);
            CHECK(br.reqTlps == mrd);
            CHECK(br.cplTlps == cpl);
            CHECK(br.cplWireBytes == cplBytes);
          }
        }
      }
    }
  }
}
