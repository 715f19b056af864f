// A platform scenario's script on the Platform. See platform_script_run.h.
#include "scenarios/platform_script_run.h"

#include <sstream>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/common/p2p_exporter.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/platform/builtin_devices.h"
#include "sim/assert.h"

namespace hmmsim::scenario {

namespace {

std::string retText(int ret) {
  return ret == 0 ? "ok" : errnoName(static_cast<Errno>(-ret));
}

/// 2ms, 150us, 40ns or 7ps: the largest unit that divides the time.
std::string timeText(std::uint64_t ps) {
  const std::pair<std::uint64_t, const char*> units[] = {
      {1'000'000'000'000ull, "s"}, {1'000'000'000ull, "ms"}, {1'000'000ull, "us"}, {1'000ull, "ns"}};
  for (const auto& [div, unit] : units)
    if (ps != 0 && ps % div == 0) return std::to_string(ps / div) + unit;
  return std::to_string(ps) + "ps";
}

}  // namespace

PlatformScriptRunner::PlatformScriptRunner(Platform& p, PlatformWorkload* w,
                                           const std::vector<PlatformOp>& ops)
    : p_(p),
      w_(w),
      ops_(ops),
      stats_("script"),
      run_(stats_.counter("ops", "ops", "script operations run (each occurrence)")),
      revokes_(stats_.counter("revokes", "events", "revoke events: exporters revoking their importers")),
      revokedPages_(stats_.counter("revoked_pages", "pages", "importer-held pages the exporter events took")),
      windowMoves_(stats_.counter("window_moves", "windows", "BAR windows moved by move_windows events")),
      pressureWindows_(stats_.counter("pressure_windows", "windows", "BAR windows bar_pressure events took")),
      resets_(stats_.counter("resets", "events", "device_reset events")),
      invalidations_(
          stats_.counter("invalidations", "rounds", "MMU_NOTIFY_CLEAR rounds of invalidation storms")),
      misbehaveSwitches_(stats_.counter("misbehave_switches", "events", "importer misbehaviour switches")),
      migrations_(stats_.counter("migrations", "events", "migrate events (to a device or back to RAM)")),
      migratedPages_(stats_.counter("migrated_pages", "pages", "pages the migrate events moved")),
      migratePs_(stats_.counter("migrate_ps", "ps", "simulated time the migrate events took (their copies)")),
      expectFailed_(stats_.counter("expect_failed", "ops", "occurrences whose result differed from expect")) {
  for (const ProcessDesc& pd : p_.desc().processes)  // the processes: section's mappings
    for (const MappingDesc& m : pd.memory) {
      const ProcessMapping* pm = p_.mapping(pd.name, m.name);
      regions_[m.name] = Region{pd.name, pm->start, -1, pm->bytes};
    }
  if (w_)
    for (const WorkloadRegion& r : w_->regions()) regions_[r.name] = Region{r.process, r.start, -1, r.bytes};
  for (const PlatformOp& op : ops_)
    if (op.kind == PlatformOpKind::Mmap && !regions_.count(op.region))
      regions_[op.region] = Region{op.process, Va(0), slots_++, op.size};
  for (const PlatformStep& s : platformSchedule(ops_))
    if (!isProcessOp(ops_[s.op].kind)) events_.push_back(s);
  buildPrograms();
}

PlatformScriptRunner::~PlatformScriptRunner() = default;

CpuOp PlatformScriptRunner::mremapOp(const PlatformOp& op, std::map<std::string, Region>& cur) {
  Region& r = cur.at(op.region);
  const std::uint64_t newLen = op.size ? op.size : r.bytes;
  int flags = MREMAP_MAYMOVE;
  int newSlot = -1;
  std::uint64_t newOffset = 0;
  if (!op.toRegion.empty() || op.back) {
    flags |= MREMAP_FIXED;
    const Region& to = op.back ? regions_.at(op.region) : cur.at(op.toRegion);
    newSlot = to.slot;
    newOffset = to.slot < 0 ? to.start.value() : 0;
  }
  // The region's name follows its memory: from now on it is where the result slot says (the old
  // address when mremap fails: the mapping stays).
  const int result = r.slot >= 0 ? r.slot : slots_++;
  const CpuOp c = CpuOp::mremap(r.slot, r.slot < 0 ? r.start.value() : 0, r.bytes, newLen, flags, result,
                                newSlot, newOffset);
  r.slot = result;
  r.start = Va(0);
  r.bytes = newLen;
  return c;
}

CpuOp PlatformScriptRunner::cpuOp(const PlatformOp& op, const Region& r) const {
  const int slot = r.slot;
  const std::uint64_t base = slot < 0 ? r.start.value() : 0;
  const std::uint64_t off = base + op.offset;
  const std::uint64_t len = op.length ? op.length : (op.offset < r.bytes ? r.bytes - op.offset : 0);
  switch (op.kind) {
    case PlatformOpKind::Mmap:
      return slot < 0 ? CpuOp::mmap(-1, r.bytes, op.prot, MAP_PRIVATE | MAP_FIXED, r.start.value())
                      : CpuOp::mmap(slot, r.bytes, op.prot, MAP_PRIVATE);
    case PlatformOpKind::Munmap:
      return CpuOp::munmap(slot, off, len);
    case PlatformOpKind::Mprotect:
      return CpuOp::mprotect(slot, off, len, op.prot);
    case PlatformOpKind::Madvise:
      return CpuOp::madvise(slot, off, len, op.advice);
    case PlatformOpKind::Read:
      return CpuOp::load(slot, off, len);
    case PlatformOpKind::Write:
      return CpuOp::store(slot, off, len, static_cast<std::uint8_t>(op.value.value_or(0)));
    default:
      HMMSIM_ASSERT(false, "not a process operation: " << op.name);
  }
}

void PlatformScriptRunner::buildPrograms() {
  std::map<std::string, CpuProgram> programs;
  std::map<std::string, Region> cur = regions_;  // where each region is at each step (mremap moves them)
  for (const PlatformStep& s : platformSchedule(ops_)) {
    const PlatformOp& op = ops_[s.op];
    if (!isProcessOp(op.kind)) continue;
    const std::string cpu = "script_" + op.process;
    CpuProgram& prog = programs[cpu];
    prog.push_back(CpuOp::until(s.atPs));
    cpuSteps_.push_back(CpuStep{s, cpu, prog.size()});
    if (op.kind == PlatformOpKind::Fork) {
      prog.push_back(CpuOp::fork());
      continue;
    }
    auto r = cur.find(op.region);
    HMMSIM_ASSERT(r != cur.end(), op.where << ": region " << op.region << " unknown to the workload");
    prog.push_back(op.kind == PlatformOpKind::Mremap ? mremapOp(op, cur) : cpuOp(op, r->second));
  }
  for (auto& [cpu, prog] : programs) cores_[cpu] = &p_.startCpu(cpu, std::move(prog));
}

void PlatformScriptRunner::start() {
  if (!events_.empty()) sc_core::sc_spawn([this] { run(); }, "platform_script");
}

void PlatformScriptRunner::run() {
  for (const PlatformStep& s : events_) {
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    if (s.atPs > now) seqWait(sc_core::sc_time(double(s.atPs - now), sc_core::SC_PS));
    runEvent(ops_[s.op], s.atPs);
  }
}

std::string PlatformScriptRunner::label(const PlatformOp& op, std::uint64_t atPs) const {
  return op.where + ": " + op.name + " at " + timeText(atPs) + ": ";
}

void PlatformScriptRunner::runEvent(const PlatformOp& op, std::uint64_t atPs) {
  ++run_;
  if (trace_)
    trace_->instant(TraceCategory::Script, "script",
                    op.name + (op.device.empty() ? " " + op.region : " " + op.device),
                    sc_core::sc_time_stamp().value());
  Errno e = Errno::Ok;
  switch (op.kind) {
    case PlatformOpKind::InvalidationStorm:
      e = storm(op);
      break;
    case PlatformOpKind::Misbehave:
      e = misbehave(op);
      break;
    case PlatformOpKind::Migrate:
      e = migrate(op);
      break;
    default:
      e = exporterEvent(op);
  }
  if (toKernel(e) != op.expect) {
    ++expectFailed_;
    failures_.push_back(label(op, atPs) + "returned " + retText(toKernel(e)) + ", expected " +
                        retText(op.expect));
  }
}

Errno PlatformScriptRunner::exporterEvent(const PlatformOp& op) {
  P2pExporter* x = p_.device(op.device).p2pExporter();
  HMMSIM_ASSERT(x, "device " << op.device << " has no exporter (the parser checks its type)");
  ExporterEventResult r;
  switch (op.kind) {
    case PlatformOpKind::Revoke:
      ++revokes_;
      r = revokeImporters(*x);
      break;
    case PlatformOpKind::MoveWindows:
      r = moveResidentWindows(*x);
      windowMoves_ += r.windowsMoved;
      break;
    case PlatformOpKind::BarPressure: {
      auto& pr = pressure_.emplace_back(std::make_unique<BarPressure>(*x, "bar_pressure_" + op.device));
      r = pr->take(op.windows);
      pressureWindows_ += r.windowsMoved;
      BarPressure* held = pr.get();
      sc_core::sc_spawn([held, hold = op.durationPs] {
        if (hold) seqWait(sc_core::sc_time(double(hold), sc_core::SC_PS));
        held->release();
      });
      break;
    }
    case PlatformOpKind::DeviceReset: {
      ++resets_;
      const BarRevokeResult b = x->bar().resetBegin();
      r.err = b.err;
      r.pagesRevoked = b.pagesRevoked;
      P2pBarManager* bar = &x->bar();
      sc_core::sc_spawn([bar, d = op.durationPs] {
        if (d) seqWait(sc_core::sc_time(double(d), sc_core::SC_PS));
        bar->resetEnd();
      });
      break;
    }
    default:
      HMMSIM_ASSERT(false, "not an exporter event: " << op.name);
  }
  revokedPages_ += r.pagesRevoked;
  return r.err;
}

Errno PlatformScriptRunner::storm(const PlatformOp& op) {
  const Region& r = regions_.at(op.region);
  HMMSIM_ASSERT(r.slot < 0, "invalidation storms name workload regions");
  const Va start = r.start + op.offset;
  const std::uint64_t len = op.length ? op.length : r.bytes - op.offset;
  Mm& mm = p_.process(r.process);
  for (std::uint64_t i = 0; i < op.times; ++i) {
    mm.notifyRange(MmuNotifierEvent::Clear, start, start + len);
    ++invalidations_;
  }
  return Errno::Ok;
}

Errno PlatformScriptRunner::misbehave(const PlatformOp& op) {
  ImporterDma* d = p_.device(op.device).importerDma();
  if (!d) return Errno::NoDev;  // no importer (yet): nothing to switch
  d->mirror().setMisbehaviour(op.mode);
  ++misbehaveSwitches_;
  return Errno::Ok;
}

Errno PlatformScriptRunner::migrate(const PlatformOp& op) {
  const Region& r = regions_.at(op.region);
  HMMSIM_ASSERT(r.slot < 0, "migrate names workload regions and process mappings");
  Mm& mm = p_.process(r.process);
  const Va start = r.start + op.offset;
  const std::uint64_t len = op.length ? op.length : r.bytes - op.offset;
  std::uint64_t moved = 0;
  Errno e = Errno::Ok;
  PlatformDevice& d = p_.device(op.device);
  const std::uint64_t t0 = sc_core::sc_time_stamp().value();
  if (auto* g = dynamic_cast<GpuPlatformDevice*>(&d)) {
    // The runtime's thread waits for the copy engine (nouveau and amdgpu wait for the copy's fence
    // before migrate_vma_pages): with a quantum keeper the driver charges each copy on the GPU's
    // copy engine (PCIe DMA to or from DRAM, VRAM channels), as the workloads' migrations are.
    SeqQuantumKeeper qk;
    qk.reset();
    e = op.toRam ? g->driver().migrateToRam(mm, start, start + len, &qk, &moved)
                 : g->driver().migrateToVram(mm, start, start + len, &qk, &moved);
    qk.sync();
  } else {
    // The dmirror test driver's ioctls, as hmm-tests drive them: MIGRATE_TO_DEV also copies the
    // migrated data into a buffer of the process (its `ptr`), mapped for the call.
    DmirrorDevice& dm = dynamic_cast<DmirrorPlatformDevice&>(d).dmirror();
    std::shared_ptr<File>& f = dmirrorFiles_[{op.device, r.process}];
    if (!f) f = dm.open(mm);
    const VaResult buf = mm.mmap(Va(0), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!buf.ok()) return buf.err;
    HmmDmirrorCmd cmd;
    cmd.addr = start.value();
    cmd.ptr = buf.addr.value();
    cmd.npages = len >> kPageShift;
    e = dm.ioctl(*f, op.toRam ? HMM_DMIRROR_MIGRATE_TO_SYS : HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
    moved = cmd.cpages;
    mm.munmap(buf.addr, len);
  }
  migratePs_ += sc_core::sc_time_stamp().value() - t0;
  ++migrations_;
  migratedPages_ += moved;
  return e;
}

void PlatformScriptRunner::finish() {
  for (const CpuStep& s : cpuSteps_) checkCpuStep(s);
}

void PlatformScriptRunner::checkCpuStep(const CpuStep& s) {
  const PlatformOp& op = ops_[s.step.op];
  const CpuCore& core = *cores_.at(s.cpu);
  const std::string at = label(op, s.step.atPs);
  auto failed = [&](const std::string& what) {
    ++expectFailed_;
    failures_.push_back(at + what);
  };
  if (s.index >= core.results().size()) {
    failed("did not run: process '" + op.process + "' was killed by an earlier access (SIGSEGV/SIGBUS)");
    return;
  }
  ++run_;
  const CpuOpResult& res = core.results()[s.index];
  const int got = toKernel(res.err);
  if (got != op.expect) {
    failed(op.kind == PlatformOpKind::Read || op.kind == PlatformOpKind::Write
               ? (got == 0 ? "the access succeeded, expected " + retText(op.expect)
                           : "the access faulted (" + retText(got) + ": the process was killed), expected " +
                                 retText(op.expect))
               : "returned " + retText(got) + ", expected " + retText(op.expect));
    return;
  }
  if (op.kind != PlatformOpKind::Read || got != 0) return;
  for (std::size_t i = 0; i < res.data.size(); ++i) {
    const int want = op.bytes && i < op.bytes->size() ? (*op.bytes)[i] : op.value.value_or(-1);
    if (want < 0 || res.data[i] == want) continue;
    std::ostringstream os;
    os << "byte " << op.offset + i << " of region '" << op.region << "' is 0x" << std::hex << int(res.data[i])
       << ", expected 0x" << want;
    failed(os.str());
    return;
  }
}

void PlatformScriptRunner::check(std::vector<std::string>& failures) const {
  failures.insert(failures.end(), failures_.begin(), failures_.end());
}

void PlatformScriptRunner::addStats(StatsRegistry& r) {
  r.add("script", stats_);
  for (auto& [cpu, core] : cores_) r.add("cpu." + cpu, core->stats());
}

}  // namespace hmmsim::scenario
