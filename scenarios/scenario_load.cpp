// Scenario files → Scenario (scenario.h): includes, --set overrides, and validation of every
// section before anything runs.

#include "scenarios/scenario.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>
#include <system_error>

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "scenarios/param_tables.h"
#include "sim/errno.h"

namespace hmmsim::scenario {

std::string where(const ConfigNode& n) {
  const auto mark = n.yaml().Mark();
  std::ostringstream os;
  os << n.file();
  if (!mark.is_null() && mark.line >= 0) os << ':' << mark.line + 1 << ':' << mark.column + 1;
  return os.str();
}

namespace {

constexpr const char* kTopKeys[] = {"include",   "name",   "description", "seed",     "machine", "platform",
                                    "processes", "script", "workload",    "variants", "expect"};
constexpr unsigned kMaxIncludeDepth = 8;

/// The top-level sections of the file and its includes: list sections are concatenated
/// (fragments first), the others are replaced by the last file that has them.
struct Document {
  std::map<std::string, ConfigNode> single;
  std::vector<ConfigNode> processes, script;
  ConfigNode root;
};

void collect(const ConfigNode& root, Document& doc, std::set<std::string>& open, unsigned depth);

void collectIncludes(const ConfigNode& root, Document& doc, std::set<std::string>& open, unsigned depth) {
  auto inc = root.find("include");
  if (!inc) return;
  std::vector<ConfigNode> files = inc->isSequence() ? inc->elements() : std::vector<ConfigNode>{*inc};
  const std::filesystem::path dir = std::filesystem::path(root.file()).parent_path();
  for (const ConfigNode& f : files) {
    const std::string path = (dir / f.asString()).lexically_normal().string();
    if (open.count(path)) f.fail("include cycle: " + path + " includes itself (directly or through others)");
    if (depth >= kMaxIncludeDepth) f.fail("includes nest deeper than 8 files");
    std::error_code ec;  // e.g. a name too long for the file system: an error, not an exception
    const bool found = std::filesystem::exists(path, ec);
    if (ec) f.fail("cannot include " + path + ": " + ec.message());
    if (!found) f.fail("cannot include " + path + ": no such file");
    open.insert(path);
    collect(ConfigNode::loadFile(path), doc, open, depth + 1);
    open.erase(path);
  }
}

void collect(const ConfigNode& root, Document& doc, std::set<std::string>& open, unsigned depth) {
  if (root.yaml().IsNull()) return;  // an empty fragment
  root.requireKeys(std::vector<std::string>(std::begin(kTopKeys), std::end(kTopKeys)));
  collectIncludes(root, doc, open, depth);
  for (const auto& [key, value] : root.entries()) {
    if (key == "include") continue;
    if (key == "processes" || key == "script") {
      auto& list = key == "processes" ? doc.processes : doc.script;
      for (const ConfigNode& e : value.elements()) list.push_back(e);
    } else {
      doc.single.insert_or_assign(key, value);
    }
  }
}

/// "a.b[2].c" → {"a", "b", "[2]", "c"}.
std::vector<std::string> splitPath(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c == '.' || c == '[') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
      if (c == '[') {
        const std::size_t end = key.find(']', i);
        if (end == std::string::npos) return {};
        parts.push_back(key.substr(i, end - i + 1));
        i = end;
      }
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

/// Where a command-line override was written: "--set key=value".
std::string argumentOf(const Override& o) {
  return o.origin + " " + o.key + "=" + o.value;
}

[[noreturn]] void badOverride(const Override& o, const std::string& why) {
  if (o.src) o.src->fail("set " + o.key + ": " + why);
  throw ConfigError(argumentOf(o), 0, 0, o.key, why);
}

/// `key` is strictly inside `outer` ("a.b[0].c" inside "a.b" or "a.b[0]").
bool keyInside(const std::string& key, const std::string& outer) {
  return key.size() > outer.size() && key.compare(0, outer.size(), outer) == 0 &&
         (key[outer.size()] == '.' || key[outer.size()] == '[');
}

/// `e` as the user can act on it when it is about a command-line override (the last one that
/// matches): an error at the key a value set (or inside it) names the argument ("--set key=value")
/// instead of the file, where that value is not; an error at a key that encloses it keeps its place
/// in the file and says which of its keys came from the command line.
ConfigError locatedAtOverride(const ConfigError& e, const std::vector<Override>& overrides) {
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    if (it->src) continue;  // a variant's set: value is located in its file already
    if (e.key() == it->key || keyInside(e.key(), it->key))
      return ConfigError(argumentOf(*it), 0, 0, e.key(), e.message());
    if (keyInside(it->key, e.key()))
      return ConfigError(e.file(), e.line(), e.column(), e.key(),
                         e.message() + " (" + it->key + " given by " + argumentOf(*it) + ")");
  }
  return e;
}

YAML::Node valueOf(const Override& o) {
  return o.src ? o.src->yaml() : YAML::Node(o.value);
}

/// Sets `value` at `parts[from..]` below `node` (maps created on the way).
void setBelow(YAML::Node node, const std::vector<std::string>& parts, std::size_t from, const Override& o) {
  for (std::size_t i = from; i + 1 < parts.size(); ++i) {
    if (parts[i][0] == '[') {
      const std::size_t idx = std::stoul(parts[i].substr(1));
      if (!node.IsSequence() || idx >= node.size())
        badOverride(o, "no list element " + parts[i] + " here (the list has " +
                           std::to_string(node.IsSequence() ? node.size() : 0) + ")");
      node.reset(node[idx]);
    } else {
      if (!node.IsMap() && !node.IsNull()) badOverride(o, "'" + parts[i] + "' is not inside a map");
      YAML::Node child = node[parts[i]];
      if (!child) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[parts[i]]);
    }
  }
  const std::string& last = parts.back();
  if (last[0] == '[') {
    const std::size_t idx = std::stoul(last.substr(1));
    if (!node.IsSequence() || idx >= node.size()) badOverride(o, "no list element " + last + " here");
    node[idx] = valueOf(o);
  } else {
    node[last] = valueOf(o);
  }
}

