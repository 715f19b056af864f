# Scenario files run by the hmmsim command, each with its own expectations (exit 0 = every
# operation's expected result, the expect: section and the checker verdict held).
#
# scenarios/selftests: the kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c) as
# scenario files, with the assertions of tests/conformance; those whose assertions do not depend
# on the device memory type also run on device-coherent dmirrors, as the kernel's
# hmm_device_coherent variants do.
file(GLOB _hmmsim_selftests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/scenarios/selftests/*.yaml)
list(SORT _hmmsim_selftests)
set(_private_only migrate_multiple snapshot)  # their kernel tests assert per memory type
foreach(f ${_hmmsim_selftests})
  get_filename_component(n ${f} NAME_WE)
  if(n STREQUAL "hmm_fixture")
    continue()
  endif()
  add_test(NAME "scenario: selftests/${n} (device private)" COMMAND hmmsim run ${f})
  if(NOT n IN_LIST _private_only)
    add_test(NAME "scenario: selftests/${n} (device coherent)"
             COMMAND hmmsim run ${f} --set machine.devices[0].memory=coherent
                     --set machine.devices[1].memory=coherent)
  endif()
endforeach()

file(GLOB _hmmsim_checker_scenarios CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/scenarios/checker/*.yaml)
foreach(f ${_hmmsim_checker_scenarios})
  get_filename_component(n ${f} NAME_WE)
  add_test(NAME "scenario: checker/${n}" COMMAND hmmsim run ${f})
endforeach()

# Same file and seed -> byte-identical stats.json (two runs into two folders, compared).
add_test(NAME "scenario: same file and seed give a byte-identical stats.json"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim>
                 -DFILE=${PROJECT_SOURCE_DIR}/scenarios/selftests/anon_write_child.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-twice -P ${PROJECT_SOURCE_DIR}/cmake/RunTwiceCompare.cmake)

# docs/scenario-format.md holds the parameter tables as `hmmsim describe --markdown` prints them.
add_test(NAME "docs: scenario-format.md parameter tables are current"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DDOC=${PROJECT_SOURCE_DIR}/docs/scenario-format.md
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckScenarioDoc.cmake)

# The RFC scenarios on the SystemC platform (scenarios/*.yaml): each runs with its expectations
# (every variant's frames pixel-exact, its stats thresholds, the checker clean).
file(GLOB _hmmsim_platform_scenarios CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/scenarios/*.yaml)
foreach(f ${_hmmsim_platform_scenarios})
  get_filename_component(n ${f} NAME_WE)
  add_test(NAME "scenario: ${n}" COMMAND hmmsim run ${f})
  set_tests_properties("scenario: ${n}" PROPERTIES ENVIRONMENT "SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1")
endforeach()
add_test(NAME "scenario: camera_chain twice with the same seed gives a byte-identical stats.json"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/camera_chain.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-twice-platform -P ${PROJECT_SOURCE_DIR}/cmake/RunTwiceCompare.cmake)
add_test(NAME "scenario: nvme_via_nic twice with the same seed gives a byte-identical stats.json"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-twice-nvme -P ${PROJECT_SOURCE_DIR}/cmake/RunTwiceCompare.cmake)
# A terminal (the progress line) changes nothing a run computes: stats.json under a pseudo-terminal
# is byte-identical to one without (it was not: the progress line, a SystemC process then, kept
# the simulation running to the next whole millisecond, and its timed events could reorder
# same-time events).
add_test(NAME "scenario: nvme_via_nic on a terminal gives the same stats.json as without one"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-tty-nvme -P ${PROJECT_SOURCE_DIR}/cmake/RunTtyCompare.cmake)
# Results depend on the seed, never on the TLM quantum: a small camera chain under a revoke and a
# window-move storm (the camera's invalidations waiting for its bursts, device faults with their
# walk, the device TLB and IOMMU invalidations charged) gives a byte-identical stats.json with a
# 1 us, a 37 us and a 1 ms quantum.
add_test(NAME "scenario: a revoke storm with three quanta gives a byte-identical stats.json"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${CMAKE_CURRENT_SOURCE_DIR}/scenarios/quantum_revoke.yaml
                 -DQUANTA=1us,37us,1ms
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-quanta -P ${PROJECT_SOURCE_DIR}/cmake/RunQuantaCompare.cmake)
# The same for the other workload kinds: each scenario file with all its variants, at the
# platforms' 1 us quantum and at 1 ms: gpu_monitor (the NIC sampling a counter the GPU stores in
# VRAM), gpu_reduce (the GPU reading a peer's VRAM or RAM through its device MMU) and small_bar
# (BAR windows reclaimed between 32 importers).
foreach(w gpu_monitor gpu_reduce small_bar)
  add_test(NAME "scenario: ${w} with two quanta gives a byte-identical stats.json"
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/${w}.yaml
                   -DQUANTA=1us,1ms -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-quanta-${w}
                   -P ${PROJECT_SOURCE_DIR}/cmake/RunQuantaCompare.cmake)
endforeach()
# And at 100 ns too, where a device's write that a CPU or a peer polls, or its booking of memory
# another engine shares, would land at a quantum-dependent time unless made at synchronised time:
# gpu_stream_out (the NIC's DD write-back the driver polls; the GPU copy engine's and the NIC's
# bookings of host memory) and nvme_via_nic (the SSD's CQEs the CPU and the NIC poll; the NIC's
# submit and completion engines sharing one device TLB; the queue torn down once the NIC rang
# its last CQ head doorbell). docs/fidelity.md, "Quantum independence".
# And the camera chain's files whose variants bounce frames through system memory (the camera
# writing a frame while the colour engine reads the previous one back: both issue every burst at
# synchronised time once host memory is shared): camera_chain, camera_chain_migrate,
# camera_chain_processes and acs_what_if (its acs_declined variant bounces).
foreach(w gpu_stream_out nvme_via_nic camera_chain camera_chain_migrate camera_chain_processes acs_what_if)
  add_test(NAME "scenario: ${w} with three quanta gives a byte-identical stats.json"
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/${w}.yaml
                   -DQUANTA=100ns,1us,1ms -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-quanta-${w}
                   -P ${PROJECT_SOURCE_DIR}/cmake/RunQuantaCompare.cmake)
endforeach()
# Lookahead (models/cpu_mmu/lookahead.h) only saves wake-ups: every scenario whose camera or
# colour engine looks ahead (with faults, revokes, migrations, forks, scripts, ACS what-ifs and
# bounces through RAM among them) gives a byte-identical stats.json and Perfetto trace with
# platform.lookahead on and off.
foreach(w acs_what_if camera_chain camera_chain_faults camera_chain_fork_mremap camera_chain_migrate
          camera_chain_processes camera_chain_script misbehaving_importer revoke_storm)
  add_test(NAME "scenario: ${w} with lookahead on and off gives a byte-identical stats.json and trace"
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/${w}.yaml
                   -DKEY=platform.lookahead -DQUANTA=true,false -DTRACE=ON -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-lookahead-${w}
                   -P ${PROJECT_SOURCE_DIR}/cmake/RunQuantaCompare.cmake)
endforeach()
add_test(NAME "scenario: the revoke storm with lookahead on and off gives a byte-identical stats.json and trace"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${CMAKE_CURRENT_SOURCE_DIR}/scenarios/quantum_revoke.yaml
                 -DKEY=platform.lookahead -DQUANTA=true,false -DTRACE=ON
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/stats-lookahead-quantum_revoke -P ${PROJECT_SOURCE_DIR}/cmake/RunQuantaCompare.cmake)
