// The sections of a scenario file → Scenario: machine, processes, script, expect.

#include <algorithm>
#include <filesystem>
#include <set>

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "scenarios/param_tables.h"
#include "scenarios/scenario.h"
#include "scenarios/workloads.h"
#include "sim/checker.h"
#include "sim/errno.h"

namespace hmmsim::scenario {

std::string joinedWords(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : ", ") + w;
  return s;
}

std::string didYouMean(const std::string& got, const std::vector<std::string>& known) {
  const std::string near = nearestWord(got, known);
  return near.empty() ? "" : "; did you mean '" + near + "'?";
}

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMaxRegion = 1ull << 40;

int parseProt(const ConfigNode& n) {
  const std::string s = n.asString();
  if (s == "none") return PROT_NONE;
  int prot = 0;
  for (char c : s) {
    const int bit = c == 'r' ? PROT_READ : c == 'w' ? PROT_WRITE : c == 'x' ? PROT_EXEC : -1;
    if (bit < 0 || (prot & bit))
      n.fail("expected a protection: none, or letters of rwx (r, rw, rwx, ...), got '" + s + "'");
    prot |= bit;
  }
  if (s.empty()) n.fail("expected a protection: none, or letters of rwx");
  return prot;
}

std::uint64_t pageMultiple(const ConfigNode& n, bool allowZero) {
  const std::uint64_t v = n.asBytes();
  if ((!allowZero && v == 0) || v % kPage != 0 || v > kMaxRegion)
    n.fail("expected a " + std::string(allowZero ? "" : "non-zero ") + "multiple of 4KiB up to 1TiB, got '" +
           n.asString() + "'");
  return v;
}

IntPattern parsePattern(const ConfigNode& n) {
  n.requireKeys({"base", "step"});
  IntPattern p;
  if (auto b = n.optInt("base", INT32_MIN, INT32_MAX)) p.base = *b;
  if (auto s = n.optInt("step", INT32_MIN, INT32_MAX)) p.step = *s;
  return p;
}

/// "EFAULT", "-14", "0", "ok" → 0 or -errno.
int parseRet(const ConfigNode& n) {
  const std::string s = n.asString();
  if (s == "ok" || s == "0") return 0;
  static const Errno kAll[] = {Errno::Perm,     Errno::NoEnt,     Errno::Intr,    Errno::Io,    Errno::Again,
                               Errno::NoMem,    Errno::Acces,     Errno::Fault,   Errno::Busy,  Errno::Exist,
                               Errno::NoDev,    Errno::Inval,     Errno::NoSpc,   Errno::Range, Errno::NoSys,
                               Errno::Overflow, Errno::OpNotSupp, Errno::TimedOut};
  std::vector<std::string> names{"ok"};
  for (Errno e : kAll) {
    if (s == errnoName(e)) return toKernel(e);
    names.push_back(errnoName(e));
  }
  if (s.size() > 1 && s[0] == '-' && std::all_of(s.begin() + 1, s.end(), ::isdigit))
    return int(n.asInt(-4095, 0));
  const std::string near = nearestWord(s, names);
  n.fail("expected ok, 0, an errno name (EFAULT, EPERM, ...) or -N, got '" + s + "'" +
         (near.empty() ? "" : " (did you mean '" + near + "'?)"));
}

ExpectRet parseExpect(const ConfigNode& n) {
  ExpectRet e;
  if (n.isScalar()) {
    e.ret = parseRet(n);
    return e;
  }
  n.requireKeys({"ret", "cpages", "faults"});
  if (auto r = n.find("ret")) e.ret = parseRet(*r);
  if (auto c = n.optInt("cpages", 0, INT64_MAX)) e.cpages = std::uint64_t(*c);
  if (auto f = n.optInt("faults", 0, INT64_MAX)) e.faults = std::uint64_t(*f);
  return e;
}

