// Running a scenario. See scenario_run.h.

#include "scenarios/scenario_run.h"

#include <cstring>
#include <map>
#include <memory>
#include <sstream>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "sim/checker.h"
#include "sim/errno.h"
#include "sim/trace.h"

namespace hmmsim::scenario {

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kUsPs = 1'000'000;

/// A failed expectation: ends the script (as the selftests' ASSERT does).
struct OpFailed {
  std::string message;
};

struct Region {
  Va addr;
  std::uint64_t size = 0;
};

struct Proc {
  std::string name;
  std::unique_ptr<Mm> mm;
  std::map<std::string, std::shared_ptr<File>> fds;
};

std::string retText(int ret) {
  return ret == 0 ? "0 (ok)" : std::to_string(ret) + " (" + errnoName(static_cast<Errno>(-ret)) + ")";
}

class Runner {
 public:
  Runner(const Scenario& s, const RunOptions& o) : s_(s), opts_(o), pm_(s.physMem, "phys_mem") {
    if (opts_.trace) trace_.enable(TraceCategory::Script);
    for (const DeviceSpec& d : s.devices) {
      devs_[d.id] = std::make_unique<DmirrorDevice>(pm_, d.id, d.memory, s.dmirror);
      devs_[d.id]->attachChecker(&checker_);
    }
  }
  ~Runner() { teardown(); }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  void run(RunResult& r);

 private:
  void startProcesses();
  void mapRegion(Proc& p, const RegionSpec& spec, const Op* op);
  void exec(const Op& op);
  void execMm(const Op& op, Proc& p);
  void execCpu(const Op& op, Proc& p);
  void execDmirror(const Op& op, Proc& p);
  void checkRet(const Op& op, int ret, const HmmDmirrorCmd* cmd = nullptr);
  void exitProcess(const std::string& name);
  void teardown();
  void collectStats(RunResult& r);
  Proc& proc(const Op& op);
  Region& region(const Op& op, const std::string& name);
  [[noreturn]] void fail(const Op& op, const std::string& what) {
    throw OpFailed{op.where + ": " + op.text + ": " + what};
  }

  const Scenario& s_;
  RunOptions opts_;
  InvariantChecker checker_;
  TraceSink trace_;
  PhysMem pm_;
  std::map<unsigned, std::unique_ptr<DmirrorDevice>> devs_;
  std::map<std::string, Proc> procs_;
  std::map<std::string, Region> regions_;
  std::vector<std::shared_ptr<File>> files_;
  StatsRegistry exited_;                   ///< stats of processes that exited during the script
  std::map<std::string, unsigned> exits_;  ///< processes of each name that exited
  std::uint64_t ops_ = 0;
};

Proc& Runner::proc(const Op& op) {
  const std::string& name = op.process.empty() ? s_.processes.front().name : op.process;
  auto it = procs_.find(name);
  if (it == procs_.end()) fail(op, "no running process '" + name + "'");
  return it->second;
}

Region& Runner::region(const Op& op, const std::string& name) {
  auto it = regions_.find(name);
  if (it == regions_.end()) fail(op, "no region '" + name + "'");
  return it->second;
}

void Runner::mapRegion(Proc& p, const RegionSpec& spec, const Op* op) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  std::shared_ptr<File> file;
  switch (spec.kind) {
    case MapKind::Anon:
      break;
    case MapKind::SharedAnon:
      flags = MAP_SHARED | MAP_ANONYMOUS;
      break;
    case MapKind::Hugetlb:
      flags |= MAP_HUGETLB | (spec.hugePageBytes == (1ull << 30) ? MAP_HUGE_1GB : MAP_HUGE_2MB);
      break;
    case MapKind::FilePrivate:
    case MapKind::FileShared: {
      flags = spec.kind == MapKind::FileShared ? MAP_SHARED : MAP_PRIVATE;
      file = tmpfile(pm_, spec.size, spec.name);
      if (spec.fileInts) {
        std::vector<std::int32_t> v(spec.size / 4);
        for (std::size_t i = 0; i < v.size(); ++i)
          v[i] = std::int32_t(spec.fileInts->base + spec.fileInts->step * std::int64_t(i));
        file->pwrite(v.data(), spec.size, 0);
      }
      files_.push_back(file);
      break;
    }
    case MapKind::DeviceFile:
      flags = MAP_PRIVATE;
      file = p.fds.at(spec.fd);
      break;
  }
  const VaResult r = p.mm->mmap(Va(0), spec.size + spec.align, spec.prot, flags, file, 0);
  const int want = op ? op->expect.ret : 0;
  if (!r.ok() || want != 0) {
    const int got = r.ok() ? 0 : toKernel(r.err);
    if (got != want) {
      const std::string msg =
          "mmap of region '" + spec.name + "' returned " + retText(got) + ", expected " + retText(want);
      if (op) fail(*op, msg);
      throw OpFailed{s_.file + ": processes: " + msg};
    }
    if (!r.ok()) return;
  }
  const Va at = spec.align ? r.addr.alignUp(spec.align) : r.addr;
  regions_[spec.name] = Region{at, spec.size};
  if (spec.thp) p.mm->madvise(at, spec.size, MADV_HUGEPAGE);
  if (spec.fill) {
    std::vector<std::int32_t> v(spec.size / 4);
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = std::int32_t(spec.fill->base + spec.fill->step * std::int64_t(i));
    if (cpuAccess(*p.mm, at, v.data(), spec.size, true) != Errno::Ok)
      throw OpFailed{s_.file + ": region '" + spec.name + "': its fill faulted (is it writable?)"};
  }
}

