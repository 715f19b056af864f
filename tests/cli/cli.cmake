# The hmmsim command line: exit statuses (0 success, 1 a failed run, 2 a usage error) and the
# messages that name the option and the fix. Each case runs the built binary once.
function(hmmsim_cli_test name rc)
  cmake_parse_arguments(ARG "STDERR_EMPTY" "STDOUT;STDERR;FILE" "ARGS" ${ARGN})
  string(REPLACE ";" "|" args "${ARG_ARGS}")
  set(defs -DEXE=$<TARGET_FILE:hmmsim> "-DARGS=${args}" -DRC=${rc})
  if(DEFINED ARG_STDOUT)
    list(APPEND defs "-DSTDOUT=${ARG_STDOUT}")
  endif()
  if(DEFINED ARG_STDERR)
    list(APPEND defs "-DSTDERR=${ARG_STDERR}")
  endif()
  if(ARG_STDERR_EMPTY)
    list(APPEND defs -DSTDERR_EMPTY=1)
  endif()
  if(DEFINED ARG_FILE)
    list(APPEND defs "-DFILE=${ARG_FILE}")
  endif()
  add_test(NAME "hmmsim cli: ${name}"
           COMMAND ${CMAKE_COMMAND} ${defs} -P ${PROJECT_SOURCE_DIR}/cmake/RunCli.cmake)
  set_tests_properties("hmmsim cli: ${name}" PROPERTIES ENVIRONMENT "SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1")
endfunction()

hmmsim_cli_test("demo runs, prints its counters and exits 0" 0
  ARGS demo --map 8MiB
  STDOUT "copy-on-write copies +512[^0-9].*data checks: passed" STDERR_EMPTY)
hmmsim_cli_test("demo writes the stats file it is given" 0
  ARGS demo --map 4MiB --stats-json ${CMAKE_CURRENT_BINARY_DIR}/cli-demo-stats.json
  STDOUT "stats written to " FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-demo-stats.json)
hmmsim_cli_test("--help lists the demo subcommand and exits 0" 0
  ARGS --help STDOUT "demo")
hmmsim_cli_test("no subcommand is a usage error (exit 2)" 2
  STDERR "A subcommand is required")
hmmsim_cli_test("an unknown subcommand is named with the known ones (exit 2)" 2
  ARGS frobnicate STDERR "unknown subcommand 'frobnicate' \\(known: demo run validate describe sweep plot\\)")
hmmsim_cli_test("an unknown option is named (exit 2)" 2
  ARGS demo --bogus STDERR "--bogus")
hmmsim_cli_test("a size without a unit it understands names --ram and the accepted forms (exit 2)" 2
  ARGS demo --ram lots STDERR "--ram: expected a byte size such as")
hmmsim_cli_test("--map that is not a multiple of 4MiB is refused with the rule (exit 2)" 2
  ARGS demo --map 3MiB STDERR "--map 3MiB: must be a non-zero multiple of 4MiB")
hmmsim_cli_test("--ram that is not a multiple of 2MiB is refused with the rule (exit 2)" 2
  ARGS demo --ram 1025MiB --map 4MiB STDERR "--ram 1025MiB: must be a multiple of 2MiB")
hmmsim_cli_test("an unwritable --stats-json fails before the run with the reason (exit 2)" 2
  ARGS demo --map 4MiB --stats-json /no-such-dir-for-hmmsim/stats.json
  STDERR "--stats-json: cannot write /no-such-dir-for-hmmsim/stats.json: .*No such file or directory")

# Scenario files: run, validate, describe, sweep, plot.
set(_sel ${PROJECT_SOURCE_DIR}/scenarios/selftests)
set(_bad ${CMAKE_CURRENT_SOURCE_DIR}/cli/scenarios)
hmmsim_cli_test("run of a passing scenario prints its summary and exits 0" 0
  ARGS run ${_sel}/migrate.yaml
  STDOUT "scenario migrate .*pages migrated to dev +1024.*checker +clean.*result +PASS" STDERR_EMPTY)
hmmsim_cli_test("run writes stats.json and the Perfetto trace into --out" 0
  ARGS run ${_sel}/anon_write.yaml --out ${CMAKE_CURRENT_BINARY_DIR}/cli-run-out --trace
  STDOUT "stats written to .*trace to " FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-run-out/trace.json)
hmmsim_cli_test("a failed operation expectation names file:line:column and exits 1" 1
  ARGS run ${_sel}/anon_write.yaml --set script[3].expect.cpages=5
  STDOUT "result +FAIL.*FAILED: [^\n]*anon_write.yaml:8:5: dmirror write: cpages 1024, expected 5")
hmmsim_cli_test("a failed stats expectation exits 1 with the stat and its value" 1
  ARGS run ${_sel}/migrate.yaml --set expect.stats[0].eq=7
  STDOUT "expect: device.dmirror0.migrated_to_dev is 1024, expected eq: 7")
hmmsim_cli_test("a stat expectation that holds as eq, min and max passes (exit 0)" 0
  ARGS run ${_bad}/stat_bounds.yaml STDOUT "result +PASS")
hmmsim_cli_test("a stat below its eq says eq, not a bound (exit 1)" 1
  ARGS run ${_bad}/stat_bounds.yaml --set expect.stats[0].eq=2048
  STDOUT "stat_bounds.yaml:12:7: expect: device.dmirror0.migrated_to_dev is 1024, expected eq: 2048")
hmmsim_cli_test("a stat above its eq says eq, not a bound (exit 1)" 1
  ARGS run ${_bad}/stat_bounds.yaml --set expect.stats[0].eq=512
  STDOUT "stat_bounds.yaml:12:7: expect: device.dmirror0.migrated_to_dev is 1024, expected eq: 512")
hmmsim_cli_test("a stat below its min says min (exit 1)" 1
  ARGS run ${_bad}/stat_bounds.yaml --set expect.stats[1].min=1025
  STDOUT "stat_bounds.yaml:13:7: expect: device.dmirror0.migrated_to_dev is 1024, expected min: 1025")
hmmsim_cli_test("a stat above its max says max (exit 1)" 1
  ARGS run ${_bad}/stat_bounds.yaml --set expect.stats[2].max=1023
  STDOUT "stat_bounds.yaml:14:7: expect: device.dmirror0.migrated_to_dev is 1024, expected max: 1023")
