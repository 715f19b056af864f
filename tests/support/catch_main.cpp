// The Catch2 runner lives inside sc_main: main() hands over to SystemC's sc_elab_and_sim, which
// calls sc_main, so test cases that elaborate modules and call sc_start() run in a normal
// SystemC process. ctest starts one process per test case (catch_discover_tests), so each
// SystemC test elaborates exactly once.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <systemc>

int sc_main(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}

int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);  // keep test output to the tests
  return sc_core::sc_elab_and_sim(argc, argv);
}
