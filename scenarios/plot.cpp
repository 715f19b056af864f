// hmmsim plot: a sweep's CSV as an SVG line chart (one line per value of --by), written by
// hand so that no plotting package is needed. Numeric x values are placed on a linear axis;
// otherwise the x values are categories in the order they first appear.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "scenarios/commands.h"
#include "sim/config.h"
#include "sim/output_file.h"

namespace hmmsim::scenario {

namespace {

struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

std::vector<std::string> splitCsvLine(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream is(line);
  for (std::string c; std::getline(is, c, ',');) out.push_back(c);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

bool readCsv(const std::string& path, Csv& csv, std::ostream& err) {
  std::ifstream in(path);
  if (!in) {
    err << "hmmsim plot: cannot read " << path << '\n';
    return false;
  }
  std::string line;
  if (!std::getline(in, line)) {
    err << "hmmsim plot: " << path << " is empty\n";
    return false;
  }
  csv.header = splitCsvLine(line);
  while (std::getline(in, line))
    if (!line.empty()) csv.rows.push_back(splitCsvLine(line));
  return true;
}

bool column(const Csv& csv, const std::string& name, const char* option, std::size_t& idx,
            std::ostream& err) {
  auto it = std::find(csv.header.begin(), csv.header.end(), name);
  if (it != csv.header.end()) {
    idx = std::size_t(it - csv.header.begin());
    return true;
  }
  const std::string near = nearestWord(name, csv.header);
  err << "hmmsim plot: " << option << ": no column '" << name << "' in the CSV"
      << (near.empty() ? "" : "; did you mean '" + near + "'?") << '\n';
  return false;
}

bool isNumber(const std::string& s, double& v) {
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

struct Series {
  std::vector<std::pair<double, double>> points;
};

constexpr double kW = 720, kH = 440, kL = 80, kR = 180, kT = 40, kB = 60;
const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};

std::string svg(const PlotArgs& a, const std::map<std::string, Series>& series,
                const std::vector<std::string>& xLabels, double x0, double x1, double y0, double y1) {
  auto toX = [&](double x) { return kL + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (kW - kL - kR); };
  auto toY = [&](double y) { return kH - kB - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (kH - kT - kB); };
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n";
  os << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << escape(a.y)
     << " vs " << escape(a.x) << "</text>\n";
  os << "<line x1=\"" << kL << "\" y1=\"" << kH - kB << "\" x2=\"" << kW - kR << "\" y2=\"" << kH - kB
     << "\" stroke=\"black\"/>\n<line x1=\"" << kL << "\" y1=\"" << kT << "\" x2=\"" << kL << "\" y2=\""
     << kH - kB << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double y = y0 + (y1 - y0) * i / 4;
    os << "<text x=\"" << kL - 6 << "\" y=\"" << toY(y) + 4 << "\" text-anchor=\"end\">" << fmt(y)
       << "</text>\n";
    os << "<line x1=\"" << kL << "\" y1=\"" << toY(y) << "\" x2=\"" << kW - kR << "\" y2=\"" << toY(y)
       << "\" stroke=\"#ddd\"/>\n";
  }
  for (std::size_t i = 0; i < xLabels.size(); ++i) {
    const double x =
        xLabels.size() > 1 && x1 > x0 ? x0 + (x1 - x0) * double(i) / double(xLabels.size() - 1) : x0;
    os << "<text x=\"" << toX(x) << "\" y=\"" << kH - kB + 18 << "\" text-anchor=\"middle\">"
       << escape(xLabels[i]) << "</text>\n";
  }
  os << "<text x=\"" << (kL + kW - kR) / 2 << "\" y=\"" << kH - 15 << "\" text-anchor=\"middle\">"
     << escape(a.x) << "</text>\n";
  std::size_t k = 0;
  for (const auto& [name, s] : series) {
    const char* c = kColours[k % 8];
    os << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : s.points) os << toX(x) << ',' << toY(y) << ' ';
    os << "\"/>\n";
    for (const auto& [x, y] : s.points)
      os << "<circle cx=\"" << toX(x) << "\" cy=\"" << toY(y) << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    const double ly = kT + 10 + 18 * double(k);
    os << "<rect x=\"" << kW - kR + 12 << "\" y=\"" << ly - 9 << "\" width=\"12\" height=\"12\" fill=\"" << c
       << "\"/><text x=\"" << kW - kR + 30 << "\" y=\"" << ly + 1 << "\">"
       << escape(a.by.empty() ? a.y : a.by + "=" + name) << "</text>\n";
    ++k;
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace

int cmdPlot(const PlotArgs& a, std::ostream& out, std::ostream& err) {
  Csv csv;
  std::size_t xi = 0, yi = 0, bi = 0;
  if (!readCsv(a.csv, csv, err) || !column(csv, a.x, "--x", xi, err) || !column(csv, a.y, "--y", yi, err))
    return 2;
  if (!a.by.empty() && !column(csv, a.by, "--by", bi, err)) return 2;
  const std::string outPath = a.out.empty() ? "plot.svg" : a.out;
  if (const std::string why = checkOutputPath(outPath); !why.empty()) {
    err << "hmmsim plot: --out: " << why << '\n';
    return 2;
  }
  bool numericX = true;
  std::vector<std::string> xLabels;
  for (const auto& r : csv.rows) {
    double v = 0;
    if (xi >= r.size() || !isNumber(r[xi], v)) numericX = false;
    if (xi < r.size() && std::find(xLabels.begin(), xLabels.end(), r[xi]) == xLabels.end())
      xLabels.push_back(r[xi]);
  }
  std::map<std::string, Series> series;
  double x0 = INFINITY, x1 = -INFINITY, y0 = 0, y1 = -INFINITY;
  for (const auto& r : csv.rows) {
    double x = 0, y = 0;
    if (yi >= r.size() || !isNumber(r[yi], y)) continue;  // a point that did not report the stat
    if (numericX)
      isNumber(r[xi], x);
    else
      x = double(std::find(xLabels.begin(), xLabels.end(), r[xi]) - xLabels.begin());
    series[a.by.empty() ? "" : r[bi]].points.emplace_back(x, y);
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  if (series.empty()) {
    err << "hmmsim plot: no row of " << a.csv << " has a number in column '" << a.y << "'\n";
    return 2;
  }
  if (numericX) {
    xLabels.clear();
    for (int i = 0; i <= 4; ++i) xLabels.push_back(fmt(x0 + (x1 - x0) * i / 4));
  }
  for (auto& [n, s] : series) std::sort(s.points.begin(), s.points.end());
  if (y1 <= y0) y1 = y0 + 1;
  if (const std::string why = writeFileAtomically(outPath, svg(a, series, xLabels, x0, x1, y0, y1));
      !why.empty()) {
    err << "hmmsim plot: " << why << '\n';
    return 1;
  }
  out << "chart written to " << outPath << '\n';
  return 0;
}

}  // namespace hmmsim::scenario
