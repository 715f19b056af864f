#pragma once
// Kernel error codes as hmmsim returns them.
//
// A modelled failure (the kernel returning -EBUSY, -EFAULT, ...) is a value the caller handles,
// never an exception. Functions that the kernel declares as returning `int` (0 or -errno) return
// `Errno` here; `Errno::Ok` is 0. The numeric values are Linux's, so toKernel() gives what the
// kernel's function would have returned.

#include <ostream>

namespace hmmsim {

enum class Errno : int {
  Ok = 0,          ///< success
  Perm = 1,        ///< EPERM: operation not permitted (write to a read-only mapping, ...)
  NoEnt = 2,       ///< ENOENT: no such entry (dmirror: a page was not migrated / not mapped)
  Intr = 4,        ///< EINTR: interrupted
  Io = 5,          ///< EIO: I/O error (a device in reset or failed)
  Again = 11,      ///< EAGAIN: try again (non-blocking notifier could not sleep)
  NoMem = 12,      ///< ENOMEM: out of memory, or no room in the address space
  Acces = 13,      ///< EACCES: permission denied (mmap of a file without the needed mode)
  Fault = 14,      ///< EFAULT: bad address (no vma, PROT_NONE, unsupported vma)
  Busy = 16,       ///< EBUSY: invalidation raced; start over
  Exist = 17,      ///< EEXIST: already exists
  NoDev = 19,      ///< ENODEV: no such device
  Inval = 22,      ///< EINVAL: invalid argument
  NoSpc = 28,      ///< ENOSPC: no space (BAR window, IOVA space)
  Range = 34,      ///< ERANGE: out of range
  NoSys = 38,      ///< ENOSYS: not implemented by this object (missing callback)
  Overflow = 75,   ///< EOVERFLOW: value too large (an interval whose end overflows)
  OpNotSupp = 95,  ///< EOPNOTSUPP: operation not supported
  TimedOut = 110,  ///< ETIMEDOUT: timed out
};

/// "EINVAL", "EBUSY", ... ("OK" for Errno::Ok).
const char* errnoName(Errno e);
/// What the kernel function would return: 0 or a negative errno.
constexpr int toKernel(Errno e) {
  return -static_cast<int>(e);
}

std::ostream& operator<<(std::ostream& os, Errno e);

}  // namespace hmmsim