void applyOverride(Document& doc, const Override& o) {
  const std::vector<std::string> parts = splitPath(o.key);
  if (parts.empty() || parts[0][0] == '[') badOverride(o, "expected a key such as machine.phys_mem.ram");
  const std::string& top = parts[0];
  const std::vector<std::string> topKeys(std::begin(kTopKeys), std::end(kTopKeys));
  if (std::find(topKeys.begin(), topKeys.end(), top) == topKeys.end() || top == "include") {
    const std::string near = nearestWord(top, topKeys);
    badOverride(o, "unknown section '" + top + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
  if (top == "processes" || top == "script") {
    auto& list = top == "processes" ? doc.processes : doc.script;
    if (parts.size() < 3 || parts[1][0] != '[') badOverride(o, "expected " + top + "[i].key");
    const std::size_t idx = std::stoul(parts[1].substr(1));
    if (idx >= list.size()) badOverride(o, top + " has " + std::to_string(list.size()) + " entries");
    setBelow(list[idx].yaml(), parts, 2, o);
    return;
  }
  if (parts.size() == 1) {
    doc.single.insert_or_assign(
        top, o.src
                 ? *o.src
                 : ConfigNode(YAML::Node(o.value), std::make_shared<const std::string>(argumentOf(o)), top));
    return;
  }
  auto it = doc.single.find(top);
  if (it == doc.single.end())
    it = doc.single
             .emplace(top, ConfigNode(YAML::Node(YAML::NodeType::Map),
                                      std::make_shared<const std::string>(argumentOf(o)), top))
             .first;
  setBelow(it->second.yaml(), parts, 1, o);
}

}  // namespace

std::optional<Override> parseOverride(const std::string& text, std::string* why) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    if (why) *why = "expected key=value (e.g. machine.phys_mem.ram=1GiB), got '" + text + "'";
    return std::nullopt;
  }
  return Override{text.substr(0, eq), text.substr(eq + 1), std::nullopt};
}

// Defined in scenario_parse.cpp: the sections → Scenario.
Scenario buildScenario(const std::string& file, const std::map<std::string, ConfigNode>& single,
                       const std::vector<ConfigNode>& processes, const std::vector<ConfigNode>& script);

void parseExpectSection(const ConfigNode& e, Scenario& s);

namespace {

Scenario loadOne(const std::string& path, const std::vector<Override>& overrides, bool expandVariants);

/// `variants:` each entry {name, description, set: {key: value}, expect: {stats}} is the file
/// loaded again with its set: overrides (then the command line's), plus its expectations (a
/// checker verdict given by --set expect.checker... stays: the command line wins).
std::vector<Scenario> loadVariants(const std::string& path, const ConfigNode& list,
                                   const std::vector<Override>& cli, const Scenario& base) {
  if (!base.platform.desc)
    list.fail("variants compare runs of a platform scenario (platform: and workload:)");
  std::vector<Scenario> out;
  std::set<std::string> names;
  for (const ConfigNode& v : list.elements()) {
    v.requireKeys({"name", "description", "set", "expect"});
    const ConfigNode name = v.at("name");
    const std::string n = name.asString();
    if (n.empty() ||
        !std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum((unsigned char)c) || c == '_'; }))
      name.fail("a variant's name is letters, digits and _ (it prefixes its stats)");
    if (!names.insert(n).second) name.fail("variant '" + n + "' is declared twice");
    std::vector<Override> o;
    if (auto set = v.find("set"))
      for (const auto& [key, value] : set->entries()) o.push_back(Override{key, "", value});
    o.insert(o.end(), cli.begin(), cli.end());  // the command line's --set win
    Scenario vs = loadOne(path, o, false);
    vs.variant = n;
    vs.variantDescription = v.optString("description").value_or("");
    if (auto e = v.find("expect")) {
      // A checker verdict set on the command line wins over the variant's, as --set wins over set:.
      const bool cliChecker = std::any_of(cli.begin(), cli.end(), [](const Override& c) {
        return c.key == "expect.checker" || c.key.rfind("expect.checker.", 0) == 0;
      });
      const auto checker = vs.expect.checker;
      parseExpectSection(*e, vs);
      if (cliChecker) vs.expect.checker = checker;
    }
    out.push_back(std::move(vs));
  }
  if (out.empty()) list.fail("expected a list of variants, each {name, description, set, expect}");
  return out;
}

Scenario loadOne(const std::string& path, const std::vector<Override>& overrides, bool expandVariants) {
  ConfigNode root = ConfigNode::loadFile(path);
  Document doc{{}, {}, {}, root};
  std::set<std::string> open{std::filesystem::path(path).lexically_normal().string()};
  collect(root, doc, open, 0);
  std::optional<ConfigNode> variants;
  if (auto it = doc.single.find("variants"); it != doc.single.end()) {
    variants = it->second;
    doc.single.erase(it);
  }
  for (const Override& o : overrides) applyOverride(doc, o);
  Scenario s = [&] {
    try {
      return buildScenario(path, doc.single, doc.processes, doc.script);
    } catch (const ConfigError& e) {
      throw locatedAtOverride(e, overrides);
    }
  }();
  if (variants && expandVariants) s.variants = loadVariants(path, *variants, overrides, s);
  return s;
}

}  // namespace

Scenario loadScenario(const std::string& path, const std::vector<Override>& overrides) {
  return loadOne(path, overrides, true);
}

}  // namespace hmmsim::scenario
