# A platform scenario's script (scenarios/platform_script.h): parsing and checks, process
# operations on the script's CPU core at their times, injected events, failed expectations.
hmmsim_test(test_platform_script SOURCES unit/scenarios/test_platform_script.cpp LIBS hmmsim::scenarios)
# A platform script's fork, mremap and migrate on the camera chain: importers re-fault, COW breaks,
# buffers moved away and back, device-private pages faulted back; their checks before anything runs.
hmmsim_test(test_platform_script_mm SOURCES unit/scenarios/test_platform_script_mm.cpp LIBS hmmsim::scenarios)
# A platform script's GPU migrate waits for its copies on the copy engine, as a driver call does.
hmmsim_test(test_platform_script_gpu_migrate SOURCES unit/scenarios/test_platform_script_gpu_migrate.cpp
            LIBS hmmsim::scenarios)
