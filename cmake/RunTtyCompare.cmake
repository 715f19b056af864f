# Runs `hmmsim run FILE --out WORK/plain` with stderr not a terminal and `--out WORK/tty` under
# script(1) (a pseudo-terminal: the progress line is on), and fails unless both stats.json files
# are byte-identical: what a run computes must not depend on where its messages go.
#   cmake -DEXE=<hmmsim> -DFILE=<scenario> -DWORK=<folder> -P RunTtyCompare.cmake
cmake_minimum_required(VERSION 3.25)
find_program(SCRIPT script)
if(NOT SCRIPT)
  message(FATAL_ERROR "script(1) (util-linux) is needed to give hmmsim a terminal; install bsdutils")
endif()
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND "${EXE}" run "${FILE}" --out "${WORK}/plain" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hmmsim run ${FILE} --out ${WORK}/plain exited ${rc}")
endif()
execute_process(COMMAND "${SCRIPT}" -qec "\"${EXE}\" run \"${FILE}\" --out \"${WORK}/tty\"" /dev/null
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hmmsim run ${FILE} --out ${WORK}/tty on a pseudo-terminal exited ${rc}")
endif()
file(READ "${WORK}/plain/stats.json" a)
file(READ "${WORK}/tty/stats.json" b)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "${WORK}/plain/stats.json and ${WORK}/tty/stats.json differ (a terminal changed the run)")
endif()
string(LENGTH "${a}" len)
message(STATUS "stats.json identical with and without a terminal (${len} bytes)")
