#include "models/devices/nvme/nvme_spec.h"

#include <cstring>

namespace hmmsim {
namespace nvme {

namespace {

void put32(std::uint8_t* b, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(std::uint8_t* b, std::size_t off, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* b, std::size_t off) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b[off + i]) << (8 * i);
  return v;
}
std::uint64_t get64(const std::uint8_t* b, std::size_t off) {
  return static_cast<std::uint64_t>(get32(b, off + 4)) << 32 | get32(b, off);
}

}  // namespace

Sqe Sqe::readWrite(bool write, std::uint16_t cid, std::uint64_t slba, std::uint32_t blocks,
                   std::uint64_t prp1, std::uint64_t prp2) {
  Sqe s;
  s.opcode = static_cast<std::uint8_t>(write ? IoOpcode::Write : IoOpcode::Read);
  s.cid = cid;
  s.prp1 = prp1;
  s.prp2 = prp2;
  s.cdw10 = static_cast<std::uint32_t>(slba);
  s.cdw11 = static_cast<std::uint32_t>(slba >> 32);
  s.cdw12 = (blocks - 1) & 0xffffu;
  return s;
}

// Layout (spec figure "Common Command Format"): CDW0 @0 (opcode 7:0, PSDT/FUSE 15:8, CID 31:16),
// NSID @4, CDW2-3 @8, MPTR @16, PRP1 @24, PRP2 @32, CDW10..15 @40..60.
std::array<std::uint8_t, kSqeBytes> Sqe::encode() const {
  std::array<std::uint8_t, kSqeBytes> b{};
  put32(b.data(), 0, opcode | static_cast<std::uint32_t>(cid) << 16);
  put32(b.data(), 4, nsid);
  put64(b.data(), 24, prp1);
  put64(b.data(), 32, prp2);
  put32(b.data(), 40, cdw10);
  put32(b.data(), 44, cdw11);
  put32(b.data(), 48, cdw12);
  put32(b.data(), 52, cdw13);
  put32(b.data(), 56, cdw14);
  put32(b.data(), 60, cdw15);
  return b;
}

Sqe Sqe::decode(const std::uint8_t* b) {
  Sqe s;
  const std::uint32_t dw0 = get32(b, 0);
  s.opcode = static_cast<std::uint8_t>(dw0 & 0xff);
  s.cid = static_cast<std::uint16_t>(dw0 >> 16);
  s.nsid = get32(b, 4);
  s.prp1 = get64(b, 24);
  s.prp2 = get64(b, 32);
  s.cdw10 = get32(b, 40);
  s.cdw11 = get32(b, 44);
  s.cdw12 = get32(b, 48);
  s.cdw13 = get32(b, 52);
  s.cdw14 = get32(b, 56);
  s.cdw15 = get32(b, 60);
  return s;
}

// Layout (spec figure "Common Completion Queue Entry"): DW0 @0, DW1 @4, SQHD 15:0 and SQID 31:16
// @8, CID 15:0 / P bit 16 / status 31:17 @12.
std::array<std::uint8_t, kCqeBytes> Cqe::encode() const {
  std::array<std::uint8_t, kCqeBytes> b{};
  put32(b.data(), 0, dw0);
  put32(b.data(), 8, sqHead | static_cast<std::uint32_t>(sqId) << 16);
  put32(b.data(), 12,
        cid | static_cast<std::uint32_t>(phase) << 16 | static_cast<std::uint32_t>(status & 0x7fff) << 17);
  return b;
}

Cqe Cqe::decode(const std::uint8_t* b) {
  Cqe c;
  c.dw0 = get32(b, 0);
  const std::uint32_t dw2 = get32(b, 8), dw3 = get32(b, 12);
  c.sqHead = static_cast<std::uint16_t>(dw2 & 0xffff);
  c.sqId = static_cast<std::uint16_t>(dw2 >> 16);
  c.cid = static_cast<std::uint16_t>(dw3 & 0xffff);
  c.phase = (dw3 >> 16) & 1;
  c.status = static_cast<std::uint16_t>(dw3 >> 17);
  return c;
}

}  // namespace nvme
}  // namespace hmmsim