void Runner::startProcesses() {
  for (const ProcessSpec& ps : s_.processes) {
    Proc& p = procs_[ps.name];
    p.name = ps.name;
    p.mm = std::make_unique<Mm>(pm_, "process." + ps.name + ".mm", ps.mm);
    for (unsigned d : ps.open) p.fds["dmirror" + std::to_string(d)] = devs_.at(d)->open(*p.mm);
    for (const RegionSpec& r : ps.memory) mapRegion(p, r, nullptr);
  }
}

void Runner::checkRet(const Op& op, int ret, const HmmDmirrorCmd* cmd) {
  if (ret != op.expect.ret) fail(op, "returned " + retText(ret) + ", expected " + retText(op.expect.ret));
  if (!cmd || ret != 0) return;
  if (op.expect.cpages && cmd->cpages != *op.expect.cpages)
    fail(op, "cpages " + std::to_string(cmd->cpages) + ", expected " + std::to_string(*op.expect.cpages));
  if (op.expect.faults && cmd->faults != *op.expect.faults)
    fail(op, "faults " + std::to_string(cmd->faults) + ", expected " + std::to_string(*op.expect.faults));
}

void Runner::execMm(const Op& op, Proc& p) {
  switch (op.kind) {
    case OpKind::Mmap:
      mapRegion(p, op.mapping, &op);
      return;
    case OpKind::Munmap:
    case OpKind::Mprotect:
    case OpKind::Madvise: {
      const Region& r = region(op, op.region);
      const std::uint64_t len = op.length ? op.length : r.size - std::min(r.size, op.offset);
      const Va at = r.addr + op.offset;
      const Errno e = op.kind == OpKind::Munmap     ? p.mm->munmap(at, len)
                      : op.kind == OpKind::Mprotect ? p.mm->mprotect(at, len, op.prot)
                                                    : p.mm->madvise(at, len, op.advice);
      checkRet(op, toKernel(e));
      return;
    }
    case OpKind::Mremap: {
      Region& r = region(op, op.region);
      const Va to = op.toRegion.empty() ? Va(0) : region(op, op.toRegion).addr;
      const int flags = MREMAP_MAYMOVE | (op.toRegion.empty() ? 0 : MREMAP_FIXED);
      const VaResult res = p.mm->mremap(r.addr, r.size, op.newSize, flags, to);
      checkRet(op, res.ok() ? 0 : toKernel(res.err));
      if (!res.ok()) return;
      r = Region{res.addr, op.newSize};
      if (!op.toRegion.empty()) regions_.erase(op.toRegion);
      return;
    }
    default:
      return;
  }
}

