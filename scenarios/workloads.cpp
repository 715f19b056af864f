// The workload kinds and what they share. See workloads.h.
#include "scenarios/workloads.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace hmmsim::scenario {

WorkloadKind cameraChainWorkloadKind();
WorkloadKind nvmeViaNicWorkloadKind();
WorkloadKind gpuMonitorWorkloadKind();
WorkloadKind gpuStreamOutWorkloadKind();
WorkloadKind gpuReduceWorkloadKind();
WorkloadKind smallBarWorkloadKind();

const std::vector<WorkloadKind>& workloadKinds() {
  static const std::vector<WorkloadKind> kinds = {cameraChainWorkloadKind(), nvmeViaNicWorkloadKind(),
                                                  gpuMonitorWorkloadKind(),  gpuStreamOutWorkloadKind(),
                                                  gpuReduceWorkloadKind(),   smallBarWorkloadKind()};
  return kinds;
}

const WorkloadKind* findWorkloadKind(const std::string& key) {
  for (const WorkloadKind& k : workloadKinds())
    if (k.key == key) return &k;
  return nullptr;
}

DeviceDesc& requireDevice(const ConfigNode& at, PlatformDesc& d, const std::string& name,
                          const std::string& type) {
  std::vector<std::string> names;
  for (DeviceDesc& x : d.devices) {
    if (x.name == name && x.type == type) return x;
    if (x.type == type) names.push_back(x.name);
  }
  std::string msg = "no ";
  msg.append(type).append(" device '").append(name).append("' in platform.devices");
  if (const std::string near = nearestWord(name, names); !near.empty())
    msg += "; did you mean '" + near + "'?";
  at.fail(msg);
}

std::uint64_t endpointBarBytes(const PlatformDesc& d, const std::string& endpoint, int index) {
  for (const EndpointDesc& e : d.topology.endpoints)
    if (e.name == endpoint && !e.functions.empty())
      for (const BarDesc& b : e.functions.front().bars)
        if (b.index == index) return b.size;
  return 0;
}

void ensureProcess(PlatformDesc& d, const std::string& name) {
  if (std::none_of(d.processes.begin(), d.processes.end(),
                   [&](const ProcessDesc& p) { return p.name == name; }))
    d.processes.push_back(ProcessDesc{name, {}});
}

std::string fixedText(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string bytesText(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fixedText(b, 0) + " B" : fixedText(b, 2) + " " + units[u];
}

double statOf(const RunResult& r, const std::string& name) {
  return r.stats.value(name).value_or(0);
}

ComparisonRow statRow(const std::string& label, const std::string& name, double div, int digits) {
  return ComparisonRow{label, [=](const RunResult& r) { return fixedText(statOf(r, name) / div, digits); }};
}

}  // namespace hmmsim::scenario
