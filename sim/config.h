#pragma once
// Configuration loading: YAML text → checked values, with errors that name the file, line,
// column and key, say what was expected, and suggest the fix.
//
// Models never see YAML. A loader walks a ConfigNode, fills a plain struct of std::optional
// fields, and a runtime parameter struct validates those in one place. Unknown keys are
// rejected with the nearest valid key ("did you mean 'bar_size'?").

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace hmmsim {

/// A user's mistake in a configuration source. what() is the full, printable message:
/// "scen.yaml:12:5: key 'topology.switches[0].ports': expected an integer from 1 to 32, got 'x'".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, std::string key, std::string message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }      ///< 1-based; 0 when unknown
  int column() const { return column_; }  ///< 1-based; 0 when unknown
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int line_, column_;
  std::string key_, message_;
};

/// Levenshtein distance; used to suggest the nearest valid key.
std::size_t editDistance(const std::string& a, const std::string& b);
/// The candidate nearest to `word`, or "" when none is close enough to be a likely typo.
std::string nearestWord(const std::string& word, const std::vector<std::string>& candidates);

/// A YAML node together with where it came from, so every error can point at it.
// The implicit move assignment assigns a YAML::Node, which yaml-cpp lets throw; a ConfigNode is
// never assigned where the exception could not propagate.
// NOLINTNEXTLINE(bugprone-exception-escape)
class ConfigNode {
 public:
  /// Parses `path`; a missing file or a YAML syntax error becomes a ConfigError.
  static ConfigNode loadFile(const std::string& path);
  /// Parses `text` as if it came from a file named `sourceName`.
  static ConfigNode loadString(const std::string& text, const std::string& sourceName);

  ConfigNode(const YAML::Node& node, std::shared_ptr<const std::string> file, std::string keyPath);

  const YAML::Node& yaml() const { return node_; }
  const std::string& file() const { return *file_; }
  const std::string& keyPath() const { return keyPath_; }
  bool isMap() const { return node_.IsMap(); }
  bool isSequence() const { return node_.IsSequence(); }
  bool isScalar() const { return node_.IsScalar(); }

  /// Throws unless this node is a map whose keys are all in `allowed`.
  void requireKeys(std::initializer_list<const char*> allowed) const;
  void requireKeys(const std::vector<std::string>& allowed) const;
  void requireMap() const;
  void requireSequence() const;

  bool has(const std::string& key) const;
  /// Child by key; throws if absent ("missing required key").
  ConfigNode at(const std::string& key) const;
  /// Child by key if present.
  std::optional<ConfigNode> find(const std::string& key) const;
  /// Elements of a sequence.
  std::vector<ConfigNode> elements() const;
  /// (key, value) pairs of a map, in file order.
  std::vector<std::pair<std::string, ConfigNode>> entries() const;

  // Scalar conversions of this node; each throws a ConfigError naming this node on mismatch.
  std::string asString() const;
  bool asBool() const;
  std::int64_t asInt(std::int64_t min, std::int64_t max) const;
  double asDouble() const;
  std::uint64_t asBytes() const;       ///< "256MiB"
  double asBitsPerSecond() const;      ///< "100Gb/s"
  std::uint64_t asDurationPs() const;  ///< "150ns"
  /// One of `choices` exactly; the error lists them and suggests the nearest.
  std::string asChoice(std::initializer_list<const char*> choices) const;

  // Optional children: nullopt when the key is absent.
  std::optional<std::string> optString(const std::string& key) const;
  std::optional<bool> optBool(const std::string& key) const;
  std::optional<std::int64_t> optInt(const std::string& key, std::int64_t min, std::int64_t max) const;
  std::optional<double> optDouble(const std::string& key) const;
  std::optional<std::uint64_t> optBytes(const std::string& key) const;
  std::optional<double> optBitsPerSecond(const std::string& key) const;
  std::optional<std::uint64_t> optDurationPs(const std::string& key) const;

  /// A ConfigError located at this node.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string childPath(const std::string& key) const;
  std::string describeValue() const;

  YAML::Node node_;
  std::shared_ptr<const std::string> file_;
  std::string keyPath_;
};

}  // namespace hmmsim