hmmsim_cli_test("a stat expectation with eq and a bound is refused (exit 2)" 2
  ARGS validate ${_bad}/stat_bounds.yaml --set expect.stats[0].max=2048
  STDERR "key 'expect.stats\\[0\\].max': eq is exact: give eq alone, or min and/or max without it")
hmmsim_cli_test("a stat expectation with max below min is refused (exit 2)" 2
  ARGS validate ${_bad}/stat_bounds.yaml --set expect.stats[1].max=1000
  STDERR "--set expect.stats\\[1\\].max=1000: key 'expect.stats\\[1\\].max': max is below min: no value can meet both")
hmmsim_cli_test("a checker violation the scenario does not expect exits 1" 1
  ARGS run ${_bad}/failing_checker.yaml
  STDOUT "checker +4 violation.*freed-frame.*FAILED: .*expect: checker: expected clean, got freed-frame=4")
hmmsim_cli_test("a misspelt key names file:line:column and the nearest key, exits 2" 2
  ARGS run ${_bad}/bad_key.yaml
  STDERR "bad_key.yaml:4:16: key 'script\\[0\\].regoin': unknown key; did you mean 'region'\\?")
hmmsim_cli_test("a misspelt section is refused with the nearest section (exit 2)" 2
  ARGS validate ${_bad}/bad_section.yaml STDERR "bad_section.yaml:3:1: key 'scirpt': unknown key; did you mean 'script'")
hmmsim_cli_test("a bad value says what was expected (exit 2)" 2
  ARGS validate ${_bad}/bad_value.yaml
  STDERR "bad_value.yaml:4:38: key 'script\\[0\\].size': expected a byte size such as .*got 'lots'")
hmmsim_cli_test("a region that is never mapped is caught before the run (exit 2)" 2
  ARGS run ${_bad}/bad_region.yaml
  STDERR "bad_region.yaml:5:25: .*no region 'bufer' is mapped at this point of the script; did you mean 'buffer'")
hmmsim_cli_test("a misspelt model parameter names the table's nearest key (exit 2)" 2
  ARGS validate ${_bad}/bad_param.yaml STDERR "bad_param.yaml:3:14: key 'machine.phys_mem.rma': unknown key; did you mean 'ram'")
hmmsim_cli_test("a missing include names the file (exit 2)" 2
  ARGS validate ${_bad}/bad_include.yaml STDERR "bad_include.yaml:1:10: .*cannot include .*no_such_fragment.yaml: no such file")
hmmsim_cli_test("a bad --set value is located at the key it sets (exit 2)" 2
  ARGS run ${_sel}/migrate.yaml --set machine.phys_mem.ram=3MiB
  STDERR "hmm_fixture.yaml:7:13: key 'machine.phys_mem': ram_size .*multiple of 2 MiB \\(machine.phys_mem.ram given by --set machine.phys_mem.ram=3MiB\\)")
hmmsim_cli_test("an error in a --set value names the --set argument, not the file (exit 2)" 2
  ARGS validate ${PROJECT_SOURCE_DIR}/scenarios/camera_chain.yaml --set workload.camera_chain.frames=many
  STDERR "^--set workload.camera_chain.frames=many: key 'workload.camera_chain.frames': expected an integer")
hmmsim_cli_test("--set of an unknown section suggests the nearest (exit 2)" 2
  ARGS run ${_sel}/migrate.yaml --set machin.phys_mem.ram=1GiB STDERR "--set machin.phys_mem.ram=1GiB: key 'machin.phys_mem.ram': unknown section 'machin'; did you mean 'machine'")
hmmsim_cli_test("validate of a good file reports what it holds and exits 0" 0
  ARGS validate ${_sel}/snapshot.yaml STDOUT "snapshot.yaml: ok \\(scenario snapshot, 1 process\\(es\\), 2 device\\(s\\), 15 script operation\\(s\\)\\)")
hmmsim_cli_test("a platform section validates into the platform's description" 0
  ARGS validate ${_bad}/platform_hook.yaml
  STDOUT "platform: 1 host bridge\\(s\\), 1 switch\\(es\\), 2 endpoint\\(s\\), 3 link\\(s\\), IOMMU translate")
hmmsim_cli_test("a platform without a workload does not run and says why (exit 2)" 2
  ARGS run ${_bad}/platform_hook.yaml STDERR "two_gpus_one_switch.yaml:5:3: key 'platform': a platform scenario needs a workload: section")
hmmsim_cli_test("a platform topology error names the element (exit 2)" 2
  ARGS validate ${_bad}/bad_platform.yaml STDERR "bad_platform.yaml:11:9: .*gpu9")
hmmsim_cli_test("describe lists the models" 0
  ARGS describe STDOUT "phys_mem +system RAM.*mm +a process.*dmirror")
hmmsim_cli_test("describe MODEL prints its keys with type, unit, default and range" 0
  ARGS describe phys_mem STDOUT "ram +size +bytes +4GiB +size of system RAM, a multiple of 2 MiB \\[2MiB .. 8TiB\\]")
hmmsim_cli_test("describe of an unknown model suggests the nearest (exit 2)" 2
  ARGS describe dmirorr STDERR "unknown model 'dmirorr'; did you mean 'dmirror'")
hmmsim_cli_test("sweep prints one CSV row per grid point, parameters first" 0
  ARGS sweep ${PROJECT_SOURCE_DIR}/scenarios/sweeps/migrate_roundtrips.yaml --param script[0].times=1,3
       --param script[0].script[0].size=256KiB,1MiB --jobs 2
  STDOUT "^script\\[0\\].times,script\\[0\\].script\\[0\\].size,pass,.*\n1,256KiB,1,.*\n1,1MiB,1,.*\n3,256KiB,1,.*\n3,1MiB,1,")
hmmsim_cli_test("sweep refuses a malformed --param (exit 2)" 2
  ARGS sweep ${_sel}/migrate.yaml --param machine.phys_mem.ram STDERR "--param: expected key=v1,v2")
hmmsim_cli_test("sweep checks every point before running any (exit 2)" 2
  ARGS sweep ${_sel}/migrate.yaml --param machine.phys_mem.ram=512MiB,lots
  STDERR "--param machine.phys_mem.ram=lots: key 'machine.phys_mem.ram': expected a byte size")
