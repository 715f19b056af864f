// The Catch2 runner lives inside sc_main: SystemC's own main() calls sc_main, so test cases that
// elaborate modules and call sc_start() run in a normal SystemC process. ctest starts one process
// per test case (catch_discover_tests), so each SystemC test elaborates exactly once.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <systemc>

int sc_main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