const std::vector<std::string> kRegionKeys = {"name", "size",      "prot", "kind", "align",
                                              "thp",  "file_ints", "fill", "fd",   "page_size"};

/// `page_size` of a hugetlb region: 2MiB or 1GiB (the x86-64 hstates).
std::uint64_t hugePageSize(const ConfigNode& n) {
  const std::uint64_t v = n.asBytes();
  if (v != (2ull << 20) && v != (1ull << 30))
    n.fail("expected a hugetlb page size the machine has: 2MiB or 1GiB (the x86-64 hstates), got '" +
           n.asString() + "'");
  return v;
}

RegionSpec parseRegion(const ConfigNode& n, const std::string& nameKey, const std::string& deviceKey = "fd") {
  RegionSpec r;
  r.name = n.at(nameKey).asString();
  r.size = pageMultiple(n.at("size"), false);
  r.prot = n.has("prot") ? parseProt(n.at("prot")) : PROT_READ | PROT_WRITE;
  const std::string kind =
      n.has("kind")
          ? n.at("kind").asChoice({"anon", "shared", "file", "file-private", "device-file", "hugetlb"})
          : "anon";
  r.kind = kind == "anon"           ? MapKind::Anon
           : kind == "shared"       ? MapKind::SharedAnon
           : kind == "file"         ? MapKind::FileShared
           : kind == "file-private" ? MapKind::FilePrivate
           : kind == "device-file"  ? MapKind::DeviceFile
                                    : MapKind::Hugetlb;
  if (auto a = n.find("align")) {
    r.align = a->asBytes();
    if (r.align == 0 || (r.align & (r.align - 1)) || r.align < kPage)
      a->fail("expected a power of two >= 4KiB");
  }
  r.thp = n.optBool("thp").value_or(false);
  if (auto f = n.find("file_ints")) {
    if (r.kind != MapKind::FileShared && r.kind != MapKind::FilePrivate)
      f->fail("file_ints needs kind: file or file-private");
    r.fileInts = parsePattern(*f);
  }
  if (auto f = n.find("fill")) r.fill = parsePattern(*f);
  if (r.kind == MapKind::DeviceFile) (deviceKey == "fd" ? r.fd : r.device) = n.at(deviceKey).asString();
  if (auto ps = n.find("page_size")) {
    if (r.kind != MapKind::Hugetlb) ps->fail("page_size needs kind: hugetlb");
    r.hugePageBytes = hugePageSize(*ps);
  }
  if (r.kind == MapKind::Hugetlb && r.size % r.hugePageBytes != 0)
    n.at("size").fail(std::string("hugetlb regions are multiples of their page size (") +
                      (r.hugePageBytes == (1ull << 30) ? "1GiB" : "2MiB") + ")");
  return r;
}

void parseMachine(const ConfigNode& m, Scenario& s) {
  m.requireKeys({"phys_mem", "dmirror", "devices"});
  s.physMem.ramSize = 512ull << 20;  // the conformance machine's RAM unless the file says
  if (auto pm = m.find("phys_mem")) physMemParamTable().load(*pm, s.physMem);
  if (auto dm = m.find("dmirror")) dmirrorParamTable().load(*dm, s.dmirror);
  if (auto devs = m.find("devices")) {
    std::set<unsigned> ids;
    for (const ConfigNode& d : devs->elements()) {
      d.requireKeys({"type", "id", "memory"});
      d.at("type").asChoice({"dmirror"});
      DeviceSpec spec;
      spec.id = unsigned(d.at("id").asInt(0, 15));
      if (!ids.insert(spec.id).second)
        d.at("id").fail("device id " + std::to_string(spec.id) + " is used twice");
      const std::string mem = d.has("memory") ? d.at("memory").asChoice({"private", "coherent"}) : "private";
      spec.memory = mem == "private" ? MemoryType::DevicePrivate : MemoryType::DeviceCoherent;
      s.devices.push_back(spec);
    }
  }
}

