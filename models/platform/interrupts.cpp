// MSI delivery and CPU driver threads. See interrupts.h.
#include "models/platform/interrupts.h"

#include <sstream>

#include "models/cpu_mmu/sequencer.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/assert.h"
#include "sim/trace.h"

namespace hmmsim {

std::string InterruptParams::check() const {
  std::ostringstream o;
  if (msiBytes == 0 || msiBase + msiBytes < msiBase)
    o << "interrupts: msiBytes must be > 0 and the window must not wrap";
  else if (cpus == 0)
    o << "interrupts: cpus must be at least 1";
  return o.str();
}

UpstreamTranslation MsiPassStage::translateUpstream(Bdf requester, std::uint64_t busAddr, std::uint64_t len,
                                                    bool isWrite, bool addressTranslated,
                                                    std::uint64_t nowPs) {
  if (busAddr >= params_.msiBase && busAddr - params_.msiBase < params_.msiBytes) {
    UpstreamTranslation t;
    t.addr = busAddr;
    return t;
  }
  if (inner_ == nullptr) {
    UpstreamTranslation t;
    t.addr = busAddr;
    return t;
  }
  return inner_->translateUpstream(requester, busAddr, len, isWrite, addressTranslated, nowPs);
}

MsiTarget::MsiTarget(sc_core::sc_module_name name, const InterruptParams& params,
                     InterruptControllerModule& irq, HostMemoryRequesters& requesters)
    : sc_module(name),
      params_(params),
      irq_(irq),
      requesters_(requesters),
      stats_(this->name()),
      messages_(stats_.counter("msi_writes", "writes", "interrupt messages received")),
      dropped_(stats_.counter("msi_dropped", "requests",
                              "requests to the MSI window that raise nothing (reads, unknown vectors)")) {
  in.register_b_transport(this, &MsiTarget::bTransport);
  in.register_transport_dbg(this, &MsiTarget::transportDbg);
}

void MsiTarget::bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  const std::uint64_t addr = gp.get_address();
  if (addr < params_.msiBase || addr - params_.msiBase >= params_.msiBytes) {
    if (auto* e = gp.get_extension<PcieTlpExtension>())
      e->hostMemoryShared = requesters_.note(e->requesterKey);
    toMemory->b_transport(gp, delay);
    return;
  }
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  const std::uint8_t* d = gp.get_data_ptr();
  if (!gp.is_write() || d == nullptr || gp.get_data_length() < 4) {
    ++dropped_;
    return;
  }
  const std::uint32_t vector =
      std::uint32_t(d[0]) | std::uint32_t(d[1]) << 8 | std::uint32_t(d[2]) << 16 | std::uint32_t(d[3]) << 24;
  const PcieTlpExtension* e = gp.get_extension<PcieTlpExtension>();
  const std::uint64_t arrival = e ? absPs(*e, delay) : sc_core::sc_time_stamp().value() + delay.value();
  ++messages_;
  if (!irq_.raise(vector, arrival)) ++dropped_;
}

unsigned int MsiTarget::transportDbg(tlm::tlm_generic_payload& gp) {
  return toMemory->transport_dbg(gp);
}

/// One CPU driver thread: its queue of raised interrupts, and the handler's view of it.
class InterruptControllerModule::DriverCpu final : public IrqContext {
 public:
  explicit DriverCpu(std::string name) : name_(std::move(name)) {}
  void charge(std::uint64_t ps) override {
    if (ps) seqWait(psTime(ps));
  }
  std::uint64_t nowPs() const override { return sc_core::sc_time_stamp().value(); }
  const std::string& cpu() const override { return name_; }

  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> queue;
  sc_core::sc_event raised;

 private:
  std::string name_;
};

