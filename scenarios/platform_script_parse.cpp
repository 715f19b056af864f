// A platform scenario's `script:` → PlatformOps, validated before anything runs. See
// platform_script.h.

#include <algorithm>
#include <map>
#include <set>

#include "scenarios/platform_script.h"
#include "scenarios/scenario.h"

namespace hmmsim::scenario {

namespace detail {
int parseProtOf(const ConfigNode& n);
std::uint64_t pageMultipleOf(const ConfigNode& n, bool allowZero);
ExpectRet parseExpectOf(const ConfigNode& n);
int parseAdviceOf(const ConfigNode& n);
}  // namespace detail

bool isProcessOp(PlatformOpKind k) {
  switch (k) {
    case PlatformOpKind::Mmap:
    case PlatformOpKind::Munmap:
    case PlatformOpKind::Mprotect:
    case PlatformOpKind::Madvise:
    case PlatformOpKind::Read:
    case PlatformOpKind::Write:
    case PlatformOpKind::Fork:
    case PlatformOpKind::Mremap:
      return true;
    default:
      return false;
  }
}

namespace {

constexpr std::uint64_t kMaxOccurrences = 1'000'000;
const std::vector<std::string> kTimeKeys = {"op", "at", "every", "count", "until", "expect"};

struct PlatformOpSyntax {
  const char* name;
  PlatformOpKind kind;
  std::vector<std::string> keys;         ///< besides kTimeKeys
  std::vector<std::string> deviceTypes;  ///< for `device:` (exporters or importers)
};

const std::vector<std::string> kExporters = {"colour_engine", "gpu", "nvme"};
const std::vector<std::string> kImporters = {"camera", "colour_engine", "nic"};
const std::vector<std::string> kMigrators = {"gpu", "dmirror"};

const std::vector<PlatformOpSyntax>& syntax() {
  static const std::vector<PlatformOpSyntax> k = {
      {"mmap", PlatformOpKind::Mmap, {"region", "size", "prot", "process"}, {}},
      {"munmap", PlatformOpKind::Munmap, {"region", "offset", "length"}, {}},
      {"mprotect", PlatformOpKind::Mprotect, {"region", "offset", "length", "prot"}, {}},
      {"madvise", PlatformOpKind::Madvise, {"region", "offset", "length", "advice"}, {}},
      {"read", PlatformOpKind::Read, {"region", "offset", "length", "value", "bytes"}, {}},
      {"write", PlatformOpKind::Write, {"region", "offset", "length", "value"}, {}},
      {"revoke", PlatformOpKind::Revoke, {"device"}, kExporters},
      {"move_windows", PlatformOpKind::MoveWindows, {"device"}, kExporters},
      {"bar_pressure", PlatformOpKind::BarPressure, {"device", "windows", "hold"}, kExporters},
      {"device_reset", PlatformOpKind::DeviceReset, {"device", "duration"}, kExporters},
      {"invalidation_storm", PlatformOpKind::InvalidationStorm, {"region", "times"}, {}},
      {"misbehave", PlatformOpKind::Misbehave, {"device", "mode"}, kImporters},
      {"fork", PlatformOpKind::Fork, {"process"}, {}},
      {"mremap", PlatformOpKind::Mremap, {"region", "size", "to", "back"}, {}},
      {"migrate", PlatformOpKind::Migrate, {"region", "offset", "length", "device", "to"}, kMigrators},
  };
  return k;
}

std::vector<std::string> opNames() {
  std::vector<std::string> names;
  for (const PlatformOpSyntax& s : syntax()) names.push_back(s.name);
  return names;
}

/// What the script can name: the workload's regions, the regions its mmaps create (with the time
/// of the first), the platform's devices.
struct Names {
  std::map<std::string, std::string> regions;   ///< name -> process
  std::map<std::string, std::uint64_t> mapped;  ///< script mmap regions -> first map time
  std::string defaultProcess;
  const PlatformDesc* desc = nullptr;
};

const PlatformOpSyntax& findSyntax(const ConfigNode& opNode) {
  const std::string name = opNode.asString();
  for (const PlatformOpSyntax& s : syntax())
    if (name == s.name) return s;
  opNode.fail("unknown platform script operation '" + name + "'" +
              (nearestWord(name, opNames()).empty() ? "; operations are: " + joinedWords(opNames())
                                                    : didYouMean(name, opNames())));
}

void parseTimes(const ConfigNode& n, PlatformOp& op) {
  op.atPs = n.at("at").asDurationPs();
  auto every = n.find("every");
  auto count = n.find("count");
  auto until = n.find("until");
  if (!every) {
    if (count) count->fail("count repeats an operation `every:` period; give every");
    if (until) until->fail("until ends an operation's `every:` repetition; give every");
    return;
  }
  op.everyPs = every->asDurationPs();
  if (op.everyPs == 0) every->fail("expected a period above 0, e.g. 2ms");
  if (count && until) until->fail("give count or until, not both");
  if (count) {
    op.count = std::uint64_t(count->asInt(1, std::int64_t(kMaxOccurrences)));
  } else if (until) {
    const std::uint64_t end = until->asDurationPs();
    if (end < op.atPs) until->fail("until is before at");
    op.count = (end - op.atPs) / op.everyPs + 1;
    if (op.count > kMaxOccurrences) until->fail("more than 1000000 occurrences; use a longer every");
  } else {
    every->fail("an operation repeated `every:` period needs count: N or until: TIME");
  }
}

void parseDevice(const ConfigNode& n, const PlatformOpSyntax& syn, const Names& names, PlatformOp& op) {
  const ConfigNode at = n.at("device");
  op.device = at.asString();
  std::vector<std::string> fit;
  for (const DeviceDesc& d : names.desc->devices) {
    const bool typeOk =
        std::find(syn.deviceTypes.begin(), syn.deviceTypes.end(), d.type) != syn.deviceTypes.end();
    if (d.name == op.device && typeOk) return;
    if (d.name == op.device)
      at.fail("device '" + op.device + "' is a " + d.type + "; " + syn.name + " needs one of type " +
              joinedWords(syn.deviceTypes));
    if (typeOk) fit.push_back(d.name);
  }
  at.fail("no device '" + op.device + "' in platform.devices" + didYouMean(op.device, fit) +
          (fit.empty() ? "" : " (" + std::string(syn.name) + " fits: " + joinedWords(fit) + ")"));
}

void parseRegion(const ConfigNode& n, Names& names, PlatformOp& op) {
  const ConfigNode at = n.at("region");
  op.region = at.asString();
  auto it = names.regions.find(op.region);
  if (it == names.regions.end()) {
    std::vector<std::string> known;
    for (const auto& [name, proc] : names.regions) known.push_back(name);
    at.fail("no region '" + op.region + "': the workload's regions and the script's mmaps are " +
            (known.empty() ? "none" : joinedWords(known)) + didYouMean(op.region, known));
  }
  op.process = it->second;
  if (auto m = names.mapped.find(op.region); m != names.mapped.end() && op.atPs < m->second)
    at.fail("region '" + op.region + "' is first mapped by the script later (at " +
            std::to_string(m->second) + " ps)");
  if (auto o = n.find("offset")) op.offset = detail::pageMultipleOf(*o, true);
  if (auto l = n.find("length")) op.length = detail::pageMultipleOf(*l, false);
}

/// fork's `process:` (default: the workload's).
void parseProcess(const ConfigNode& n, const Names& names, PlatformOp& op) {
  op.process = n.has("process") ? n.at("process").asString() : names.defaultProcess;
  std::vector<std::string> known;
  for (const ProcessDesc& p : names.desc->processes) {
    if (p.name == op.process) return;
    known.push_back(p.name);
  }
  (n.has("process") ? n.at("process") : n.at("op"))
      .fail("no process '" + op.process + "'" + didYouMean(op.process, known) +
            (known.empty() ? "" : " (processes: " + joinedWords(known) + ")"));
}

/// mremap: the region, its new `size` (default: as it is), `to:` another region of the process
/// whose address it moves to, or `back: true` to the address the workload (or processes:) gave it.
void parseMremap(const ConfigNode& n, Names& names, PlatformOp& op) {
  parseRegion(n, names, op);
  if (auto sz = n.find("size")) op.size = detail::pageMultipleOf(*sz, false);
  op.back = n.optBool("back").value_or(false);
  if (auto to = n.find("to")) {
    if (op.back) to->fail("give to or back: true, not both");
    op.toRegion = to->asString();
    auto it = names.regions.find(op.toRegion);
    if (it == names.regions.end() || it->second != op.process || op.toRegion == op.region) {
      std::vector<std::string> same;
      for (const auto& [name, proc] : names.regions)
        if (proc == op.process && name != op.region) same.push_back(name);
      to->fail("no other region '" + op.toRegion + "' in process '" + op.process + "' to move to" +
               didYouMean(op.toRegion, same) +
               (same.empty() ? "" : " (its regions: " + joinedWords(same) + ")"));
    }
  }
  if (op.back && names.mapped.count(op.region))
    n.at("back").fail("back: true moves a workload region or a process mapping to its own address; '" +
                      op.region + "' is a script mmap");
}

void parseByte(const ConfigNode& n, PlatformOp& op) {
  if (auto v = n.find("value")) op.value = int(v->asInt(0, 255));
}

void parseFields(const ConfigNode& n, const PlatformOpSyntax& syn, Names& names, PlatformOp& op) {
  switch (op.kind) {
    case PlatformOpKind::Mmap:
      break;  // parseMmaps did it
    case PlatformOpKind::Munmap:
    case PlatformOpKind::InvalidationStorm:
      parseRegion(n, names, op);
      if (op.kind == PlatformOpKind::InvalidationStorm)
        op.times = std::uint64_t(n.at("times").asInt(1, 100000));
      break;
    case PlatformOpKind::Mprotect:
      parseRegion(n, names, op);
      op.prot = detail::parseProtOf(n.at("prot"));
      break;
    case PlatformOpKind::Madvise:
      parseRegion(n, names, op);
      op.advice = detail::parseAdviceOf(n.at("advice"));
      break;
    case PlatformOpKind::Write:
      parseRegion(n, names, op);
      op.value = int(n.at("value").asInt(0, 255));
      break;
    case PlatformOpKind::Read:
      parseRegion(n, names, op);
      parseByte(n, op);
      if (auto b = n.find("bytes")) {
        op.bytes.emplace();
        for (const ConfigNode& x : b->elements()) op.bytes->push_back(int(x.asInt(0, 255)));
      }
      if (!op.value && !op.bytes && !n.has("expect"))
        n.fail("a read checks something: give value, bytes or expect");
      break;
    case PlatformOpKind::Revoke:
    case PlatformOpKind::MoveWindows:
      parseDevice(n, syn, names, op);
      break;
    case PlatformOpKind::BarPressure:
      parseDevice(n, syn, names, op);
      op.windows = std::uint64_t(n.at("windows").asInt(1, 1 << 20));
      op.durationPs = n.optDurationPs("hold").value_or(0);
      break;
    case PlatformOpKind::DeviceReset:
      parseDevice(n, syn, names, op);
      op.durationPs = n.optDurationPs("duration").value_or(0);
      break;
    case PlatformOpKind::Fork:
      parseProcess(n, names, op);
      break;
    case PlatformOpKind::Mremap:
      parseMremap(n, names, op);
      break;
    case PlatformOpKind::Migrate:
      parseRegion(n, names, op);
      parseDevice(n, syn, names, op);
      if (names.mapped.count(op.region))
        n.at("region").fail(
            "migrate names a workload region or a process mapping (a script mmap's address is "
            "known only to its process's core)");
      op.toRam = n.has("to") && n.at("to").asChoice({"device", "ram"}) == "ram";
      break;
    case PlatformOpKind::Misbehave: {
      parseDevice(n, syn, names, op);
      const ConfigNode m = n.at("mode");
      const std::string s = m.asString();
      std::vector<std::string> modes;
      bool found = false;
      for (ImporterMisbehaviour x :
           {ImporterMisbehaviour::None, ImporterMisbehaviour::IgnoreInvalidations,
            ImporterMisbehaviour::AckWithoutWaiting, ImporterMisbehaviour::PinForever,
            ImporterMisbehaviour::KeepOldAddress}) {
        std::string word = importerMisbehaviourName(x);  // the device param's spelling: _ for -
        std::replace(word.begin(), word.end(), '-', '_');
        modes.push_back(word);
        if (s == modes.back()) {
          op.mode = x;
          found = true;
        }
      }
      if (!found)
        m.fail("expected one of: " + joinedWords(modes) + "; got '" + s + "'" + didYouMean(s, modes));
      break;
    }
  }
}

/// First pass: the regions script mmaps create (a new name, its process and size), so later
/// operations may name them whatever their order in the file.
void parseMmaps(const std::vector<ConfigNode>& elements, Names& names, std::vector<PlatformOp>& ops) {
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const ConfigNode& n = elements[i];
    PlatformOp& op = ops[i];
    if (op.kind != PlatformOpKind::Mmap) continue;
    op.region = n.at("region").asString();
    op.prot = n.has("prot") ? detail::parseProtOf(n.at("prot")) : PROT_READ | PROT_WRITE;
    auto known = names.regions.find(op.region);
    const bool mine = known != names.regions.end() && names.mapped.count(op.region) == 0;
    if (mine) {  // the workload's region, mapped again at its address
      op.process = known->second;
      if (n.has("process") && n.at("process").asString() != op.process)
        n.at("process").fail("region '" + op.region + "' is the workload's, in process '" + op.process + "'");
      if (n.has("size"))
        n.at("size").fail("a workload region is mapped again whole, at its address: no size");
      continue;
    }
    op.size = detail::pageMultipleOf(n.at("size"), false);
    op.process = n.has("process") ? n.at("process").asString() : names.defaultProcess;
    const bool procKnown = std::any_of(names.desc->processes.begin(), names.desc->processes.end(),
                                       [&](const ProcessDesc& p) { return p.name == op.process; });
    if (!procKnown) (n.has("process") ? n.at("process") : n.at("op")).fail("no process '" + op.process + "'");
    if (known != names.regions.end() && known->second != op.process)
      n.at("region").fail("region '" + op.region + "' is already mapped in process '" + known->second + "'");
    names.regions[op.region] = op.process;
    auto [it, fresh] = names.mapped.emplace(op.region, op.atPs);
    if (!fresh) it->second = std::min(it->second, op.atPs);
  }
}

}  // namespace

