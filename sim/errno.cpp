#include "sim/errno.h"

#include "sim/assert.h"
#include "sim/strong_types.h"

#include <cstdio>
#include <cstdlib>
#include <iomanip>

namespace hmmsim {

const char* errnoName(Errno e) {
  switch (e) {
    case Errno::Ok:
      return "OK";
    case Errno::Perm:
      return "EPERM";
    case Errno::NoEnt:
      return "ENOENT";
    case Errno::Intr:
      return "EINTR";
    case Errno::Io:
      return "EIO";
    case Errno::Again:
      return "EAGAIN";
    case Errno::NoMem:
      return "ENOMEM";
    case Errno::Acces:
      return "EACCES";
    case Errno::Fault:
      return "EFAULT";
    case Errno::Busy:
      return "EBUSY";
    case Errno::Exist:
      return "EEXIST";
    case Errno::NoDev:
      return "ENODEV";
    case Errno::Inval:
      return "EINVAL";
    case Errno::NoSpc:
      return "ENOSPC";
    case Errno::Range:
      return "ERANGE";
    case Errno::NoSys:
      return "ENOSYS";
    case Errno::Overflow:
      return "EOVERFLOW";
    case Errno::OpNotSupp:
      return "EOPNOTSUPP";
    case Errno::TimedOut:
      return "ETIMEDOUT";
  }
  return "E?";
}

std::ostream& operator<<(std::ostream& os, Errno e) {
  return os << errnoName(e);
}

std::ostream& operator<<(std::ostream& os, const Bdf& b) {
  auto flags = os.flags();
  auto fill = os.fill('0');
  os << std::hex << std::setw(4) << b.domain << ':' << std::setw(2) << int(b.bus) << ':' << std::setw(2)
     << int(b.dev) << '.' << std::setw(1) << int(b.fn);
  os.fill(fill);
  os.flags(flags);
  return os;
}

namespace detail {
void assertFail(const char* cond, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "hmmsim internal error: %s:%d: assertion `%s' failed: %s\n", file, line, cond,
               msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace hmmsim
