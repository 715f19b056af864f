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
  ARGS frobnicate STDERR "unknown subcommand 'frobnicate' \\(known: demo\\)")
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
