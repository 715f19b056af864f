#include "sim/output_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hmmsim {

namespace {

std::string dirOf(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string osError(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

}  // namespace

std::string checkOutputPath(const std::string& path) {
  if (path.empty()) return "empty output path";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return "cannot write " + path + ": not a regular file";
    if (::access(path.c_str(), W_OK) != 0) return osError("cannot write", path, errno);
  }
  const std::string dir = dirOf(path);
  if (::stat(dir.c_str(), &st) != 0) return osError("cannot write " + path + ": directory", dir, errno);
  if (!S_ISDIR(st.st_mode)) return "cannot write " + path + ": " + dir + " is not a directory";
  if (::access(dir.c_str(), W_OK) != 0) return osError("cannot write " + path + ": directory", dir, errno);
  return "";
}

std::string writeFileAtomically(const std::string& path, const std::string& contents) {
  if (path.empty()) return "empty output path";
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return osError("cannot write", path, errno);
  const char* p = contents.data();
  std::size_t left = contents.size();
  int err = 0;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    p += n;
    left -= std::size_t(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  // mkstemp creates 0600; give the file the mode a plain open(O_CREAT, 0666) would.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (!err && ::chmod(tmp.c_str(), 0666 & ~mask) != 0) err = errno;
  if (!err && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    return osError("cannot write", path, err);
  }
  return "";
}

}  // namespace hmmsim
