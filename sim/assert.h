#pragma once
// HMMSIM_ASSERT: a simulator bug, not a user mistake nor a modelled failure.
//
// Stays on in release builds: the checks guard invariants whose violation would make every
// later number meaningless, and they are cheap. Failure prints the condition, the location and
// a message, then aborts (tests see the process die, which ctest reports).

#include <sstream>

namespace hmmsim::detail {
[[noreturn]] void assertFail(const char* cond, const char* file, int line, const std::string& msg);
}  // namespace hmmsim::detail

// The message is built in a cold, never-inlined lambda, so a hot function that asserts keeps a
// small frame and stays inlinable (an inline std::ostringstream costs a ~400-byte stack frame
// and six register saves per call, even when the check passes).
#define HMMSIM_ASSERT(cond, msg)                                                          \
  do {                                                                                    \
    if (__builtin_expect(!(cond), 0)) {                                                   \
      [&]() __attribute__((noinline, cold, noreturn)) {                                   \
        std::ostringstream hmmsim_assert_os_;                                             \
        /* NOLINTNEXTLINE(bugprone-macro-parentheses): msg is a chain of << operands */   \
        hmmsim_assert_os_ << msg;                                                         \
        ::hmmsim::detail::assertFail(#cond, __FILE__, __LINE__, hmmsim_assert_os_.str()); \
      }                                                                                   \
      ();                                                                                 \
    }                                                                                     \
  } while (0)