InterruptControllerModule::InterruptControllerModule(sc_core::sc_module_name name,
                                                     const InterruptParams& params)
    : sc_module(name),
      params_(params),
      stats_(this->name()),
      raised_(stats_.counter("interrupts", "interrupts", "interrupt messages raised")),
      handledC_(stats_.counter("handled", "interrupts", "handlers run")),
      queuedPs_(stats_.counter("queued_ps", "ps", "time raised interrupts waited for a busy driver thread")),
      busyPs_(
          stats_.counter("cpu_busy_ps", "ps", "driver-thread time: entry latency, handler costs, handlers")) {
  const std::string err = params_.check();
  HMMSIM_ASSERT(err.empty(), this->name() << ": " << err);
  for (unsigned c = 0; c < params_.cpus; ++c) {
    cpus_.push_back(std::make_unique<DriverCpu>(std::string(this->name()) + ".cpu" + std::to_string(c)));
    DriverCpu* cpu = cpus_.back().get();
    sc_core::sc_spawn([this, cpu] { run(*cpu); }, ("cpu" + std::to_string(c)).c_str());
  }
}

InterruptControllerModule::~InterruptControllerModule() = default;

MsiMessage InterruptControllerModule::allocateVector(const std::string& name, std::uint64_t handlerCostPs,
                                                     MsiHandler handler, unsigned cpu) {
  HMMSIM_ASSERT(cpu < cpus_.size(),
                this->name() << ": vector " << name << " on cpu " << cpu << " of " << cpus_.size());
  HMMSIM_ASSERT(handler, this->name() << ": vector " << name << " without a handler");
  vectors_.push_back(Vector{name, handlerCostPs, std::move(handler), cpu, 0});
  MsiMessage m;
  m.address = params_.msiBase;  // destination id 0: the platform routes by vector
  m.data = kFirstVector + static_cast<std::uint32_t>(vectors_.size() - 1);
  return m;
}

bool InterruptControllerModule::raise(std::uint32_t vector, std::uint64_t arrivalPs) {
  if (vector < kFirstVector || vector - kFirstVector >= vectors_.size()) return false;
  DriverCpu& cpu = *cpus_[vectors_[vector - kFirstVector].cpu];
  cpu.queue.push(Pending{arrivalPs, seq_++, vector});
  cpu.raised.notify(sc_core::SC_ZERO_TIME);
  ++raised_;
  return true;
}

std::uint64_t InterruptControllerModule::handled(std::uint32_t vector) const {
  if (vector < kFirstVector || vector - kFirstVector >= vectors_.size()) return 0;
  return vectors_[vector - kFirstVector].handled;
}

void InterruptControllerModule::run(DriverCpu& cpu) {
  for (;;) {
    if (cpu.queue.empty()) {
      sc_core::wait(cpu.raised);
      continue;
    }
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    const Pending p = cpu.queue.top();
    if (p.arrivalPs > now) {
      // Not yet raised: wait for it, or for an earlier one raised meanwhile.
      seqWait(psTime(p.arrivalPs - now), cpu.raised);
      continue;
    }
    cpu.queue.pop();
    queuedPs_ += now - p.arrivalPs;
    Vector& v = vectors_[p.vector - kFirstVector];
    cpu.charge(params_.entryLatencyPs);
    v.handler(cpu);
    cpu.charge(v.costPs);
    ++v.handled;
    ++handledC_;
    busyPs_ += sc_core::sc_time_stamp().value() - now;
    if (trace_ != nullptr && trace_->on(TraceCategory::Irq)) traceHandler(cpu, v, p.arrivalPs, now);
  }
}

void InterruptControllerModule::traceHandler(const DriverCpu& cpu, const Vector& v, std::uint64_t arrivalPs,
                                             std::uint64_t startPs) {
  const std::string track = "cpu.driver" + cpu.cpu().substr(cpu.cpu().rfind(".cpu") + 4);
  trace_->instant(TraceCategory::Irq, track, "MSI " + v.name, arrivalPs);
  trace_->slice(TraceCategory::Irq, track, v.name, startPs, sc_core::sc_time_stamp().value() - startPs,
                "queued " + std::to_string(startPs - arrivalPs) + " ps behind earlier handlers");
}

}  // namespace hmmsim