void Runner::execCpu(const Op& op, Proc& p) {
  const Region& r = region(op, op.region);
  if (op.offset >= r.size) fail(op, "offset is past the end of region '" + op.region + "'");
  std::uint64_t len = op.length ? op.length : r.size - op.offset;
  if (op.bytes && !op.length) len = op.bytes->size();
  std::vector<std::uint8_t> buf(len);
  const bool write = op.kind == OpKind::Write;
  if (write)
    for (std::size_t i = 0; i + 4 <= len; i += 4) {
      const std::int32_t w = std::int32_t(op.ints->base + op.ints->step * std::int64_t(i / 4));
      std::memcpy(&buf[i], &w, 4);
    }
  const Errno e = cpuAccess(*p.mm, r.addr + op.offset, buf.data(), len, write);
  // A CPU access that would be SIGSEGV/SIGBUS is reported as -EFAULT.
  if (e != Errno::Ok || op.expect.ret != 0) {
    if (op.expect.ret != (e == Errno::Ok ? 0 : toKernel(Errno::Fault)))
      fail(op, e == Errno::Ok ? "the access succeeded, expected " + retText(op.expect.ret)
                              : "the access faulted (SIGSEGV), expected it to succeed");
    return;
  }
  if (write) return;
  if (op.ints)
    for (std::size_t i = 0; i + 4 <= len; i += 4) {
      std::int32_t got = 0;
      std::memcpy(&got, &buf[i], 4);
      const std::int32_t want = std::int32_t(op.ints->base + op.ints->step * std::int64_t(i / 4));
      if (got != want) {
        std::ostringstream os;
        os << "int " << i / 4 << " (byte offset " << op.offset + i << ") is " << got << ", expected " << want;
        fail(op, os.str());
      }
    }
  if (op.bytes)
    for (std::size_t i = 0; i < op.bytes->size() && i < len; ++i)
      if (buf[i] != (*op.bytes)[i]) {
        std::ostringstream os;
        os << "byte " << i << " is 0x" << std::hex << int(buf[i]) << ", expected 0x" << (*op.bytes)[i];
        fail(op, os.str());
      }
}

void Runner::execDmirror(const Op& op, Proc& p) {
  auto f = p.fds.find(op.fd);
  if (f == p.fds.end()) fail(op, "process '" + p.name + "' has no open descriptor '" + op.fd + "'");
  auto* dev = dynamic_cast<DmirrorDevice*>(&f->second->fOp());
  HmmDmirrorCmd cmd;
  if (!op.region.empty()) {
    const Region& r = region(op, op.region);
    cmd.addr = (r.addr + op.offset).value();
    cmd.ptr = region(op, op.mirror).addr.value();
    cmd.npages = op.npages ? op.npages : (r.size - std::min(r.size, op.offset)) / kPage;
  }
  if (op.flagsValue) cmd.npages = op.flagsValue;
  const Errno e = dev->ioctl(*f->second, op.command, cmd);
  checkRet(op, toKernel(e), &cmd);
}

void Runner::exec(const Op& op) {
  ++ops_;
  if (op.kind == OpKind::Repeat) {
    for (std::uint64_t i = 0; i < op.times; ++i)
      for (const Op& b : op.body) exec(b);
    return;
  }
  Proc& p = proc(op);
  if (opts_.trace) {
    const bool dev = op.kind == OpKind::Dmirror;
    trace_.slice(TraceCategory::Script, dev ? "device." + op.fd : "process." + p.name, op.text, ops_ * kUsPs,
                 kUsPs, op.where);
  }
  switch (op.kind) {
    case OpKind::Fork: {
      if (procs_.count(op.child)) fail(op, "process '" + op.child + "' already exists");
      ForkResult r = p.mm->fork("process." + op.child + ".mm");
      checkRet(op, r.ok() ? 0 : toKernel(r.err));
      if (r.ok()) procs_[op.child] = Proc{op.child, std::move(r.child), {}};
      return;
    }
    case OpKind::Exit:
      exitProcess(p.name);
      return;
    case OpKind::Open: {
      auto d = devs_.find(op.device);
      if (d == devs_.end()) fail(op, "no dmirror device " + std::to_string(op.device));
      p.fds[op.fd] = d->second->open(*p.mm);
      return;
    }
    case OpKind::Close:
      if (!p.fds.erase(op.fd)) fail(op, "no open descriptor '" + op.fd + "'");
      return;
    case OpKind::Write:
    case OpKind::Read:
      execCpu(op, p);
      return;
    case OpKind::Dmirror:
      execDmirror(op, p);
      return;
    default:
      execMm(op, p);
  }
}

void Runner::exitProcess(const std::string& name) {
  auto it = procs_.find(name);
  if (it == procs_.end()) return;
  it->second.fds.clear();  // close(fd): the handles reference the mm
  it->second.mm->exitMmap();
  // A name reused by a later process (a second fork into `child`) gets a numbered group.
  const unsigned n = ++exits_[name];
  exited_.add("process." + name + (n > 1 ? "_" + std::to_string(n) : "") + ".mm", it->second.mm->stats());
  procs_.erase(it);
}

void Runner::teardown() {
  std::vector<std::string> names;
  for (const auto& [n, p] : procs_) names.push_back(n);
  for (const std::string& n : names) exitProcess(n);
  files_.clear();
}