hmmsim_cli_test("plot of an unknown column suggests the nearest (exit 2)" 2
  ARGS plot ${CMAKE_CURRENT_SOURCE_DIR}/cli/sweep-sample.csv --x times --y device.dmirror0.ioctl
  STDERR "--y: no column 'device.dmirror0.ioctl' in the CSV; did you mean 'device.dmirror0.ioctls'")
hmmsim_cli_test("plot writes an SVG chart" 0
  ARGS plot ${CMAKE_CURRENT_SOURCE_DIR}/cli/sweep-sample.csv --x times --y device.dmirror0.ioctls --by size
       --out ${CMAKE_CURRENT_BINARY_DIR}/cli-plot.svg
  STDOUT "chart written to" FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-plot.svg)

# A bad file runs nothing and touches no output: an existing stats.json in --out is kept as is.
add_test(NAME "hmmsim cli: a bad file leaves the --out folder untouched (exit 2)"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DBAD=${_bad}/bad_key.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-untouched -P ${PROJECT_SOURCE_DIR}/cmake/CheckBadFileUntouched.cmake)

# The same sweep under mpirun (2 ranks) writes the same CSV, byte for byte, as locally.
if(HMMSIM_HAVE_MPI)
  find_program(HMMSIM_MPIRUN NAMES mpirun mpiexec)
endif()
if(HMMSIM_HAVE_MPI AND HMMSIM_MPIRUN)
  add_test(NAME "hmmsim cli: sweep under mpirun -n 2 writes the local sweep's CSV byte for byte"
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DMPIRUN=${HMMSIM_MPIRUN}
                   -DFILE=${PROJECT_SOURCE_DIR}/scenarios/sweeps/migrate_roundtrips.yaml
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-mpi -P ${PROJECT_SOURCE_DIR}/cmake/CompareMpiSweep.cmake)
  set_tests_properties("hmmsim cli: sweep under mpirun -n 2 writes the local sweep's CSV byte for byte"
                       PROPERTIES TIMEOUT 60)
  # A platform scenario's points fork their variants inside the ranks.
  set(_mpi_platform "hmmsim cli: a platform sweep under mpirun -n 2 writes the local sweep's CSV byte for byte")
  add_test(NAME "${_mpi_platform}"
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DMPIRUN=${HMMSIM_MPIRUN}
                   -DFILE=${PROJECT_SOURCE_DIR}/scenarios/sweeps/camera_chain_pixel_rate.yaml
                   "-DGRID=--param|platform.devices[2].params.pixel_rate=50e6,100e6,300e6"
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-mpi-platform -P ${PROJECT_SOURCE_DIR}/cmake/CompareMpiSweep.cmake)
  set_tests_properties("${_mpi_platform}" PROPERTIES TIMEOUT 60)
endif()

# Platform scenarios: the camera chain's comparison table, and the new keys' errors.
set(_cc ${PROJECT_SOURCE_DIR}/scenarios/camera_chain.yaml)
hmmsim_cli_test("camera_chain prints its comparison table, a column per variant, and exits 0" 0
  ARGS run ${_cc}
  STDOUT "p2p_switch +p2p_rc_iommu +bounce\n +frames pixel-exact +6/6 +6/6 +6/6\n +fps +60.30 +60.30 +60.36\n +throughput \\(MB/s\\) +166.7 +166.7 +166.9\n +frame latency p50 \\(us\\) [0-9. ]+\n +frame latency p99 \\(us\\) [0-9. ]+\n +convert latency p50 \\(us\\) [0-9. ]+\n +root complex bytes +17.30 MiB +51.91 MiB +52.45 MiB\n +system memory bytes +15.82 MiB +15.82 MiB +47.46 MiB\n +link above sw0 up/down \\(MiB\\) [^\n]*\n( +link above [^\n]*\n)* +IOMMU IOTLB hits/misses +[0-9]+/[0-9]+ +[0-9]+/[0-9]+ +[0-9]+/[0-9]+\n +p2p maps +[1-9][0-9]* +[1-9][0-9]* +0\n +checker +clean +clean +clean\n +result +PASS +PASS +PASS\n"
  STDERR_EMPTY)
# misbehaving_importer: each violation names the invalidation it broke; the same runs without
# their expected verdict (the command line's checker verdict wins over the variants') fail.
set(_mi ${PROJECT_SOURCE_DIR}/scenarios/misbehaving_importer.yaml)
hmmsim_cli_test("misbehaving_importer: a violation names the invalidation it broke and the run passes" 0
  ARGS run ${_mi}
  STDOUT "ack_without_waiting: 20[.][0-9]+ms cam0 0x[0-9a-f]+ stale-translation: translation used after clear invalidation of \\[0x[0-9a-f]+, 0x[0-9a-f]+\\) returned at 20002000000ps")
hmmsim_cli_test("misbehaving_importer without its expected checker verdict exits 1 and says why" 1
  ARGS run ${_mi} --set expect.checker=clean
  STDOUT "FAILED: ack_without_waiting: [^\n]*expect: checker: expected clean, got stale-translation=8\n")
