// Replay of hmmprobe scripts on hmmsim. See trace_replay.h.

#include "tests/conformance/trace_replay.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "tests/unit/cpu_mmu/mm_audit.h"

namespace hmmsim::replay {

namespace {

/// -EBADF: an ioctl on a descriptor the script never opened (sim/errno.h has no EBADF).
constexpr int kEbadf = 9;

std::vector<std::string> tokens(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> t;
  for (std::string s; is >> s;) t.push_back(s);
  return t;
}

std::uint64_t number(const std::string& s, const char* what, std::uint64_t max) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument(std::string(what) + " `" + s + "` is not a decimal number");
  const std::uint64_t v = std::stoull(s);
  if (v > max)
    throw std::invalid_argument(std::string(what) + " " + s + " is larger than " + std::to_string(max));
  return v;
}

int intValue(const std::string& s) {
  const bool neg = !s.empty() && s[0] == '-';
  const std::uint64_t v = number(neg ? s.substr(1) : s, "value", 2147483647ull);
  return neg ? -int(v) : int(v);
}

int protOf(const std::string& s) {
  if (s == "none") return PROT_NONE;
  if (s == "r") return PROT_READ;
  if (s == "rw") return PROT_READ | PROT_WRITE;
  throw std::invalid_argument("protection `" + s + "` is not none, r or rw");
}

const char* protName(int prot) {
  return prot == PROT_NONE ? "none" : prot == PROT_READ ? "r" : "rw";
}

struct OpName {
  const char* name;
  OpKind kind;
  unsigned args;  ///< words after the name
};
constexpr OpName kOps[] = {
    {"open", OpKind::Open, 1},         {"mmap", OpKind::Mmap, 4},         {"fill", OpKind::Fill, 2},
    {"touch", OpKind::Touch, 2},       {"cpuwrite", OpKind::CpuWrite, 3}, {"cpuhash", OpKind::CpuHash, 3},
    {"mprotect", OpKind::Mprotect, 4}, {"munmap", OpKind::Munmap, 3},     {"madvise", OpKind::Madvise, 4},
    {"dread", OpKind::DRead, 4},       {"dwrite", OpKind::DWrite, 5},     {"migrate", OpKind::Migrate, 4},
    {"migsys", OpKind::MigSys, 4},     {"snap", OpKind::Snap, 4},         {"release", OpKind::Release, 4},
};

const char* opName(OpKind k) {
  for (const OpName& o : kOps)
    if (o.kind == k) return o.name;
  return "?";
}

std::string errText(Errno e) {
  return std::strerror(static_cast<int>(e));
}

std::string hex16(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

}  // namespace

std::uint64_t fnv1a64(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

std::optional<Op> parseLine(const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (!line.empty() && line[0] == '#') return std::nullopt;
  const std::vector<std::string> t = tokens(line);
  if (t.empty()) return std::nullopt;
  const OpName* name = nullptr;
  for (const OpName& o : kOps)
    if (t[0] == o.name) name = &o;
  if (!name)
    throw std::invalid_argument(
        "unknown operation `" + t[0] +
        "` (open mmap fill touch cpuwrite cpuhash mprotect munmap madvise dread dwrite "
        "migrate migsys snap release)");
  if (t.size() != name->args + 1)
    throw std::invalid_argument("`" + t[0] + "` takes " + std::to_string(name->args) + " arguments, got " +
                                std::to_string(t.size() - 1));
  Op op;
  op.kind = name->kind;
  op.text = line;
  auto buf = [&](const std::string& s) { return unsigned(number(s, "buffer", kMaxBuffers - 1)); };
  auto dev = [&](const std::string& s) { return unsigned(number(s, "device", kMaxDevices - 1)); };
  auto range = [&](std::size_t i) {
    op.page = number(t[i], "page", kMaxBufferPages);
    op.npages = number(t[i + 1], "npages", kMaxOpPages);
  };
  switch (op.kind) {
    case OpKind::Open:
      op.dev = dev(t[1]);
      break;
    case OpKind::Mmap:
      op.buf = buf(t[1]);
      op.page = number(t[2], "npages", kMaxBufferPages);
      op.prot = protOf(t[3]);
      if (t[4] == "anon")
        op.map = MapKind::Anon;
      else if (t[4] == "shared")
        op.map = MapKind::Shared;
      else if (t[4] == "filep")
        op.map = MapKind::FilePrivate;
      else if (t[4] == "files")
        op.map = MapKind::FileShared;
      else
        throw std::invalid_argument("mapping kind `" + t[4] + "` is not anon, shared, filep or files");
      break;
    case OpKind::Fill:
      op.buf = buf(t[1]);
      op.value = intValue(t[2]);
      break;
    case OpKind::Touch:
      op.buf = buf(t[1]);
      op.page = number(t[2], "page", kMaxBufferPages);
      break;
    case OpKind::CpuWrite:
      op.buf = buf(t[1]);
      op.page = number(t[2], "page", kMaxBufferPages);
      op.value = intValue(t[3]);
      break;
    case OpKind::CpuHash:
    case OpKind::Munmap:
      op.buf = buf(t[1]);
      range(2);
      break;
    case OpKind::Mprotect:
      op.buf = buf(t[1]);
      range(2);
      op.prot = protOf(t[4]);
      break;
    case OpKind::Madvise:
      op.buf = buf(t[1]);
      range(2);
      if (t[4] == "dontneed")
        op.advice = MADV_DONTNEED;
      else if (t[4] == "free")
        op.advice = MADV_FREE;
      else if (t[4] == "hugepage")
        op.advice = MADV_HUGEPAGE;
      else
        throw std::invalid_argument("advice `" + t[4] + "` is not dontneed, free or hugepage");
      break;
    case OpKind::DWrite:
      op.value = intValue(t[5]);
      [[fallthrough]];
    case OpKind::DRead:
    case OpKind::Migrate:
    case OpKind::MigSys:
    case OpKind::Snap:
    case OpKind::Release:
      op.dev = dev(t[1]);
      op.buf = buf(t[2]);
      range(3);
      break;
  }
  return op;
}

std::string formatOp(const Op& op) {
  std::ostringstream os;
  os << opName(op.kind);
  switch (op.kind) {
    case OpKind::Open:
      os << ' ' << op.dev;
      break;
    case OpKind::Mmap: {
      static const char* kinds[] = {"anon", "shared", "filep", "files"};
      os << ' ' << op.buf << ' ' << op.page << ' ' << protName(op.prot) << ' ' << kinds[int(op.map)];
      break;
    }
    case OpKind::Fill:
      os << ' ' << op.buf << ' ' << op.value;
      break;
    case OpKind::Touch:
      os << ' ' << op.buf << ' ' << op.page;
      break;
    case OpKind::CpuWrite:
      os << ' ' << op.buf << ' ' << op.page << ' ' << op.value;
      break;
    case OpKind::CpuHash:
    case OpKind::Munmap:
      os << ' ' << op.buf << ' ' << op.page << ' ' << op.npages;
      break;
    case OpKind::Mprotect:
      os << ' ' << op.buf << ' ' << op.page << ' ' << op.npages << ' ' << protName(op.prot);
      break;
    case OpKind::Madvise:
      os << ' ' << op.buf << ' ' << op.page << ' ' << op.npages << ' '
         << (op.advice == MADV_DONTNEED ? "dontneed"
             : op.advice == MADV_FREE   ? "free"
                                        : "hugepage");
      break;
    default:
      os << ' ' << op.dev << ' ' << op.buf << ' ' << op.page << ' ' << op.npages;
      if (op.kind == OpKind::DWrite) os << ' ' << op.value;
  }
  return os.str();
}

// ------------------------------------------------------------------------------------------

Replayer::Replayer(const ReplayOptions& opts) : opts_(opts), auditor_(std::make_unique<test::MmAuditor>()) {
  PhysMemParams pp;
  pp.ramSize = 512ull << 20;
  pm_ = std::make_unique<PhysMem>(pp, "replay.phys_mem");
  for (unsigned d = 0; d < kMaxDevices; ++d) makeDevice(d);
  // The huge zero folio now rather than at the first read fault that wants it (it is never
  // freed, as in a kernel where an earlier process used it), so that reset() can tell a page a
  // process left behind from it.
  pm_->hugeZeroPfn();
  idleFreePages_ = pm_->freePages();
  startProcess();
}

Replayer::~Replayer() {
  endProcess();
  for (auto& d : devs_) d.reset();
}

void Replayer::makeDevice(unsigned d) {
  DmirrorParams dp;
  dp.faultStoresDevicePage = opts_.buggyDriver;
  dp.chunkBytes = opts_.deviceChunkBytes;
  devs_[d] = std::make_unique<DmirrorDevice>(*pm_, d, MemoryType::DevicePrivate, dp);
  devs_[d]->attachChecker(&checker_);
}

void Replayer::startProcess() {
  mm_ = std::make_unique<Mm>(*pm_, "replay.mm");
  const VaResult r = mm_->mmap(Va(kBounceBase), kMaxOpPages * kPageSize, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  if (!r.ok()) throw std::runtime_error("replay: cannot map the bounce buffer");
}

void Replayer::endProcess() {
  // Close the device files first (their handles reference the Mm; release evicts device
  // memory back into it), then tear the process down.
  for (auto& f : fds_) f.reset();
  devFiles_.clear();
  mm_->exitMmap();
  files_.clear();
  mm_.reset();
}

void Replayer::reset() {
  endProcess();
  for (unsigned d = 0; d < kMaxDevices; ++d) {
    if (!devOpened_[d]) continue;  // untouched: as the constructor left it
    const std::uint64_t held = devs_[d]->devmem().allocatedPages();
    if (held != 0)
      throw std::runtime_error("replay reset: dmirror" + std::to_string(d) + " still holds " +
                               std::to_string(held) + " device pages after the process exited (a leak)");
    devs_[d].reset();
    makeDevice(d);
    devOpened_[d] = false;
  }
  if (pm_->freePages() != idleFreePages_)
    throw std::runtime_error("replay reset: " + std::to_string(pm_->freePages()) +
                             " RAM pages are free after the process exited, " +
                             std::to_string(idleFreePages_) + " before it started (a leak)");
  // No frame is in use, so none points at an anon_vma of the old process.
  pm_->releaseRetainedOwners();
  checker_ = InvariantChecker();
  hits_.clear();
  opIndex_ = 0;
  mmaps_ = 0;
  for (Buffer& b : bufs_) b = Buffer();
  startProcess();
}

Va Replayer::pageAddr(const Op& op) const {
  return bufs_[op.buf].addr + (op.page << kPageShift);
}

std::string Replayer::run(const Op& op) {
  const std::size_t before = checker_.violations().size();
  std::string out = op.text + " ->" + exec(op);
  if (checker_.violations().size() > before)
    hits_.push_back(CheckerHit{opIndex_, op.text, InvariantChecker::format(checker_.violations()[before])});
  ++opIndex_;
  if (opts_.audit) audit(op);
  return out;
}

std::string Replayer::exec(const Op& op) {
  Buffer& b = bufs_[op.buf];
  switch (op.kind) {
    case OpKind::Open: {
      if (fds_[op.dev]) devFiles_.push_back(fds_[op.dev]);  // the probe leaks the old descriptor
      devOpened_[op.dev] = true;
      fds_[op.dev] = devs_[op.dev]->open(*mm_);
      return fds_[op.dev] ? " ok" : " " + errText(Errno::Inval);
    }
    case OpKind::Mmap: {
      const std::uint64_t len = op.page << kPageShift;
      int flags = MAP_PRIVATE | MAP_ANONYMOUS;
      std::shared_ptr<File> file;
      if (op.map == MapKind::Shared) flags = MAP_SHARED | MAP_ANONYMOUS;
      if (op.map == MapKind::FilePrivate || op.map == MapKind::FileShared) {
        file = tmpfile(*pm_, len, "probe" + std::to_string(mmaps_));
        files_.push_back(file);
        flags = op.map == MapKind::FileShared ? MAP_SHARED : MAP_PRIVATE;
      }
      const Va at(kBufferBase + mmaps_ * kBufferStride);
      if (len == 0) return " " + errText(Errno::Inval);
      const VaResult r = mm_->mmap(at, len, op.prot, flags | MAP_FIXED, file);
      if (!r.ok()) return " " + errText(r.err);
      ++mmaps_;
      b.addr = r.addr;
      b.npages = op.page;
      b.used = true;
      return " ok";
    }
    case OpKind::Fill: {
      if (!b.used) return " SIGSEGV";
      scratch_.resize(b.npages * kPageSize);
      for (std::size_t i = 0; i < scratch_.size() / 4; ++i) {
        const std::uint32_t w = std::uint32_t(op.value) + std::uint32_t(i);
        std::memcpy(&scratch_[i * 4], &w, 4);
      }
      if (cpuAccess(*mm_, b.addr, scratch_.data(), scratch_.size(), true) != Errno::Ok) return " SIGSEGV";
      return " ok";
    }
    case OpKind::Touch: {
      std::int32_t x = 0;
      if (cpuAccess(*mm_, pageAddr(op), &x, sizeof x, false) != Errno::Ok) return " SIGSEGV";
      return " " + std::to_string(x);
    }
    case OpKind::CpuWrite: {
      std::int32_t x = op.value;
      if (cpuAccess(*mm_, pageAddr(op), &x, sizeof x, true) != Errno::Ok) return " SIGSEGV";
      return " ok";
    }
    case OpKind::CpuHash: {
      std::vector<std::uint8_t>& bytes = scratch_;
      bytes.resize(op.npages << kPageShift);
      if (cpuAccess(*mm_, pageAddr(op), bytes.data(), bytes.size(), false) != Errno::Ok) return " SIGSEGV";
      return " " + hex16(fnv1a64(bytes.data(), bytes.size()));
    }
    case OpKind::Mprotect: {
      const Errno e = mm_->mprotect(pageAddr(op), op.npages << kPageShift, op.prot);
      return e == Errno::Ok ? " ok" : " " + errText(e);
    }
    case OpKind::Munmap: {
      const Errno e = mm_->munmap(pageAddr(op), op.npages << kPageShift);
      return e == Errno::Ok ? " ok" : " " + errText(e);
    }
    case OpKind::Madvise: {
      const Errno e = mm_->madvise(pageAddr(op), op.npages << kPageShift, op.advice);
      return e == Errno::Ok ? " ok" : " " + errText(e);
    }
    default:
      return dmirrorOp(op);
  }
}

std::string Replayer::dmirrorOp(const Op& op) {
  unsigned command = HMM_DMIRROR_READ;
  switch (op.kind) {
    case OpKind::DRead:
      command = HMM_DMIRROR_READ;
      break;
    case OpKind::DWrite:
      command = HMM_DMIRROR_WRITE;
      break;
    case OpKind::Migrate:
      command = HMM_DMIRROR_MIGRATE_TO_DEV;
      break;
    case OpKind::MigSys:
      command = HMM_DMIRROR_MIGRATE_TO_SYS;
      break;
    case OpKind::Snap:
      command = HMM_DMIRROR_SNAPSHOT;
      break;
    case OpKind::Release:
      command = HMM_DMIRROR_RELEASE;
      break;
    default:
      break;
  }
  // The probe's calloc: a zeroed bounce buffer (dwrite: int word i = V + i). MADV_DONTNEED
  // zeroes it as a fresh calloc'ed mmap is zero: its pages go and read as zeros again (writing
  // megabytes of zeros through the mm cost the fuzzer most of its time).
  const std::size_t bytes = op.npages ? op.npages << kPageShift : 1;
  if (mm_->madvise(Va(kBounceBase), (bytes + kPageSize - 1) & ~(kPageSize - 1), MADV_DONTNEED) != Errno::Ok)
    throw std::runtime_error("replay: cannot zero the bounce buffer");
  std::vector<std::uint8_t>& m = scratch_;
  if (op.kind == OpKind::DWrite && bytes >= 4) {
    m.resize(bytes);
    for (std::size_t i = 0; i + 4 <= bytes; i += 4) {
      const std::uint32_t w = std::uint32_t(op.value) + std::uint32_t(i / 4);
      std::memcpy(&m[i], &w, 4);
    }
    if (copyToUser(*mm_, Va(kBounceBase), m.data(), bytes) != Errno::Ok)
      throw std::runtime_error("replay: the bounce buffer is not writable");
  }
  HmmDmirrorCmd cmd;
  cmd.addr = pageAddr(op).value();
  cmd.ptr = kBounceBase;
  cmd.npages = op.npages;
  int ret = -kEbadf;
  if (fds_[op.dev]) ret = toKernel(devs_[op.dev]->ioctl(*fds_[op.dev], command, cmd));
  std::string out = " ret=" + std::to_string(ret);
  if (ret != 0) return out;
  out += " cpages=" + std::to_string(cmd.cpages) + " faults=" + std::to_string(cmd.faults);
  if (op.kind != OpKind::Snap && op.kind != OpKind::DRead) return out;
  m.resize(bytes);
  if (copyFromUser(*mm_, m.data(), Va(kBounceBase), bytes) != Errno::Ok)
    throw std::runtime_error("replay: the bounce buffer is not readable");
  if (op.kind == OpKind::Snap) {
    out += " bytes=";
    char h[4];
    for (std::uint64_t i = 0; i < op.npages; ++i) {
      std::snprintf(h, sizeof h, "%02x", m[i]);
      out += h;
    }
  } else {
    out += " hash=" + hex16(fnv1a64(m.data(), op.npages << kPageShift));
  }
  return out;
}

// ------------------------------------------------------------------------------------------

namespace {
std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream is(text);
  for (std::string l; std::getline(is, l);) lines.push_back(l);
  return lines;
}
}  // namespace

std::vector<std::string> replayScript(Replayer& r, const std::string& script, const std::string& scriptName) {
  std::vector<std::string> out;
  const std::vector<std::string> lines = splitLines(script);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::optional<Op> op;
    try {
      op = parseLine(lines[i]);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(scriptName + ":" + std::to_string(i + 1) + ": " + e.what());
    }
    if (!op) continue;
    try {
      out.push_back(r.run(*op));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(scriptName + ":" + std::to_string(i + 1) + ": " + e.what());
    }
  }
  return out;
}

CompareResult replayAndCompare(Replayer& r, const std::string& script, const std::string& expected,
                               const std::string& scriptName) {
  CompareResult res;
  const std::vector<std::string> got = replayScript(r, script, scriptName);
  const std::vector<std::string> want = splitLines(expected);
  const std::size_t n = std::max(got.size(), want.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string g = i < got.size() ? got[i] : "(no line)";
    const std::string w = i < want.size() ? want[i] : "(no line)";
    ++res.lines;
    if (g != w) {
      res.match = false;
      res.firstDivergence =
          "output line " + std::to_string(i + 1) + ":\n  kernel `" + w + "`\n  hmmsim `" + g + "`";
      break;
    }
  }
  return res;
}

}  // namespace hmmsim::replay
