# A platform scenario's script (scenarios/platform_script.h): parsing and checks, process
# operations on the script's CPU core at their times, injected events, failed expectations.
hmmsim_test(test_platform_script SOURCES unit/scenarios/test_platform_script.cpp LIBS hmmsim::scenarios)
