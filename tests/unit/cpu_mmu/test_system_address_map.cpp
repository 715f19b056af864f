// The system address map (models/cpu_mmu/system_address_map.h): pure decoding of physical
// addresses to system-bus targets.
#include <catch2/catch.hpp>

#include "models/cpu_mmu/system_address_map.h"

using namespace hmmsim;

TEST_CASE("the system address map decodes an access to the one range holding all of it") {
  SystemAddressMap m;
  REQUIRE(m.add(AddressRange{Pa(0), 4ull << 30, 0, 0, "dram"}).empty());
  REQUIRE(m.add(AddressRange{Pa(0x40'0000'0000ull), 256ull << 20, 1, 0x40'0000'0000ull, "rc0 mmio"}).empty());
  REQUIRE(m.add(AddressRange{Pa(0x80'0000'0000ull), 1ull << 30, 2, 0x1000'0000ull, "rc1 mmio"}).empty());
  CHECK(m.size() == 3);
  const AddressRange* r = m.decode(Pa(0x1234), 64);
  REQUIRE(r);
  CHECK(r->name == "dram");
  r = m.decode(Pa(0x40'0000'0000ull + (256ull << 20) - 8), 8);
  REQUIRE(r);
  CHECK(r->target == 1);
  CHECK(m.decode(Pa(0x40'0000'0000ull + (256ull << 20) - 8), 9) == nullptr);  // straddles the end
  CHECK(m.decode(Pa(4ull << 30), 1) == nullptr);                              // the hole after DRAM
  CHECK(m.decode(Pa((4ull << 30) - 4), 8) == nullptr);
  r = m.decode(Pa(0x80'0000'0010ull), 4);
  REQUIRE(r);
  CHECK(SystemAddressMap::targetAddress(*r, Pa(0x80'0000'0010ull)) == 0x1000'0010ull);  // CPU-to-bus offset
}

TEST_CASE("a range that overlaps another, is empty or wraps is refused with the names of both") {
  SystemAddressMap m;
  REQUIRE(m.add(AddressRange{Pa(0x1000'0000), 0x1000'0000, 0, 0, "dram"}).empty());
  const std::string e = m.add(AddressRange{Pa(0x1800'0000), 0x1000'0000, 1, 0, "gpu bar"});
  CHECK(e.find("'gpu bar'") != std::string::npos);
  CHECK(e.find("overlaps 'dram'") != std::string::npos);
  CHECK(m.add(AddressRange{Pa(0x0800'0000), 0x0800'0001, 1, 0, "low"}).find("overlaps 'dram'") !=
        std::string::npos);
  CHECK(m.add(AddressRange{Pa(0x0800'0000), 0x0800'0000, 1, 0, "low"}).empty());  // adjacent is fine
  CHECK(m.add(AddressRange{Pa(0x9000'0000), 0, 1, 0, "none"}).find("size 0") != std::string::npos);
  CHECK(m.add(AddressRange{Pa(~0ull - 10), 100, 1, 0, "top"}).find("wraps") != std::string::npos);
  CHECK(m.size() == 2);
}
