#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "sim/output_file.h"

using namespace hmmsim;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/hmmsim-out-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string path;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

int entries(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d);
  while (dirent* e = ::readdir(d)) n += std::string(e->d_name) != "." && std::string(e->d_name) != "..";
  ::closedir(d);
  return n;
}

}  // namespace

TEST_CASE("writeFileAtomically writes the whole contents and replaces an older file") {
  TempDir t;
  const std::string p = t.path + "/stats.json";
  CHECK(checkOutputPath(p).empty());
  REQUIRE(writeFileAtomically(p, "old\n").empty());
  REQUIRE(writeFileAtomically(p, "new contents\n").empty());
  CHECK(slurp(p) == "new contents\n");
  CHECK(entries(t.path) == 1);  // no temporary left behind
}

TEST_CASE("a path in a missing directory is refused up front and by the write, naming the path") {
  TempDir t;
  const std::string p = t.path + "/missing/stats.json";
  const std::string why = checkOutputPath(p);
  CHECK(why.find(p) != std::string::npos);
  CHECK(why.find("No such file or directory") != std::string::npos);
  const std::string err = writeFileAtomically(p, "x");
  CHECK(err.find(p) != std::string::npos);
  CHECK(entries(t.path) == 0);
}

TEST_CASE("a failed write leaves what was at the path untouched and no temporary file") {
  TempDir t;
  const std::string p = t.path + "/out";
  REQUIRE(::mkdir(p.c_str(), 0755) == 0);  // a directory where the file should go
  CHECK(checkOutputPath(p).find("not a regular file") != std::string::npos);
  CHECK_FALSE(writeFileAtomically(p, "x").empty());
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(entries(t.path) == 1);
}