std::vector<PlatformOp> parsePlatformScript(const std::vector<ConfigNode>& elements,
                                            const RegionNames& regions, PlatformDesc& d) {
  Names names;
  names.desc = &d;
  for (const auto& [name, proc] : regions) names.regions[name] = proc;
  names.defaultProcess =
      regions.empty() ? (d.processes.empty() ? "" : d.processes.front().name) : regions.front().second;
  std::vector<PlatformOp> ops(elements.size());
  std::vector<const PlatformOpSyntax*> syn(elements.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const ConfigNode& n = elements[i];
    n.requireMap();
    syn[i] = &findSyntax(n.at("op"));
    std::vector<std::string> keys = kTimeKeys;
    keys.insert(keys.end(), syn[i]->keys.begin(), syn[i]->keys.end());
    n.requireKeys(keys);
    ops[i].kind = syn[i]->kind;
    ops[i].name = syn[i]->name;
    ops[i].where = where(n);
    parseTimes(n, ops[i]);
    if (auto e = n.find("expect")) {
      const ExpectRet r = detail::parseExpectOf(*e);
      if (r.cpages || r.faults) e->fail("a platform script operation expects ok or an errno");
      ops[i].expect = r.ret;
    }
  }
  parseMmaps(elements, names, ops);
  std::set<std::string> cpus;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    parseFields(elements[i], *syn[i], names, ops[i]);
    if (isProcessOp(ops[i].kind)) cpus.insert(ops[i].process);
  }
  for (const std::string& p : cpus) {
    const std::string cpu = "script_" + p;
    if (std::any_of(d.cpus.begin(), d.cpus.end(), [&](const CpuDesc& c) { return c.name == cpu; })) continue;
    d.cpus.push_back(CpuDesc{cpu, p, {}});
  }
  return ops;
}

std::vector<PlatformStep> platformSchedule(const std::vector<PlatformOp>& ops) {
  std::vector<PlatformStep> steps;
  for (std::size_t i = 0; i < ops.size(); ++i)
    for (std::uint64_t k = 0; k < ops[i].count; ++k) steps.push_back({ops[i].atPs + k * ops[i].everyPs, i});
  std::stable_sort(steps.begin(), steps.end(),
                   [](const PlatformStep& a, const PlatformStep& b) { return a.atPs < b.atPs; });
  return steps;
}

}  // namespace hmmsim::scenario
