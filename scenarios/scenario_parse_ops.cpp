// The `script:` section → Ops, and the static check of the whole script (every region,
// process, descriptor and device an operation names exists at that point of the script), so a
// typo is a file:line:column error before anything runs.

#include <algorithm>
#include <map>
#include <set>

#include "models/devices/dmirror/dmirror_uapi.h"
#include "scenarios/scenario.h"

namespace hmmsim::scenario {

// scenario_parse.cpp helpers re-declared here (same translation-unit-local semantics).
namespace detail {
int parseProtOf(const ConfigNode& n);
std::uint64_t pageMultipleOf(const ConfigNode& n, bool allowZero);
IntPattern parsePatternOf(const ConfigNode& n);
ExpectRet parseExpectOf(const ConfigNode& n);
RegionSpec parseRegionOf(const ConfigNode& n, const std::string& nameKey,
                         const std::string& deviceKey = "fd");
}  // namespace detail

std::vector<Op> parseScriptElements(const std::vector<ConfigNode>& elements, unsigned depth);

namespace {

constexpr unsigned kMaxRepeatDepth = 4;

struct OpSyntax {
  const char* name;
  OpKind kind;
  std::vector<std::string> keys;  ///< besides op and process
};

const std::vector<OpSyntax>& opSyntax() {
  static const std::vector<OpSyntax> k = {
      {"mmap",
       OpKind::Mmap,
       {"region", "size", "prot", "kind", "align", "thp", "file_ints", "fill", "fd", "page_size", "expect"}},
      {"munmap", OpKind::Munmap, {"region", "offset", "length", "expect"}},
      {"mprotect", OpKind::Mprotect, {"region", "offset", "length", "prot", "expect"}},
      {"mremap", OpKind::Mremap, {"region", "new_size", "to_region", "expect"}},
      {"madvise", OpKind::Madvise, {"region", "offset", "length", "advice", "expect"}},
      {"fork", OpKind::Fork, {"child", "expect"}},
      {"exit", OpKind::Exit, {}},
      {"open", OpKind::Open, {"device", "as"}},
      {"close", OpKind::Close, {"fd"}},
      {"write", OpKind::Write, {"region", "offset", "length", "ints"}},
      {"read", OpKind::Read, {"region", "offset", "length", "ints", "bytes", "expect"}},
      {"dmirror", OpKind::Dmirror, {"cmd", "fd", "region", "offset", "mirror", "npages", "value", "expect"}},
      {"migrate", OpKind::Dmirror, {"to", "fd", "region", "offset", "mirror", "npages", "expect"}},
      {"repeat", OpKind::Repeat, {"times", "script"}},
  };
  return k;
}

const std::vector<std::pair<std::string, unsigned>> kCommands = {
    {"read", HMM_DMIRROR_READ},
    {"write", HMM_DMIRROR_WRITE},
    {"migrate_to_dev", HMM_DMIRROR_MIGRATE_TO_DEV},
    {"migrate_to_sys", HMM_DMIRROR_MIGRATE_TO_SYS},
    {"snapshot", HMM_DMIRROR_SNAPSHOT},
    {"exclusive", HMM_DMIRROR_EXCLUSIVE},
    {"check_exclusive", HMM_DMIRROR_CHECK_EXCLUSIVE},
    {"release", HMM_DMIRROR_RELEASE},
    {"flags", HMM_DMIRROR_FLAGS},
};

const std::vector<std::pair<std::string, int>> kAdvice = {
    {"normal", MADV_NORMAL},
    {"random", MADV_RANDOM},
    {"sequential", MADV_SEQUENTIAL},
    {"willneed", MADV_WILLNEED},
    {"dontneed", MADV_DONTNEED},
    {"free", MADV_FREE},
    {"remove", MADV_REMOVE},
    {"dontfork", MADV_DONTFORK},
    {"dofork", MADV_DOFORK},
    {"hugepage", MADV_HUGEPAGE},
    {"nohugepage", MADV_NOHUGEPAGE},
    {"populate_read", MADV_POPULATE_READ},
    {"populate_write", MADV_POPULATE_WRITE},
    {"collapse", MADV_COLLAPSE},
};

template <typename V>
V pick(const ConfigNode& n, const std::vector<std::pair<std::string, V>>& table) {
  const std::string s = n.asString();
  std::vector<std::string> words;
  for (const auto& [w, v] : table) {
    if (w == s) return v;
    words.push_back(w);
  }
  std::string msg = "expected one of:";
  for (const auto& w : words) msg += " " + w;
  const std::string near = nearestWord(s, words);
  n.fail(msg + "; got '" + s + "'" + (near.empty() ? "" : " (did you mean '" + near + "'?)"));
}

}  // namespace

namespace detail {
int parseAdviceOf(const ConfigNode& n) {
  return pick(n, kAdvice);
}
}  // namespace detail

namespace {

void parseRange(const ConfigNode& n, Op& op) {
  op.region = n.at("region").asString();
  if (auto o = n.find("offset")) op.offset = detail::pageMultipleOf(*o, true);
  if (auto l = n.find("length")) op.length = detail::pageMultipleOf(*l, false);
}

void parseDmirror(const ConfigNode& n, Op& op, bool migrate) {
  if (migrate) {
    const std::string to = n.at("to").asChoice({"device", "system"});
    op.command = to == "device" ? HMM_DMIRROR_MIGRATE_TO_DEV : HMM_DMIRROR_MIGRATE_TO_SYS;
    op.text = "migrate to " + to;
  } else {
    op.command = pick(n.at("cmd"), kCommands);
    op.text = "dmirror " + n.at("cmd").asString();
  }
  op.fd = n.at("fd").asString();
  const bool noRange = op.command == HMM_DMIRROR_RELEASE || op.command == HMM_DMIRROR_FLAGS;
  if (!noRange) {
    op.region = n.at("region").asString();
    if (auto o = n.find("offset")) op.offset = detail::pageMultipleOf(*o, true);
    op.mirror = n.at("mirror").asString();
    if (auto np = n.find("npages")) op.npages = std::uint64_t(np->asInt(0, 1 << 28));
  }
  if (op.command == HMM_DMIRROR_FLAGS) op.flagsValue = std::uint64_t(n.at("value").asInt(0, INT64_MAX));
}

void parseOpFields(const ConfigNode& n, const OpSyntax& syn, Op& op, unsigned depth);

Op parseOp(const ConfigNode& n, unsigned depth) {
  n.requireMap();
  const ConfigNode opNode = n.at("op");
  std::vector<std::string> names;
  for (const OpSyntax& s : opSyntax()) names.push_back(s.name);
  const std::string name = opNode.asString();
  auto it =
      std::find_if(opSyntax().begin(), opSyntax().end(), [&](const OpSyntax& s) { return name == s.name; });
  if (it == opSyntax().end()) {
    const std::string near = nearestWord(name, names);
    std::string msg = "unknown operation '" + name + "'";
    msg += near.empty()
               ? "; operations are: mmap munmap mprotect mremap madvise fork exit open close write read "
                 "dmirror migrate repeat"
               : "; did you mean '" + near + "'?";
    opNode.fail(msg);
  }
  std::vector<std::string> keys = it->keys;
  keys.push_back("op");
  keys.push_back("process");
  n.requireKeys(keys);
  Op op;
  op.kind = it->kind;
  op.text = name;
  op.where = where(n);
  op.src = n;
  if (auto p = n.find("process")) op.process = p->asString();
  parseOpFields(n, *it, op, depth);
  return op;
}

void parseOpFields(const ConfigNode& n, const OpSyntax& syn, Op& op, unsigned depth) {
  if (auto e = n.find("expect"); e && op.kind != OpKind::Read) op.expect = detail::parseExpectOf(*e);
  switch (op.kind) {
    case OpKind::Mmap:
      op.mapping = detail::parseRegionOf(n, "region");
      op.region = op.mapping.name;
      break;
    case OpKind::Munmap:
      parseRange(n, op);
      break;
    case OpKind::Mprotect:
      parseRange(n, op);
      op.prot = detail::parseProtOf(n.at("prot"));
      break;
    case OpKind::Madvise:
      parseRange(n, op);
      op.advice = pick(n.at("advice"), kAdvice);
      break;
    case OpKind::Mremap:
      op.region = n.at("region").asString();
      op.newSize = detail::pageMultipleOf(n.at("new_size"), false);
      if (auto t = n.find("to_region")) op.toRegion = t->asString();
      break;
    case OpKind::Fork:
      op.child = n.at("child").asString();
      break;
    case OpKind::Exit:
      break;
    case OpKind::Open:
      op.device = unsigned(n.at("device").asInt(0, 15));
      op.fd = n.has("as") ? n.at("as").asString() : "dmirror" + std::to_string(op.device);
      break;
    case OpKind::Close:
      op.fd = n.at("fd").asString();
      break;
    case OpKind::Write:
      parseRange(n, op);
      op.ints = detail::parsePatternOf(n.at("ints"));
      break;
    case OpKind::Read:
      parseRange(n, op);
      if (auto i = n.find("ints")) op.ints = detail::parsePatternOf(*i);
      if (auto b = n.find("bytes")) {
        op.bytes.emplace();
        for (const ConfigNode& x : b->elements()) op.bytes->push_back(int(x.asInt(0, 255)));
      }
      if (auto e = n.find("expect")) op.expect = detail::parseExpectOf(*e);
      if (!op.ints && !op.bytes && !n.has("expect"))
        n.fail("a read checks something: give ints, bytes or expect");
      break;
    case OpKind::Dmirror:
      parseDmirror(n, op, std::string(syn.name) == "migrate");
      break;
    case OpKind::Repeat:
      op.times = std::uint64_t(n.at("times").asInt(1, 1000));
      if (depth >= kMaxRepeatDepth) n.fail("repeats nest deeper than 4");
      op.body = parseScriptElements(n.at("script").elements(), depth + 1);
      break;
  }
}

}  // namespace

std::vector<Op> parseScriptElements(const std::vector<ConfigNode>& elements, unsigned depth) {
  std::vector<Op> ops;
  ops.reserve(elements.size());
  for (const ConfigNode& e : elements) ops.push_back(parseOp(e, depth));
  return ops;
}

}  // namespace hmmsim::scenario

