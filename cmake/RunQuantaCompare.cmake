# Runs `hmmsim run FILE --set platform.quantum=<Q>` for each Q of QUANTA (comma-separated) and fails
# unless every stats.json is byte-identical: a platform's results depend on its seed, never on
# the TLM quantum (ordering-sensitive decisions happen at synchronised time).
#   cmake -DEXE=<hmmsim> -DFILE=<scenario> -DWORK=<folder> -DQUANTA=1us,100us -P RunQuantaCompare.cmake
# With -DKEY=<key> another platform setting that must not change the results takes the values
# (-DKEY=platform.lookahead -DQUANTA=true,false: lookahead only saves wake-ups). With -DTRACE=ON
# the runs also write the Perfetto trace, and the trace.json files must be byte-identical too.
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK}")
string(REPLACE "," ";" quanta "${QUANTA}")
if(NOT KEY)
  set(KEY platform.quantum)
endif()
set(trace_arg "")
if(TRACE)
  set(trace_arg --trace)
endif()
set(first "")
foreach(q ${quanta})
  execute_process(COMMAND "${EXE}" run "${FILE}" --seed 7 --set ${KEY}=${q} ${trace_arg} --out "${WORK}/${q}"
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "hmmsim run ${FILE} --set ${KEY}=${q} exited ${rc}")
  endif()
  file(READ "${WORK}/${q}/stats.json" s)
  if(TRACE)
    file(READ "${WORK}/${q}/trace.json" t)
  endif()
  if(first STREQUAL "")
    set(first "${q}")
    set(ref "${s}")
    set(ref_trace "${t}")
  elseif(NOT s STREQUAL ref)
    message(FATAL_ERROR "${WORK}/${first}/stats.json and ${WORK}/${q}/stats.json differ: ${KEY} changed the results")
  elseif(TRACE AND NOT t STREQUAL ref_trace)
    message(FATAL_ERROR "${WORK}/${first}/trace.json and ${WORK}/${q}/trace.json differ: ${KEY} changed the trace")
  endif()
endforeach()
string(LENGTH "${ref}" len)
message(STATUS "stats.json identical for ${KEY} ${QUANTA} (${len} bytes)")