void parseProcess(const ConfigNode& n, Scenario& s) {
  n.requireKeys({"name", "mm", "open", "memory"});
  ProcessSpec p;
  p.name = n.at("name").asString();
  for (const ProcessSpec& q : s.processes)
    if (q.name == p.name) n.at("name").fail("process '" + p.name + "' is declared twice");
  if (auto mm = n.find("mm")) mmParamTable().load(*mm, p.mm);
  if (auto open = n.find("open"))
    for (const ConfigNode& d : open->elements()) {
      p.open.push_back(unsigned(d.asInt(0, 15)));
      const bool known = std::any_of(s.devices.begin(), s.devices.end(),
                                     [&](const DeviceSpec& x) { return x.id == p.open.back(); });
      if (!known) d.fail("no dmirror device " + std::to_string(p.open.back()) + " in machine.devices");
    }
  if (auto mem = n.find("memory"))
    for (const ConfigNode& r : mem->elements()) {
      r.requireKeys(kRegionKeys);
      p.memory.push_back(parseRegion(r, "name"));
      const RegionSpec& m = p.memory.back();
      const bool opened = std::any_of(p.open.begin(), p.open.end(),
                                      [&](unsigned d) { return m.fd == "dmirror" + std::to_string(d); });
      if (m.kind == MapKind::DeviceFile && !opened)
        r.at("fd").fail(
            "a device-file region's fd must be one the process opens (dmirror<N> with N in open:)");
    }
  s.processes.push_back(std::move(p));
}

}  // namespace

namespace detail {
int parseProtOf(const ConfigNode& n) {
  return parseProt(n);
}
std::uint64_t pageMultipleOf(const ConfigNode& n, bool allowZero) {
  return pageMultiple(n, allowZero);
}
IntPattern parsePatternOf(const ConfigNode& n) {
  return parsePattern(n);
}
ExpectRet parseExpectOf(const ConfigNode& n) {
  return parseExpect(n);
}
RegionSpec parseRegionOf(const ConfigNode& n, const std::string& nameKey, const std::string& deviceKey) {
  return parseRegion(n, nameKey, deviceKey);
}
}  // namespace detail

// Script operations: scenario_parse_ops.cpp.
std::vector<Op> parseScriptElements(const std::vector<ConfigNode>& elements, unsigned depth);
void checkScript(const Scenario& s);

// A platform scenario's processes and their mappings: platform_processes.cpp.
void parsePlatformProcesses(const std::vector<ConfigNode>& processes, Scenario& s);

// The platform and its workload: scenario_parse_platform.cpp.
void parsePlatform(const ConfigNode& n, Scenario& s);
void parseWorkload(const ConfigNode& n, Scenario& s);

/// `expect:` (also a variant's): stats entries are appended, the checker verdict replaced.
void parseExpectSection(const ConfigNode& e, Scenario& s) {
  e.requireKeys({"stats", "checker"});
  if (auto st = e.find("stats"))
    for (const ConfigNode& x : st->elements()) {
      x.requireKeys({"stat", "min", "max", "eq"});
      StatExpect se;
      se.where = where(x);
      se.stat = x.at("stat").asString();
      se.eq = x.optDouble("eq");
      se.min = x.optDouble("min");
      se.max = x.optDouble("max");
      if (se.eq && (se.min || se.max))
        x.at(se.min ? "min" : "max").fail("eq is exact: give eq alone, or min and/or max without it");
      if (!se.eq && !se.min && !se.max) x.fail("give eq, min or max");
      if (se.min && se.max && *se.min > *se.max) x.at("max").fail("max is below min: no value can meet both");
      s.expect.stats.push_back(se);
    }
  if (auto c = e.find("checker")) {
    if (c->isScalar()) {
      c->asChoice({"clean"});
      return;
    }
    s.expect.checker.clean = false;
    std::vector<std::string> rules;
    for (CheckRule r : {CheckRule::StaleTranslation, CheckRule::FreedFrame, CheckRule::OutsideBarWindow,
                        CheckRule::UnmappedIova, CheckRule::DataIntegrity, CheckRule::Locking,
                        CheckRule::UnsupportedRequest})
      rules.push_back(checkRuleName(r));
    c->requireKeys(rules);
    for (const auto& [rule, count] : c->entries())
      s.expect.checker.counts[rule] = std::uint64_t(count.asInt(0, INT64_MAX));
  }
}

