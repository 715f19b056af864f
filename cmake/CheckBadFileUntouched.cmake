# hmmsim run BAD --out WORK --trace must exit 2 and leave WORK exactly as it was: the stats.json
# already there keeps its contents and no trace.json appears.
#   cmake -DEXE=<hmmsim> -DBAD=<a bad scenario> -DWORK=<folder> -P CheckBadFileUntouched.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK}")
file(WRITE "${WORK}/stats.json" "an older run's stats\n")
execute_process(COMMAND "${EXE}" run "${BAD}" --out "${WORK}" --trace RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "exit status ${rc}, expected 2\n${out}${err}")
endif()
file(READ "${WORK}/stats.json" kept)
if(NOT kept STREQUAL "an older run's stats\n" OR EXISTS "${WORK}/trace.json" OR NOT out STREQUAL "")
  message(FATAL_ERROR "a bad file touched ${WORK} or ran: stdout '${out}'")
endif()
