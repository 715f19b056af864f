// Input of the sequencer check's own test (tests/sequencer/sequencer.cmake): never compiled.
// Lines 8-11 break the rule; lines 12-17 keep it and must not be reported.
#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

void bad(sc_core::sc_event& done, sc_core::sc_event& other, const sc_core::sc_time& d) {
  sc_core::wait(d);
  sc_core::wait(d, done);
  done.notify(d);
  tlm_utils::tlm_quantumkeeper qk;
  done.notify(sc_core::SC_ZERO_TIME);
  wait(done);
  // raw-systemc: the marker's test (a reason is given)
  wait(other);
  done.notify();
  qk.sync();  // a SeqQuantumKeeper's would be sequenced; the declaration above is what is caught
}