namespace hmmsim::scenario {

namespace {

/// What exists at a point of the script: regions, running processes and their descriptors.
struct ScriptState {
  std::set<std::string> regions;
  std::map<std::string, std::set<std::string>> procs;  ///< running process -> descriptors
  std::set<unsigned> devices;
  std::string first;
};

void requireRegion(const Op& op, const ScriptState& st, const std::string& name, const char* key) {
  if (st.regions.count(name)) return;
  const std::string near = nearestWord(name, std::vector<std::string>(st.regions.begin(), st.regions.end()));
  op.src->at(key).fail("no region '" + name + "' is mapped at this point of the script" +
                       (near.empty() ? "" : "; did you mean '" + near + "'?"));
}

void requireFd(const Op& op, const std::set<std::string>& fds, const std::string& proc,
               const std::string& fd) {
  if (fds.count(fd)) return;
  const std::string near = nearestWord(fd, std::vector<std::string>(fds.begin(), fds.end()));
  op.src->at("fd").fail(
      "process '" + proc + "' has no open descriptor '" + fd + "' here" +
      (near.empty() ? "" : "; did you mean '" + near + "'?") +
      " (a process opens devices with open: or an `open` operation; a child does not inherit them)");
}

void checkOps(const std::vector<Op>& ops, ScriptState& st);

void checkOp(const Op& op, ScriptState& st) {
  const std::string proc = op.process.empty() ? st.first : op.process;
  auto p = st.procs.find(proc);
  if (op.kind != OpKind::Repeat && p == st.procs.end())
    op.src->at(op.process.empty() ? "op" : "process")
        .fail("no running process '" + proc + "' at this point of the script");
  switch (op.kind) {
    case OpKind::Mmap:
      if (op.mapping.kind == MapKind::DeviceFile) requireFd(op, p->second, proc, op.mapping.fd);
      st.regions.insert(op.region);
      break;
    case OpKind::Munmap:
    case OpKind::Mprotect:
    case OpKind::Madvise:
    case OpKind::Write:
    case OpKind::Read:
      requireRegion(op, st, op.region, "region");
      break;
    case OpKind::Mremap:
      requireRegion(op, st, op.region, "region");
      if (!op.toRegion.empty()) requireRegion(op, st, op.toRegion, "to_region");
      break;
    case OpKind::Fork:
      if (st.procs.count(op.child))
        op.src->at("child").fail("a process '" + op.child + "' is already running");
      st.procs[op.child] = {};
      break;
    case OpKind::Exit:
      st.procs.erase(p);
      break;
    case OpKind::Open:
      if (!st.devices.count(op.device))
        op.src->at("device").fail("no dmirror device " + std::to_string(op.device) + " in machine.devices");
      p->second.insert(op.fd);
      break;
    case OpKind::Close:
      requireFd(op, p->second, proc, op.fd);
      p->second.erase(op.fd);
      break;
    case OpKind::Dmirror:
      requireFd(op, p->second, proc, op.fd);
      if (!op.region.empty()) requireRegion(op, st, op.region, "region");
      if (!op.mirror.empty()) requireRegion(op, st, op.mirror, "mirror");
      break;
    case OpKind::Repeat:
      checkOps(op.body, st);
      break;
  }
}

void checkOps(const std::vector<Op>& ops, ScriptState& st) {
  for (const Op& op : ops) checkOp(op, st);
}

}  // namespace

void checkScript(const Scenario& s) {
  ScriptState st;
  st.first = s.processes.front().name;
  for (const DeviceSpec& d : s.devices) st.devices.insert(d.id);
  for (const ProcessSpec& p : s.processes) {
    auto& fds = st.procs[p.name];
    for (unsigned d : p.open) fds.insert("dmirror" + std::to_string(d));
    for (const RegionSpec& r : p.memory) st.regions.insert(r.name);
  }
  checkOps(s.script, st);
}

}  // namespace hmmsim::scenario
