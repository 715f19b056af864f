#include <catch2/catch.hpp>

#include "sim/errno.h"
#include "sim/strong_types.h"

#include <sstream>
#include <type_traits>

using namespace hmmsim;

// Mixing address spaces must not compile.
static_assert(!std::is_convertible_v<Va, Pa>);
static_assert(!std::is_convertible_v<Iova, BusAddr>);
static_assert(!std::is_convertible_v<std::uint64_t, Va>);
static_assert(!std::is_constructible_v<Pa, Va>);

TEST_CASE("addresses keep their space through arithmetic and alignment") {
  Va v(0x1234);
  CHECK((v + 0x10).value() == 0x1244);
  CHECK(Va(0x3000) - Va(0x1000) == 0x2000);
  CHECK(v.alignDown(kPageSize) == Va(0x1000));
  CHECK(v.alignUp(kPageSize) == Va(0x2000));
  CHECK(Va(0x200000).isAligned(kPmdSize));
  CHECK(pfnOf(Pa(0x5000)) == Pfn(5));
  CHECK(paOf(Pfn(5)) == Pa(0x5000));
}

TEST_CASE("a BDF prints as the kernel does and keys as the p2pdma cache does") {
  Bdf b{1, 0x3a, 2, 1};
  std::ostringstream os;
  os << b;
  CHECK(os.str() == "0001:3a:02.1");
  CHECK(b.rid() == 0x3a11);
  CHECK(b.key() == 0x13a11u);
}

TEST_CASE("errno values are the kernel's") {
  CHECK(toKernel(Errno::Busy) == -16);
  CHECK(toKernel(Errno::Fault) == -14);
  CHECK(std::string(errnoName(Errno::Inval)) == "EINVAL");
}
