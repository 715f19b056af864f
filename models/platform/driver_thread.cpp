// DriverThread: a driver half's CPU thread on the platform. See driver_thread.h.
#include "models/platform/driver_thread.h"

#include "models/cpu_mmu/sequencer.h"
#include "models/pcie/pcie_transaction.h"
#include "models/platform/platform.h"

namespace hmmsim {

DriverThread::DriverThread(sc_core::sc_module_name name, Platform& platform,
                           std::function<void(DriverThread&)> body)
    : sc_module(name), platform_(platform), body_(std::move(body)) {
  SC_THREAD(run);
}

MsiMessage DriverThread::bindVector(std::uint16_t v, unsigned cpu) {
  auto it = bound_.find(v);
  if (it != bound_.end()) return it->second;
  const MsiMessage m = platform_.interrupts().allocateVector(
      std::string(name()) + ".v" + std::to_string(v), 0,
      [this, v](IrqContext&) {
        ++pending_[v];
        irq_.notify(sc_core::SC_ZERO_TIME);
      },
      cpu);
  bound_[v] = m;
  return m;
}

void DriverThread::store(std::uint64_t pa, const void* src, std::size_t len) {
  access(true, pa, const_cast<void*>(src), len);
}

void DriverThread::load(std::uint64_t pa, void* dst, std::size_t len) {
  access(false, pa, dst, len);
}

void DriverThread::cpuWork(std::uint64_t ps) {
  if (ps) seqWait(psTime(ps));
}

void DriverThread::waitInterrupt(std::uint16_t vector) {
  while (pending_[vector] == 0) wait(irq_);
  pending_[vector] = 0;  // one wake-up covers every interrupt since the last wait, as DriverHost says
  ++interrupts_;
}

void DriverThread::access(bool write, std::uint64_t pa, void* buf, std::size_t len) {
  sc_core::sc_time d = sc_core::SC_ZERO_TIME;
  if (!platform_.driverAccess(write, Pa(pa), static_cast<std::uint8_t*>(buf), len, d)) ++busErrors_;
  seqWait(d);
}

void DriverThread::run() {
  body_(*this);
}

}  // namespace hmmsim
