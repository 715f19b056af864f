#include "sim/params.h"

#include <algorithm>
#include <iomanip>

namespace hmmsim {

const char* paramTypeName(ParamType t) {
  switch (t) {
    case ParamType::Bool:
      return "bool";
    case ParamType::Int:
      return "int";
    case ParamType::Bytes:
      return "size";
    case ParamType::Duration:
      return "time";
    case ParamType::Bitrate:
      return "rate";
    case ParamType::Double:
      return "number";
    case ParamType::Choice:
      return "choice";
    case ParamType::Table:
      return "map";
    case ParamType::String:
      return "text";
  }
  return "?";
}

std::vector<std::string> ParamTableBase::keys() const {
  std::vector<std::string> k;
  k.reserve(rows_.size());
  for (const ParamRow& r : rows_) k.push_back(r.name);
  return k;
}

std::string ParamTableBase::describe() const {
  std::size_t wName = 4, wType = 4, wUnit = 4, wDef = 7;
  for (const ParamRow& r : rows_) {
    wName = std::max(wName, r.name.size());
    wType = std::max(wType, std::string(paramTypeName(r.type)).size());
    wUnit = std::max(wUnit, r.unit.size());
    wDef = std::max(wDef, r.defaultText.size());
  }
  std::ostringstream os;
  os << model_ << ": " << summary_ << '\n';
  auto line = [&](const std::string& n, const std::string& t, const std::string& u, const std::string& d,
                  const std::string& desc) {
    os << "  " << std::left << std::setw(int(wName)) << n << "  " << std::setw(int(wType)) << t << "  "
       << std::setw(int(wUnit)) << u << "  " << std::setw(int(wDef)) << d << "  " << desc << '\n';
  };
  line("key", "type", "unit", "default", "description [range]");
  for (const ParamRow& r : rows_)
    line(r.name, paramTypeName(r.type), r.unit.empty() ? "-" : r.unit, r.defaultText,
         r.desc + (r.range.empty() ? "" : " [" + r.range + "]"));
  return os.str();
}

std::string ParamTableBase::markdown() const {
  std::ostringstream os;
  os << "### `" << model_ << "`\n\n" << summary_ << "\n\n";
  os << "| key | type | unit | default | range | description |\n|---|---|---|---|---|---|\n";
  for (const ParamRow& r : rows_) {
    os << "| `" << r.name << "` | " << paramTypeName(r.type) << " | " << (r.unit.empty() ? "-" : r.unit)
       << " | " << r.defaultText << " | " << (r.range.empty() ? "-" : r.range) << " | " << r.desc << " |\n";
  }
  os << '\n';
  return os.str();
}

}  // namespace hmmsim