/// What a platform script may name: the workload's regions, then the processes: mappings (a
/// mapping named like a workload region is refused at its name).
RegionNames scriptRegions(const WorkloadKind& kind, const Scenario& s,
                          const std::vector<ConfigNode>& processes) {
  RegionNames r = kind.regions ? kind.regions(s.workload.params) : RegionNames{};
  const std::size_t workloadRegions = r.size();
  for (std::size_t i = 0; i < s.platform.desc->processes.size() && i < processes.size(); ++i) {
    const ProcessDesc& p = s.platform.desc->processes[i];
    const std::vector<ConfigNode> mem =
        processes[i].has("memory") ? processes[i].at("memory").elements() : std::vector<ConfigNode>{};
    for (std::size_t j = 0; j < p.memory.size(); ++j) {
      for (std::size_t k = 0; k < workloadRegions; ++k)
        if (r[k].first == p.memory[j].name)
          mem[j].at("name").fail("'" + p.memory[j].name + "' is a region of workload." + s.workload.kind +
                                 ": give the mapping another name (scripts name both)");
      r.emplace_back(p.memory[j].name, p.name);
    }
  }
  return r;
}

Scenario buildScenario(const std::string& file, const std::map<std::string, ConfigNode>& single,
                       const std::vector<ConfigNode>& processes, const std::vector<ConfigNode>& script) {
  Scenario s;
  s.file = file;
  auto get = [&](const char* k) -> const ConfigNode* {
    auto it = single.find(k);
    return it == single.end() ? nullptr : &it->second;
  };
  if (auto* n = get("name")) s.name = n->asString();
  if (auto* n = get("description")) s.description = n->asString();
  if (auto* n = get("seed")) s.seed = std::uint64_t(n->asInt(0, INT64_MAX));
  if (auto* n = get("platform")) {
    s.platform.section = *n;
    parsePlatform(*n, s);
  }
  if (s.platform.desc) parsePlatformProcesses(processes, s);  // before the workload places buffers
  if (auto* n = get("workload")) parseWorkload(*n, s);
  if (s.platform.desc) {  // a platform scenario: the dmirror machine's sections do not apply
    for (const char* k : {"machine"})
      if (auto* n = get(k)) n->fail("a platform scenario's machine is its platform: section");
    if (!script.empty()) {
      const WorkloadKind* kind = findWorkloadKind(s.workload.kind);
      if (!kind)
        script.front().fail(
            "a platform scenario's script runs during its workload: give a workload: section");
      s.platformScript = parsePlatformScript(script, scriptRegions(*kind, s, processes), *s.platform.desc);
    }
  }
  if (auto* n = get("machine")) parseMachine(*n, s);
  if (s.devices.empty())  // the kernel module's four devices
    s.devices = {{0, MemoryType::DevicePrivate},
                 {1, MemoryType::DevicePrivate},
                 {2, MemoryType::DeviceCoherent},
                 {3, MemoryType::DeviceCoherent}};
  if (!s.platform.desc)
    for (const ConfigNode& p : processes) parseProcess(p, s);
  if (s.processes.empty()) s.processes.push_back(ProcessSpec{"main", {}, {}, {}});
  if (!s.platform.desc) {
    s.script = parseScriptElements(script, 0);
    checkScript(s);
  }
  if (auto* n = get("expect")) parseExpectSection(*n, s);
  if (s.name.empty()) s.name = std::filesystem::path(file).stem().string();
  return s;
}

}  // namespace hmmsim::scenario
