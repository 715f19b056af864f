#include "sim/config.h"

#include "sim/units.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace hmmsim {

namespace {
std::string formatLocation(const std::string& file, int line, int column, const std::string& key,
                           const std::string& message) {
  std::ostringstream os;
  os << file;
  if (line > 0) os << ':' << line;
  if (column > 0) os << ':' << column;
  os << ": ";
  if (!key.empty()) os << "key '" << key << "': ";
  os << message;
  return os.str();
}
}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key, std::string message)
    : std::runtime_error(formatLocation(file, line, column, key, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      message_(std::move(message)) {}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearestWord(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t bestDist = std::string::npos;
  for (const auto& c : candidates) {
    std::size_t d = editDistance(word, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  // A likely typo: at most a third of the word differs (and at least one edit allowed).
  std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  return bestDist <= limit ? best : std::string();
}

ConfigNode ConfigNode::loadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, 0, 0, "", "cannot open the file; check the path");
  std::ostringstream text;
  text << in.rdbuf();
  return loadString(text.str(), path);
}

ConfigNode ConfigNode::loadString(const std::string& text, const std::string& sourceName) {
  try {
    return ConfigNode(YAML::Load(text), std::make_shared<const std::string>(sourceName), "");
  } catch (const YAML::Exception& e) {
    throw ConfigError(sourceName, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg);
  }
}

ConfigNode::ConfigNode(const YAML::Node& node, std::shared_ptr<const std::string> file, std::string keyPath)
    : node_(node), file_(std::move(file)), keyPath_(std::move(keyPath)) {}

void ConfigNode::fail(const std::string& message) const {
  auto mark = node_.Mark();
  bool known = mark.line >= 0 && !mark.is_null();
  throw ConfigError(*file_, known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, keyPath_, message);
}

std::string ConfigNode::childPath(const std::string& key) const {
  return keyPath_.empty() ? key : keyPath_ + "." + key;
}

std::string ConfigNode::describeValue() const {
  if (node_.IsScalar()) return "'" + node_.Scalar() + "'";
  if (node_.IsMap()) return "a map";
  if (node_.IsSequence()) return "a list";
  return "nothing";
}

void ConfigNode::requireMap() const {
  if (!node_.IsMap()) fail("expected a map of keys, got " + describeValue());
}

void ConfigNode::requireSequence() const {
  if (!node_.IsSequence()) fail("expected a list, got " + describeValue());
}

void ConfigNode::requireKeys(std::initializer_list<const char*> allowed) const {
  requireKeys(std::vector<std::string>(allowed.begin(), allowed.end()));
}

void ConfigNode::requireKeys(const std::vector<std::string>& names) const {
  requireMap();
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    ConfigNode where(kv.first, file_, childPath(key));
    std::string msg = "unknown key";
    std::string near = nearestWord(key, names);
    if (!near.empty()) {
      msg += "; did you mean '" + near + "'?";
    } else {
      msg += "; valid keys here are:";
      for (const auto& n : names) msg += " " + n;
    }
    where.fail(msg);
  }
}

bool ConfigNode::has(const std::string& key) const {
  return node_.IsMap() && node_[key];
}

ConfigNode ConfigNode::at(const std::string& key) const {
  requireMap();
  YAML::Node child = node_[key];
  if (!child) fail("missing required key '" + key + "'");
  return ConfigNode(child, file_, childPath(key));
}

std::optional<ConfigNode> ConfigNode::find(const std::string& key) const {
  if (!node_.IsMap()) return std::nullopt;
  YAML::Node child = node_[key];
  if (!child) return std::nullopt;
  return ConfigNode(child, file_, childPath(key));
}

std::vector<ConfigNode> ConfigNode::elements() const {
  requireSequence();
  std::vector<ConfigNode> out;
  for (std::size_t i = 0; i < node_.size(); ++i) {
    out.emplace_back(node_[i], file_, keyPath_ + "[" + std::to_string(i) + "]");
  }
  return out;
}

std::vector<std::pair<std::string, ConfigNode>> ConfigNode::entries() const {
  requireMap();
  std::vector<std::pair<std::string, ConfigNode>> out;
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    out.emplace_back(key, ConfigNode(kv.second, file_, childPath(key)));
  }
  return out;
}

std::string ConfigNode::asString() const {
  if (!node_.IsScalar()) fail("expected a text value, got " + describeValue());
  return node_.Scalar();
}

bool ConfigNode::asBool() const {
  std::string s = asString();
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail("expected true or false, got '" + s + "'");
}

std::int64_t ConfigNode::asInt(std::int64_t min, std::int64_t max) const {
  std::string s = asString();
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used, 0);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (used == 0 || used != s.size()) fail("expected " + range + ", got '" + s + "'");
  if (v < min || v > max) fail("expected " + range + ", got " + s);
  return v;
}

double ConfigNode::asDouble() const {
  std::string s = asString();
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) fail("expected a number, got '" + s + "'");
  return v;
}

std::uint64_t ConfigNode::asBytes() const {
  std::string why;
  auto v = parseBytes(asString(), &why);
  if (!v) fail(why + ", got '" + asString() + "'");
  return *v;
}

double ConfigNode::asBitsPerSecond() const {
  std::string why;
  auto v = parseBitsPerSecond(asString(), &why);
  if (!v) fail(why + ", got '" + asString() + "'");
  return *v;
}

std::uint64_t ConfigNode::asDurationPs() const {
  std::string why;
  auto v = parseDurationPs(asString(), &why);
  if (!v) fail(why + ", got '" + asString() + "'");
  return *v;
}

std::string ConfigNode::asChoice(std::initializer_list<const char*> choices) const {
  std::string s = asString();
  std::vector<std::string> names(choices.begin(), choices.end());
  if (std::find(names.begin(), names.end(), s) != names.end()) return s;
  std::string msg = "expected one of:";
  for (const auto& n : names) msg += " " + n;
  msg += "; got '" + s + "'";
  std::string near = nearestWord(s, names);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  fail(msg);
}

std::optional<std::string> ConfigNode::optString(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asString()) : std::nullopt;
}
std::optional<bool> ConfigNode::optBool(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asBool()) : std::nullopt;
}
std::optional<std::int64_t> ConfigNode::optInt(const std::string& key, std::int64_t min,
                                               std::int64_t max) const {
  auto c = find(key);
  return c ? std::optional(c->asInt(min, max)) : std::nullopt;
}
std::optional<double> ConfigNode::optDouble(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asDouble()) : std::nullopt;
}
std::optional<std::uint64_t> ConfigNode::optBytes(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asBytes()) : std::nullopt;
}
std::optional<double> ConfigNode::optBitsPerSecond(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asBitsPerSecond()) : std::nullopt;
}
std::optional<std::uint64_t> ConfigNode::optDurationPs(const std::string& key) const {
  auto c = find(key);
  return c ? std::optional(c->asDurationPs()) : std::nullopt;
}

}  // namespace hmmsim
