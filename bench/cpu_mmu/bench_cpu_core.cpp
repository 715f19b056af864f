// Simulation speed of the CPU shell: host time per load of a CpuCore program (TLB lookup or
// page walk, quantum keeper, one b_transport into the Dram model with real bytes) next to a
// bare SystemC loop of b_transport calls into the same Dram, in the same run. The summary line
// gives the ratio (CpuCore cost per load / bare cost per call).
//
// Both run with a 1 us global quantum. SystemC elaborates once per process: both modules are built on the
// first call, and each benchmark runs exactly once (Iterations(1)), timed around its own sc_start().

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include <systemc>
#include <tlm>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vma.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kPages = 16384;  // 64 MiB touched, every page faulted in once
constexpr std::uint64_t kLoads = 1u << 18;

/// The bare loop: one SC_THREAD issuing 8-byte reads into the Dram with a quantum keeper.
class BareLoop : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<BareLoop> iSocket{"iSocket"};
  SC_HAS_PROCESS(BareLoop);
  explicit BareLoop(sc_core::sc_module_name n) : sc_module(n) { SC_THREAD(run); }
  sc_core::sc_event go;

 private:
  void run() {
    wait(go);
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    std::uint8_t buf[8];
    std::uint64_t x = 88172645463325252ull;
    for (std::uint64_t i = 0; i < kLoads; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      tlm::tlm_generic_payload gp;
      gp.set_command(tlm::TLM_READ_COMMAND);
      gp.set_address((x % (kPages * kPageSize)) & ~std::uint64_t(7));
      gp.set_data_ptr(buf);
      gp.set_data_length(8);
      gp.set_streaming_width(8);
      gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sc_core::sc_time delay = qk.get_local_time();
      iSocket->b_transport(gp, delay);
      qk.set(delay);
      if (qk.need_sync()) qk.sync();
    }
    qk.sync();
  }
};

CpuProgram program() {
  CpuProgram p;
  p.push_back(CpuOp::mmap(0, kPages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE));
  for (std::uint64_t i = 0; i < kPages; ++i) p.push_back(CpuOp::store(0, i * kPageSize, 8, 1));
  std::uint64_t x = 88172645463325252ull;
  for (std::uint64_t i = 0; i < kLoads; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p.push_back(CpuOp::load(0, (x % (kPages * kPageSize)) & ~std::uint64_t(7), 8));
  }
  return p;
}

struct Platform {
  Platform()
      : pm(ram()),
        mm(pm, "proc.mm"),
        dram("dram", DramParams{}, pm),
        core("cpu0", CpuCoreParams{}, mm, program()),
        bare("bare") {
    core.iSocket.bind(dram.tSocket);
    bare.iSocket.bind(dram.tSocket);
  }
  static PhysMemParams ram() {
    PhysMemParams p;
    p.ramSize = 1ull << 30;
    return p;
  }
  PhysMem pm;
  Mm mm;
  Dram dram;
  CpuCore core;
  BareLoop bare;
};

Platform& platform() {
  static Platform* p = new Platform();  // lives until exit: SystemC modules cannot be destroyed early
  return *p;
}

double coreSecondsPerLoad = 0, bareSecondsPerCall = 0;

void BM_CpuCoreProgram(benchmark::State& state) {
  Platform& p = platform();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    sc_core::sc_start();  // runs the core's program (the bare loop waits for its event)
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    // The fault-in phase is a small part (kPages of kPages + kLoads ops); charge it all to loads.
    coreSecondsPerLoad = s / double(kLoads + kPages);
  }
  if (!p.core.done() || p.core.killed()) state.SkipWithError("the CPU program did not complete");
  state.counters["ops"] = double(kLoads + kPages);
  state.counters["ops/s"] = 1.0 / coreSecondsPerLoad;
  state.counters["page_faults"] = double(p.core.stats().counterValue("page_faults"));
  state.counters["sim_us"] = p.core.finishTime().to_seconds() * 1e6;
}
BENCHMARK(BM_CpuCoreProgram)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_BareDramLoop(benchmark::State& state) {
  Platform& p = platform();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    p.bare.go.notify(sc_core::SC_ZERO_TIME);
    sc_core::sc_start();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    bareSecondsPerCall = s / double(kLoads);
  }
  state.counters["calls/s"] = 1.0 / bareSecondsPerCall;
}
BENCHMARK(BM_BareDramLoop)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int sc_main(int argc, char** argv) {
  // Temporal decoupling as a platform would run it: both loops sync every 1 us of local time.
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  if (coreSecondsPerLoad > 0 && bareSecondsPerCall > 0)
    std::printf("summary: CpuCore host cost per op / bare SystemC b_transport into Dram = %.2fx\n",
                coreSecondsPerLoad / bareSecondsPerCall);
  benchmark::Shutdown();
  return 0;
}