# nvme_via_nic_misbehave: a NIC that ignores invalidations of its BAR0 mapping is reported; the
# same run expecting a clean checker fails.
set(_nm ${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic_misbehave.yaml)
hmmsim_cli_test("nvme_via_nic_misbehave: the NIC's mappings held after a CLEAR name the CLEAR they broke" 0
  ARGS run ${_nm}
  STDOUT "100us nic0 0x[0-9a-f]+ stale-translation: DMA/p2p mapping still held after clear invalidation of \\[0x[0-9a-f]+, 0x[0-9a-f]+\\) returned at 100000000ps")
hmmsim_cli_test("nvme_via_nic_misbehave expecting a clean checker exits 1 and counts the reports" 1
  ARGS run ${_nm} --set expect.checker=clean
  STDOUT "FAILED: [^\n]*expect: checker: expected clean, got stale-translation=728\n")
# nvme_via_nic_reset: the NIC retries queue accesses the resetting exporter refuses; with two
# retries allowed it gives up, and the run fails naming the access, the errno and what it abandoned.
hmmsim_cli_test("nvme_via_nic_reset: a NIC out of queue retries reports the access it gave up and exits 1" 1
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic_reset.yaml --set platform.devices[0].params.queue_retry_limit=2
  STDOUT "FAILED: [^\n]*the NIC gave up on the queue at 257[.]40 us: CQE read could not be mapped: EIO \\(the exporter refused the p2p map\\) after 2 retries; 49 commands abandoned\n")
hmmsim_cli_test("acs_what_if: a declined p2p map without p2p_fallback fails the variant, naming the fix" 1
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/acs_what_if.yaml --set workload.camera_chain.p2p_fallback=false
  STDOUT "FAILED: acs_declined: [^\n]*the camera cannot map the colour engine's memory \\(p2p declined; p2p_fallback: true")
# acs_what_if acs_ignored: an exporter ignoring the map type; each refused burst is a rule-7 report
# naming the host bridge, why and the map type; without the expected verdict (or without
# allow_failed_frames) the same runs fail, naming the rule (or the dropped frames).
set(_acs ${PROJECT_SOURCE_DIR}/scenarios/acs_what_if.yaml)
hmmsim_cli_test("acs_what_if: an exporter ignoring the map type gets Unsupported Requests, the run passes" 0
  ARGS run ${_acs}
  STDOUT "acs_ignored: [0-9.]+us cam0 0x4000000000 unsupported-request: Unsupported Request from host bridge hb0: p2p not allowed through it \\(it forwards no peer-to-peer\\); the address is colour0 BAR 2's bus address, p2pdma map type NotSupported ignored")
hmmsim_cli_test("acs_what_if without the expected Unsupported Requests exits 1 naming the rule" 1
  ARGS run ${_acs} --set expect.checker=clean
  STDOUT "FAILED: acs_ignored: [^\n]*expect: checker: expected clean, got unsupported-request=4320\n")
hmmsim_cli_test("acs_what_if without allow_failed_frames exits 1 naming the dropped frames" 1
  ARGS run ${_acs} --set workload.camera_chain.allow_failed_frames=false
  STDOUT "FAILED: acs_ignored: [^\n]*frame 0: a DMA failed \\(the camera's: the frame was dropped\\)")
hmmsim_cli_test("camera_chain writes every variant's stats under its name" 0
  ARGS run ${_cc} --out ${CMAKE_CURRENT_BINARY_DIR}/cli-cc-out
  STDOUT "stats written to " FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-cc-out/stats.json)
hmmsim_cli_test("camera_chain --trace writes one trace, each variant a process" 0
  ARGS run ${_cc} --out ${CMAKE_CURRENT_BINARY_DIR}/cli-cc-trace --trace
  STDOUT "trace to " FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-cc-trace/trace.json)
# revoke_storm (at test size: tests/cli/scenarios/revoke_storm_small.yaml) traced: a track per
# link direction and device part, the storm's slices, valid JSON; twice, byte for byte.
add_test(NAME "hmmsim cli: revoke_storm --trace shows links, bursts, faults, invalidations, window moves"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${_bad}/revoke_storm_small.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-revoke-trace -DMAX_BYTES=1000000
                 "-DTRACKS=link.cam0.up|link.colour0.down|link.sw0.up|device.cam0.dma|device.cam0.faults|device.cam0.invalidations|device.colour0.bar|cpu.driver0|platform.iommu"
                 "-DSLICES=busy|DMA write|device fault|invalidate clear|move window|revoke \\(moved\\)|revoke \\(revoked\\)|walk"
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckPlatformTrace.cmake)
set_tests_properties("hmmsim cli: revoke_storm --trace shows links, bursts, faults, invalidations, window moves"
                     PROPERTIES ENVIRONMENT "SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1")
hmmsim_cli_test("a sweep of a platform scenario gives a row per point with every variant's stats" 0
  ARGS sweep ${PROJECT_SOURCE_DIR}/scenarios/sweeps/camera_chain_pixel_rate.yaml
       --param platform.devices[2].params.pixel_rate=50e6,300e6 --jobs 2
  STDOUT "^platform.devices\\[2\\].params.pixel_rate,pass,bounce[.][^\n]*p2p_switch[.]workload[.]convert_latency_p50[^\n]*\n50e6,1,[^\n]*\n300e6,1,")
hmmsim_cli_test("a platform run that misses its expectations exits 1 and names them" 1
  ARGS run ${_cc} --set workload.camera_chain.frames=2
  STDOUT "FAILED: bounce: .*camera_chain.yaml:[0-9]+:[0-9]+: expect: workload.frames is 2, expected eq: 6")
hmmsim_cli_test("validate lists a platform scenario's workload and variants" 0
  ARGS validate ${_cc}
  STDOUT "workload: camera_chain cam0 -> colour0 -> app, 6 frame\\(s\\), p2p\n  variant p2p_switch: .*\n  variant p2p_rc_iommu: .*\n  variant bounce: ")
hmmsim_cli_test("a workload key typo gets the nearest key (exit 2)" 2
  ARGS run ${_bad}/bad_workload_key.yaml STDERR "bad_workload_key.yaml:6:5: key 'workload.camera_chain.frame': unknown key; did you mean 'frames'")
hmmsim_cli_test("a workload naming a missing device gets the nearest device (exit 2)" 2
  ARGS run ${_bad}/bad_workload_device.yaml STDERR "bad_workload_device.yaml:4:26: key 'workload.camera_chain.camera': no camera device 'cam7' in platform.devices; did you mean 'cam0'")
hmmsim_cli_test("an unknown device type lists the known ones (exit 2)" 2
  ARGS run ${_bad}/bad_device_type.yaml STDERR "bad_device_type.yaml:12:26: key 'platform.devices\\[0\\].type': unknown device type 'camra' \\(known: camera, colour_engine.*did you mean 'camera'")
hmmsim_cli_test("a device parameter typo is found by its type's table (exit 2)" 2
  ARGS run ${_bad}/bad_device_param.yaml STDERR "bad_device_param.yaml:5:14: key 'workload.camera_chain.sensor.widht': unknown key; did you mean 'width'")
hmmsim_cli_test("an unknown colour transform preset gets the nearest (exit 2)" 2
  ARGS run ${_bad}/bad_transform.yaml STDERR "bad_transform.yaml:4:29: key 'workload.camera_chain.transform': expected a preset \\(identity, vivid\\).*did you mean 'vivid'")
hmmsim_cli_test("a variant's bad set: value points at the variant (exit 2)" 2
  ARGS run ${_bad}/bad_variant_set.yaml STDERR "bad_variant_set.yaml:7:39: key 'workload.camera_chain.path': expected one of: p2p, bounce; got 'p2q'")
hmmsim_cli_test("a host window over the MSI window is refused (exit 2)" 2
  ARGS validate ${_bad}/bad_msi_window.yaml STDERR "bad_msi_window.yaml:[0-9]+:[0-9]+: key 'platform.topology': host bridge 'hb0': its mem_window covers the MSI window")
# The GPU + NIC scenarios (RFC workloads [2] and [3]).
hmmsim_cli_test("gpu_stream_out prints p2p and bounce side by side, the bounce's DRAM bytes" 0
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_stream_out.yaml
  STDOUT "p2p +bounce\n +result bytes correct on the wire +4.00 MiB/4.00 MiB +4.00 MiB/4.00 MiB\n.*system memory bytes beyond the ring +0 B +8.00 MiB\n.*result +PASS +PASS"
  STDERR_EMPTY)
hmmsim_cli_test("a gpu_monitor key typo gets the nearest key (exit 2)" 2
  ARGS run ${_bad}/bad_gpu_monitor_key.yaml STDERR "bad_gpu_monitor_key.yaml:6:5: key 'workload.gpu_monitor.sampels': unknown key; did you mean 'samples'")
hmmsim_cli_test("a gpu_stream_out naming a missing nic gets the nearest nic (exit 2)" 2
  ARGS run ${_bad}/bad_gpu_stream_device.yaml STDERR "bad_gpu_stream_device.yaml:4:36: key 'workload.gpu_stream_out.nic': no nic device 'nic1' in platform.devices; did you mean 'nic0'")
hmmsim_cli_test("a gpu whose BAR is larger than its VRAM is refused at its platform device (exit 2)" 2
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_monitor.yaml --set platform.devices[0].params.vram=128MiB
       --set platform.devices[0].params.kernel_region=64MiB
  STDERR "gpu_nic.yaml:[0-9]+:[0-9]+: key 'platform.devices[^']*': gpu 'gpu0' on endpoint 'gpu0': its BAR 2 \\(268435456 bytes\\) must be at most its vram")
hmmsim_cli_test("gpu_monitor passes with the gpu's VRAM aperture 64 MiB into its BAR" 0
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_monitor.yaml --set platform.devices[0].params.bar_aperture_offset=64MiB
  STDOUT "result +PASS")
hmmsim_cli_test("a gpu VRAM aperture offset not a multiple of bar_window is refused (exit 2)" 2
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_monitor.yaml --set platform.devices[0].params.bar_aperture_offset=3MiB
  STDERR "bar_aperture_offset \\(3145728\\) must be a multiple of bar_window \\(2097152\\)")
hmmsim_cli_test("a gpu VRAM aperture offset beyond its BAR is refused at its platform device (exit 2)" 2
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_monitor.yaml --set platform.devices[0].params.bar_aperture_offset=256MiB
  STDERR "gpu_nic.yaml:[0-9]+:[0-9]+: key 'platform.devices[^']*': gpu 'gpu0' on endpoint 'gpu0': bar_aperture_offset \\(268435456 bytes\\) must be below the size of its BAR 2 \\(268435456 bytes\\)")
hmmsim_cli_test("a gpu parameter typo in --set gets the nearest key (exit 2)" 2
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/gpu_monitor.yaml --set platform.devices[0].params.vram_chanels=4
  STDERR "key 'platform.devices\\[0\\].params.vram_chanels': unknown key; did you mean 'vram_channels'")
hmmsim_cli_test("describe gpu and nic print their parameter tables" 0
  ARGS describe gpu STDOUT "vram +size +bytes +16GiB .*vram_channel_bandwidth +rate +bit/s +256Gb/s .*bar_policy +choice")
hmmsim_cli_test("describe camera prints the device's parameter table" 0
  ARGS describe camera STDOUT "width +int +pixels +1920 .*irq_cost +time +ps +2us")
add_test(NAME "hmmsim cli: a bad platform file leaves the --out folder untouched (exit 2)"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DBAD=${_bad}/bad_workload_key.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-untouched-platform -P ${PROJECT_SOURCE_DIR}/cmake/CheckBadFileUntouched.cmake)
# The NVMe-via-NIC workload: its comparison table and its keys' errors.
set(_nv ${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic.yaml)
hmmsim_cli_test("nvme_via_nic prints p2p and cpu side by side with latency, IOPS and CPU rows" 0
  ARGS run ${_nv} --out ${CMAKE_CURRENT_BINARY_DIR}/cli-nvme-via-nic
  STDOUT "p2p +cpu +p2p_burst +cpu_burst +p2p_iommu +cpu_iommu\n.*latency p50 \\(us\\).*IOPS \\(k\\).*CPU interrupts +0 +128 +0 +512 +0 +128\n.*queue bytes in system memory +0 B.*IOMMU IOTLB hits/misses +off +off +off +off +[0-9]+/[1-9][0-9]* +[0-9]+/[1-9][0-9]*\n")
hmmsim_cli_test("an unknown nvme_via_nic path lists the valid ones at its line and column (exit 2)" 2
  ARGS run ${_bad}/bad_nvme_path.yaml
  STDERR "bad_nvme_path.yaml:4:24: key 'workload.nvme_via_nic.path': expected one of: p2p, cpu; got 'nic'")
hmmsim_cli_test("a p2p queue too big for the CMB names queue_depth, the need and the fix (exit 2)" 2
  ARGS run ${_bad}/bad_nvme_queue.yaml
  STDERR "bad_nvme_queue.yaml:6:18: key 'workload.nvme_via_nic.queue_depth': the queues and PRP lists of the p2p path need 4276224 B of CMB; .*lower queue_depth or raise cmb_size")
hmmsim_cli_test("describe nvme prints the SSD's parameter table, media rows included" 0
  ARGS describe nvme STDOUT "cmb_size +size +bytes .*read_latency +time +ps +80us")
# Thousands of checker reports: the terminal shows each variant's first 20 and says how many more;
# --out writes every one to DIR/violations.txt.
hmmsim_cli_test("misbehaving_importer: the terminal shows 20 reports per variant and counts the rest" 0
  ARGS run ${_mi}
  STDOUT "ignore_invalidations: \\.\\.\\. and 14270 more violation\\(s\\) \\(--out DIR writes every one to DIR/violations.txt\\)")
hmmsim_cli_test("misbehaving_importer --out writes every checker report to violations.txt" 0
  ARGS run ${_mi} --out ${CMAKE_CURRENT_BINARY_DIR}/cli-misbehaving-out
  STDOUT "checker reports to [^\n]*violations.txt" FILE ${CMAKE_CURRENT_BINARY_DIR}/cli-misbehaving-out/violations.txt)
hmmsim_cli_test("validate counts a platform scenario's own devices and processes" 0
  ARGS validate ${_cc}
  STDOUT "ok \\(scenario camera_chain, 1 process\\(es\\), 3 device\\(s\\), 0 script operation\\(s\\)\\)")
hmmsim_cli_test("an nvme whose CMB leaves its BAR 0 is refused at its platform device (exit 2)" 2
  ARGS validate ${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic.yaml --set platform.devices[1].params.cmb_size=64MiB
  STDERR "nic_nvme.yaml:[0-9]+:[0-9]+: key 'platform.devices\\[1\\]': nvme 'nvme0' on endpoint 'nvme0' \\(BAR 0 of 4194304 bytes\\): the CMB")
# small_bar (issue 13 item 7): the importers x bar_policy sweep, its CSV and its chart.
add_test(NAME "hmmsim cli: the small_bar sweep's revokes follow the policy and its chart has a line per policy"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hmmsim> -DFILE=${PROJECT_SOURCE_DIR}/scenarios/sweeps/small_bar.yaml
                 -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-small-bar -P ${PROJECT_SOURCE_DIR}/cmake/CheckSmallBarSweep.cmake)
set_tests_properties("hmmsim cli: the small_bar sweep's revokes follow the policy and its chart has a line per policy"
                     PROPERTIES ENVIRONMENT "SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1")
hmmsim_cli_test("small_bar slices beyond the GPU's VRAM are refused at slice with the fix (exit 2)" 2
  ARGS run ${_bad}/bad_small_bar_slice.yaml
  STDERR "bad_small_bar_slice.yaml:4:59: key 'workload.small_bar.slice': importers x slice \\(8.00 GiB\\) exceeds gpu0's vram \\(4.00 GiB\\): fewer importers, a smaller slice or more vram")
hmmsim_cli_test("small_bar prints its policies side by side: LRU revokes, unlimited does not" 0
  ARGS run ${PROJECT_SOURCE_DIR}/scenarios/small_bar.yaml
  STDOUT "lru_reclaim +unlimited +refuse_when_busy +per_importer_cap\n +bytes read \\(wrong\\) +64.00 MiB \\(0 B\\) +64.00 MiB \\(0 B\\) [^\n]*\n[^\n]*\n +revokes +[1-9][0-9]* +0 +0 +0\n.*result +PASS +PASS +PASS +PASS")

# Platform scripts (scenarios/platform_script.h): each bad entry is refused before anything runs.
set(_bs ${_bad}/bad_script.yaml)
hmmsim_cli_test("a platform script validates and counts its operations" 0
  ARGS validate ${_bs} STDOUT "3 script operation\\(s\\).*script: 3 operation\\(s\\), 3 occurrence\\(s\\)")
hmmsim_cli_test("an unknown platform script operation names the nearest one (exit 2)" 2
  ARGS validate ${_bs} --set script[0].op=revok
  STDERR "key 'script\\[0\\].op': unknown platform script operation 'revok'; did you mean 'revoke'")
hmmsim_cli_test("a platform script region the workload does not have lists its regions (exit 2)" 2
  ARGS validate ${_bad}/bad_script_region.yaml
  STDERR "bad_script_region.yaml:6:27: key 'script\\[0\\].region': no region 'frames_ou': the workload's regions and the script's mmaps are frames_in, frames_out; did you mean 'frames_out'")
hmmsim_cli_test("a platform script event on a device of the wrong type names the types that fit (exit 2)" 2
  ARGS validate ${_bs} --set script[0].device=cam0
  STDERR "key 'script\\[0\\].device': device 'cam0' is a camera; revoke needs one of type colour_engine, gpu, nvme")
hmmsim_cli_test("a platform script device that does not exist names the nearest (exit 2)" 2
  ARGS validate ${_bs} --set script[2].device=cam9
  STDERR "key 'script\\[2\\].device': no device 'cam9' in platform.devices; did you mean 'cam0'")
hmmsim_cli_test("a platform script time must be a duration (exit 2)" 2
  ARGS validate ${_bs} --set script[0].at=-1ms STDERR "key 'script\\[0\\].at'")
hmmsim_cli_test("a repeated platform script operation needs count or until (exit 2)" 2
  ARGS validate ${_bs} --set script[0].every=1ms
  STDERR "key 'script\\[0\\].every': an operation repeated `every:` period needs count: N or until: TIME")
hmmsim_cli_test("an unknown misbehaviour lists the modes (exit 2)" 2
  ARGS validate ${_bs} --set script[2].mode=pin
  STDERR "key 'script\\[2\\].mode': expected one of: none, ignore_invalidations.*got 'pin'")
hmmsim_cli_test("a platform script operation's expectation that fails names file:line and exits 1" 1
  ARGS run ${_bs} --set script[1].expect=EINVAL
  STDOUT "FAILED: [^\n]*bad_script.yaml:7:5: mprotect at 2ms: returned ok, expected EINVAL")

# Platform processes and placements (scenarios/platform_processes.cpp): every bad mapping or
# placement is refused before anything runs, with the key, the fix and the nearest name.
set(_bp ${_bad}/bad_processes.yaml)
hmmsim_cli_test("a platform scenario with processes and a placement validates (exit 0)" 0
  ARGS validate ${_bp} STDOUT "camera_chain cam0 -> colour0 -> app")
hmmsim_cli_test("a placement in a mapping the process does not have names file:line:column and the nearest (exit 2)" 2
  ARGS validate ${_bad}/bad_place.yaml
  STDERR "bad_place.yaml:7:94: key 'workload.camera_chain.place.frames_out': process 'app' has no mapping 'out_hug' \\(its mappings: out_huge\\); did you mean 'out_huge'")
hmmsim_cli_test("a buffer bigger than its mapping says the size to give (exit 2)" 2
  ARGS validate ${_bp} --set workload.camera_chain.place.frames_out=small
  STDERR "key 'workload.camera_chain.place.frames_out': frames_out needs 1843200 bytes and mapping 'small' has 64KiB: make its size at least 1843200 \\(e.g. 2MiB\\)")
hmmsim_cli_test("a placement of a region the workload does not have names the nearest (exit 2)" 2
  ARGS validate ${_bp} --set workload.camera_chain.place.frames_ot=small
  STDERR "frames_ot.*did you mean 'frames_out'")
hmmsim_cli_test("a hugetlb page size the machine does not have is refused with the sizes it has (exit 2)" 2
  ARGS validate ${_bp} --set processes[0].memory[1].page_size=4MiB
  STDERR "key 'processes\\[0\\].memory\\[1\\].page_size': expected a hugetlb page size the machine has: 2MiB or 1GiB")
hmmsim_cli_test("hugetlb mappings beyond the process's pool say the pool to set (exit 2)" 2
  ARGS validate ${_bp} --set processes[0].mm.hugetlb_pages=0
  STDERR "bad_processes.yaml:9:32: key 'processes\\[0\\].memory\\[1\\].size': process 'app' has 0 hugetlb page\\(s\\) of 2MiB and its hugetlb mappings need 1: set processes\\[0\\].mm.hugetlb_pages: 1")
hmmsim_cli_test("a placement in a process without mappings says to declare them (exit 2)" 2
  ARGS validate ${_bp} --set workload.camera_chain.process=other
  STDERR "frames_in is in process 'other', which has no mappings: declare it under processes: with a memory: list")
hmmsim_cli_test("p2p input frames placed in process memory must be the engine's device file (exit 2)" 2
  ARGS validate ${_bp} --set workload.camera_chain.path=p2p
  STDERR "bad_processes.yaml:19:24: key 'workload.camera_chain.place.frames_in': on the p2p path frames_in is the colour engine's memory: place it in a mapping with kind: device-file, device: colour0")
hmmsim_cli_test("a device-file mapping of a device without a file names those with one (exit 2)" 2
  ARGS validate ${_bp} --set processes[0].memory[2].kind=device-file --set processes[0].memory[2].device=cam0
  STDERR "no device with a device file named 'cam0' in platform.devices \\(devices of type colour_engine, gpu, nvme have one: colour0\\)")
# The GPU workloads' placements (gpu_reduce's buffer, gpu_stream_out's bounce results,
# gpu_monitor's copied counter): one rule per region and run (models/platform/placement.h).
set(_bgp ${_bad}/bad_gpu_place.yaml)
hmmsim_cli_test("a gpu_reduce buffer placed in a hugetlb mapping validates (exit 0)" 0
  ARGS validate ${_bgp} STDOUT "gpu_reduce on gpu1 of 2097152 bytes of app, source system")
hmmsim_cli_test("a migrating gpu_reduce buffer placed in hugetlb memory is refused with the kinds to take (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.source=own
  STDERR "bad_gpu_place.yaml:19:21: key 'workload.gpu_reduce.place.buffer': with source own the buffer migrates to gpu1's VRAM, and migrate_vma refuses hugetlb memory \\(EINVAL\\): place it in an anon \\(thp allowed\\) or file-private mapping \\(or take source: system\\)")
hmmsim_cli_test("a migrating gpu_reduce buffer placed in shared memory is refused: shmem does not migrate (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.source=peer_private --set workload.gpu_reduce.place.buffer=shm
  STDERR "key 'workload.gpu_reduce.place.buffer': with source peer_private the buffer migrates to gpu0's VRAM, and only anonymous pages migrate to device memory")
hmmsim_cli_test("a gpu_reduce buffer that is the peer's VRAM goes in a device file of the peer only (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.source=peer_vram
  STDERR "bad_gpu_place.yaml:19:21: key 'workload.gpu_reduce.place.buffer': with source peer_vram the buffer is gpu0's VRAM: place it in a mapping with kind: device-file, device: gpu0 \\(or take source: system\\)")
hmmsim_cli_test("a gpu_reduce buffer placed in a read-only mapping says the prot to give (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.place.buffer=ro
  STDERR "key 'workload.gpu_reduce.place.buffer': buffer needs prot: rw \\(the process fills it, gpu1 reads it\\); its mapping has prot: r")
hmmsim_cli_test("a gpu_reduce buffer bigger than its mapping says the size to give (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.place.buffer=small
  STDERR "key 'workload.gpu_reduce.place.buffer': buffer needs 2097152 bytes and mapping 'small' has 64KiB: make its size at least 2097152 \\(e.g. 2MiB\\)")
hmmsim_cli_test("a gpu_reduce placement of a region it does not have names the nearest (exit 2)" 2
  ARGS validate ${_bgp} --set workload.gpu_reduce.place.bufer=huge
  STDERR "bufer.*did you mean 'buffer'")
set(_bgn ${_bad}/bad_gpu_nic_place.yaml)
hmmsim_cli_test("gpu_stream_out bounce results placed in a hugetlb mapping validate (exit 0)" 0
  ARGS validate ${_bgn})
hmmsim_cli_test("gpu_stream_out p2p results in a hugetlb mapping are refused: they are VRAM (exit 2)" 2
  ARGS validate ${_bgn} --set workload.gpu_stream_out.path=p2p
  STDERR "bad_gpu_nic_place.yaml:16:22: key 'workload.gpu_stream_out.place.results': on the p2p path results is gpu0's VRAM: place it in a mapping with kind: device-file, device: gpu0 \\(or take path: bounce\\)")
hmmsim_cli_test("gpu_stream_out results placed in a mapping the process lacks name the nearest (exit 2)" 2
  ARGS validate ${_bgn} --set workload.gpu_stream_out.place.results=hug
  STDERR "key 'workload.gpu_stream_out.place.results': process 'app' has no mapping 'hug' \\(its mappings: huge\\); did you mean 'huge'")
# Device-file mappings at an offset (processes[].memory[].offset) and p2p results placed in one.
set(_bdf ${_bad}/bad_device_file.yaml)
hmmsim_cli_test("gpu_stream_out p2p results in a GPU device-file mapping at an offset validate (exit 0)" 0
  ARGS validate ${_bdf})
hmmsim_cli_test("a device-file offset that is not a page multiple says the page to give (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[0].offset=6KiB
  STDERR "key 'processes\\[0\\].memory\\[0\\].offset': offset 6144 is not a multiple of 4KiB \\(mmap's offset counts pages\\): give e.g. 4KiB")
hmmsim_cli_test("a device-file offset past the device's memory names its size (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[0].offset=2GiB
  STDERR "key 'processes\\[0\\].memory\\[0\\].offset': offset 2GiB is past the end of gpu0's device file, which maps 1GiB \\(its VRAM\\): give an offset below 1GiB")
hmmsim_cli_test("a device-file offset plus size past the end says the size or offset to give (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[0].offset=1023MiB
  STDERR "key 'processes\\[0\\].memory\\[0\\].offset': offset 1023MiB \\+ size 2MiB reach past the end of gpu0's device file, which maps 1GiB \\(its VRAM\\): make size at most 1MiB or offset at most 1022MiB")
hmmsim_cli_test("a device-file size past the end from the file's offset names file:line:column (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[0].size=2GiB
  STDERR "bad_device_file.yaml:7:75: key 'processes\\[0\\].memory\\[0\\].offset': offset 800MiB \\+ size 2GiB reach past the end of gpu0's device file, which maps 1GiB \\(its VRAM\\): make size at most 224MiB")
hmmsim_cli_test("an offset on an anon mapping is refused: only device files take one (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[1].offset=4KiB
  STDERR "key 'processes\\[0\\].memory\\[1\\].offset': offset is where a device-file mapping starts in its device's file; kind anon has none: remove offset \\(or take kind: device-file with a device:\\)")
hmmsim_cli_test("p2p results in a GPU mapping outside its kernel region say the offset to give (exit 2)" 2
  ARGS validate ${_bdf} --set processes[0].memory[0].offset=4MiB
  STDERR "bad_device_file.yaml:16:22: key 'workload.gpu_stream_out.place.results': on the p2p path results is gpu0's VRAM: results \\(2MiB\\) lies in the GPU driver's kernel region \\(file offsets 768MiB to 1GiB\\) and its mapping starts at offset 4MiB: give the mapping offset: 768MiB \\(up to 1022MiB\\)")
hmmsim_cli_test("nvme_via_nic's nvme_bar on the cpu path cannot be placed (exit 2)" 2
  ARGS validate ${PROJECT_SOURCE_DIR}/scenarios/nvme_via_nic_device_file.yaml
       --set workload.nvme_via_nic.path=cpu --set workload.nvme_via_nic.place.nvme_bar=bar
  STDERR "key 'workload.nvme_via_nic.place.nvme_bar': on the cpu path there is no nvme_bar \\(the queues are in host memory\\): place it on path: p2p")
hmmsim_cli_test("a device name with a '.' is refused: it names a SystemC module and stats (exit 2)" 2
  ARGS validate ${PROJECT_SOURCE_DIR}/scenarios/gpu_reduce.yaml --set platform.devices[1].name=gpu.1
  STDERR "key 'platform.devices\\[1\\].name': a device's name names its SystemC module and its stats \\(device.<name>.\\*\\): give one without '.'")
set(_bgm ${_bad}/bad_gpu_monitor_place.yaml)
hmmsim_cli_test("a gpu_monitor counter placed in a shared mapping validates in mode copy (exit 0)" 0
  ARGS validate ${_bgm})
hmmsim_cli_test("a gpu_monitor p2p counter goes in a device file of the GPU only, where it is VRAM (exit 2)" 2
  ARGS validate ${_bgm} --set workload.gpu_monitor.mode=p2p
  STDERR "bad_gpu_monitor_place.yaml:16:22: key 'workload.gpu_monitor.place.counter': in mode p2p the counter is gpu0's VRAM: place it in a mapping with kind: device-file, device: gpu0 \\(or take mode: copy\\)")
hmmsim_cli_test("a gpu_monitor p2p counter in a GPU mapping off its page says the offset to give (exit 2)" 2
  ARGS validate ${_bgm} --set workload.gpu_monitor.mode=p2p --set processes[0].memory[0].kind=device-file
       --set processes[0].memory[0].device=gpu0
  STDERR "key 'workload.gpu_monitor.place.counter': in mode p2p the counter is gpu0's VRAM: counter \\(4KiB\\) lies in the page of the kernel's progress counter, after its region \\(file offsets 772MiB to 790532KiB\\) and its mapping starts at offset 0: give the mapping offset: 772MiB")
hmmsim_cli_test("an unknown platform script operation near fork names it (exit 2)" 2
  ARGS validate ${_bs} --set script[0].op=frok
  STDERR "key 'script\\[0\\].op': unknown platform script operation 'frok'; did you mean 'fork'")
set(_bsm ${_bad}/bad_script_mm.yaml)
hmmsim_cli_test("a platform script fork of an unknown process names the nearest (exit 2)" 2
  ARGS validate ${_bsm} --set script[0].process=ap
  STDERR "key 'script\\[0\\].process': no process 'ap'; did you mean 'app'")
hmmsim_cli_test("an mremap to a region the process does not have names its regions (exit 2)" 2
  ARGS validate ${_bsm} --set script[1].to=frames_ot
  STDERR "key 'script\\[1\\].to': no other region 'frames_ot' in process 'app' to move to; did you mean 'frames_in'")
hmmsim_cli_test("a migrate by a device that cannot migrate names file:line:column and the types (exit 2)" 2
  ARGS validate ${_bsm}
  STDERR "bad_script_mm.yaml:9:47: key 'script\\[2\\].device': device 'colour0' is a colour_engine; migrate needs one of type gpu, dmirror")
# The GPU and NVMe workloads' named regions (gpu_monitor: counter, unless mode none).
set(_bgr ${_bad}/bad_script_gpu_region.yaml)
hmmsim_cli_test("a gpu_monitor script may name its counter region when it monitors (exit 0)" 0
  ARGS validate ${_bgr} --set workload.gpu_monitor.mode=p2p
  STDOUT "gpu_monitor nic0 watches gpu0 through app.*script: 1 operation")
hmmsim_cli_test("a gpu_monitor without monitoring has no counter region for its script (exit 2)" 2
  ARGS validate ${_bgr}
  STDERR "bad_script_gpu_region.yaml:6:38: key 'script\\[0\\].region': no region 'counter': the workload's regions and the script's mmaps are none")
