#pragma once
// Writing result files (stats.json, traces, CSV) so that a failure is reported and never
// destroys what was there: the contents go to a temporary file next to the target, which is
// renamed over the target only once it is complete. A run can also check up front that the
// target can be written, before spending its time.

#include <string>

namespace hmmsim {

/// Can `path` be created or replaced (its directory exists and is writable; an existing `path`
/// is a regular file)? Returns "" when it can, else why not (naming the path and the OS error).
std::string checkOutputPath(const std::string& path);

/// Write `contents` to `path` atomically (temporary file + rename). Returns "" on success, else
/// the error (naming the path and the OS error); the previous file at `path`, if any, is then
/// untouched and no temporary file is left behind.
std::string writeFileAtomically(const std::string& path, const std::string& contents);

}  // namespace hmmsim
