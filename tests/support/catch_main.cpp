// The Catch2 runner lives inside sc_main: main() hands over to SystemC's sc_elab_and_sim, which
// calls sc_main, so test cases that elaborate modules and call sc_start() run in a normal
// SystemC process. ctest starts one process per test case (catch_discover_tests), so each
// SystemC test elaborates exactly once.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <systemc>

int sc_main(int argc, char* argv[]) {
  const int rc = Catch::Session().run(argc, argv);
  // Two SystemC objects of one name (W505 "object already exists"): SystemC renames the second
  // ("gpu0_0") and goes on, so a test would pass on a machine whose names are not what the model
  // says. Each test case runs in its own process, so any such warning is the test's: fail it.
  if (const int dup = sc_core::sc_report_handler::get_count(sc_core::SC_ID_INSTANCE_EXISTS_); dup > 0) {
    std::fprintf(stderr,
                 "%d SystemC object(s) named like an existing one (W505, above): give them unique names\n",
                 dup);
    return rc != 0 ? rc : 1;
  }
  return rc;
}

int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);  // keep test output to the tests
  return sc_core::sc_elab_and_sim(argc, argv);
}