void Runner::collectStats(RunResult& r) {
  r.stats = exited_;
  for (const auto& [id, d] : devs_) r.stats.add("device.dmirror" + std::to_string(id), d->stats());
  r.stats.add("phys_mem", pm_.stats());
  r.stats.addValue("run.ops", double(ops_), "operations", "script operations executed (repeats counted)");
  r.stats.addValue("run.seed", double(s_.seed), "", "the run's seed");
  r.stats.addValue("checker.violations", double(checker_.violations().size()), "reports",
                   "reports of the invariant checker");
  for (const Violation& v : checker_.violations()) r.violations.push_back(InvariantChecker::format(v));
}

}  // namespace

void checkExpectations(const Scenario& s, const InvariantChecker& checker, RunResult& r) {
  for (const StatExpect& e : s.expect.stats) {
    const std::optional<double> v = r.stats.value(e.stat);
    if (!v) {
      const std::string near = r.stats.nearestName(e.stat);
      r.failures.push_back(e.where + ": expect: no stat '" + e.stat + "'" +
                           (near.empty() ? "" : "; did you mean '" + near + "'?"));
      continue;
    }
    // Name the key the file gave (eq, min, max), so the message reads like the expectation.
    std::ostringstream os;
    if (e.eq && *v != *e.eq)
      os << e.where << ": expect: " << e.stat << " is " << *v << ", expected eq: " << *e.eq;
    if (e.min && *v < *e.min)
      os << e.where << ": expect: " << e.stat << " is " << *v << ", expected min: " << *e.min;
    if (e.max && *v > *e.max)
      os << e.where << ": expect: " << e.stat << " is " << *v << ", expected max: " << *e.max;
    if (!os.str().empty()) r.failures.push_back(os.str());
  }
  const CheckerExpect& c = s.expect.checker;
  std::map<std::string, std::uint64_t> got;
  for (const Violation& v : checker.violations()) ++got[checkRuleName(v.rule)];
  if (c.clean ? !got.empty() : got != c.counts) {
    std::ostringstream os;
    os << s.file << ": expect: checker: expected " << (c.clean ? "clean" : "the listed violations")
       << ", got";
    if (got.empty()) os << " clean";
    for (const auto& [rule, n] : got) os << ' ' << rule << '=' << n;
    r.failures.push_back(os.str());
  }
}

namespace {

void Runner::run(RunResult& r) {
  try {
    startProcesses();
    for (const Op& op : s_.script) exec(op);
  } catch (const OpFailed& f) {
    r.failures.push_back(f.message);
  }
  teardown();
  r.opsRun = ops_;
  collectStats(r);
  if (r.failures.empty()) checkExpectations(s_, checker_, r);
  if (opts_.trace) r.traceJson = trace_.toJson();
}

}  // namespace

RunResult runScenario(const Scenario& s, const RunOptions& opts) {
  RunResult r;
  Runner runner(s, opts);
  runner.run(r);
  return r;
}

std::string formatSummary(const Scenario& s, const RunResult& r) {
  std::ostringstream os;
  os << "scenario " << s.name << " (" << s.file << ")\n";
  if (!s.description.empty()) os << "  " << s.description << '\n';
  os << "  operations run          " << r.opsRun << '\n';
  auto stat = [&](const char* label, const std::string& name) {
    if (auto v = r.stats.value(name)) os << "  " << label << *v << '\n';
  };
  stat("RAM frames allocated    ", "phys_mem.frames_allocated");
  std::uint64_t faults = 0, toDev = 0, toSys = 0, cpuFaults = 0;
  for (const auto& [name, v] : r.stats.flat()) {
    if (name.rfind("device.", 0) != 0) continue;
    if (name.size() > 14 && name.compare(name.size() - 14, 14, ".device_faults") == 0)
      faults += std::uint64_t(v);
    if (name.size() > 16 && name.compare(name.size() - 16, 16, ".migrated_to_dev") == 0)
      toDev += std::uint64_t(v);
    if (name.size() > 16 && name.compare(name.size() - 16, 16, ".migrated_to_sys") == 0)
      toSys += std::uint64_t(v);
    if (name.size() > 15 && name.compare(name.size() - 15, 15, ".migrate_to_ram") == 0)
      cpuFaults += std::uint64_t(v);
  }
  os << "  device faults           " << faults << '\n';
  os << "  pages migrated to dev   " << toDev << '\n';
  os << "  pages migrated to sys   " << toSys << " (+ " << cpuFaults << " CPU faults on device pages)\n";
  os << "  checker                 "
     << (r.violations.empty() ? "clean" : std::to_string(r.violations.size()) + " violation(s)") << '\n';
  for (const std::string& v : r.violations) os << "    " << v << '\n';
  os << "  result                  " << (r.ok() ? "PASS" : "FAIL") << '\n';
  for (const std::string& f : r.failures) os << "  FAILED: " << f << '\n';
  return os.str();
}

}  // namespace hmmsim::scenario
