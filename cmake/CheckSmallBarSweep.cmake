# The small_bar sweep and its chart (issue 13 item 7): runs a small importers x bar_policy sweep,
# plots throughput by policy, and fails unless every point passed, the revokes follow the
# policies (LRU: none while the footprint fits the aperture, then more with every doubling of
# the importers; refuse_when_busy and per_importer_cap: never), refusals appear only past the
# aperture (refuse_when_busy) or the NIC's cap of 1536 pages (per_importer_cap: each 4 KiB read
# faults in the NIC's 64 KiB fault-around block, 16 pages, so the cap holds 96 reads' blocks; 16
# importers x 8 reads hold 128), and the SVG has a line per policy.
#   cmake -DEXE=<hmmsim> -DFILE=<sweeps/small_bar.yaml> -DWORK=<folder> -P CheckSmallBarSweep.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(policy "platform.devices[0].params.bar_policy")
execute_process(COMMAND "${EXE}" sweep "${FILE}" --param workload.small_bar.importers=8,16,32,64
                        --param "${policy}=lru_reclaim,refuse_when_busy,per_importer_cap"
                        --param "platform.devices[0].params.importer_cap=1536" --jobs 2
                        --out "${WORK}/small_bar.csv"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sweep exited ${rc}\n${out}${err}")
endif()
execute_process(COMMAND "${EXE}" plot "${WORK}/small_bar.csv" --x workload.small_bar.importers
                        --y workload.throughput --by "${policy}" --out "${WORK}/throughput.svg"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "plot exited ${rc}\n${out}${err}")
endif()
file(READ "${WORK}/throughput.svg" svg)
foreach(p lru_reclaim refuse_when_busy per_importer_cap)
  string(FIND "${svg}" "bar_policy=${p}<" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the chart has no series ${p}")
  endif()
endforeach()
string(REGEX MATCHALL "<polyline" lines "${svg}")
list(LENGTH lines nLines)
if(NOT nLines EQUAL 3)
  message(FATAL_ERROR "the chart has ${nLines} lines, expected 3 (one per policy)")
endif()

file(STRINGS "${WORK}/small_bar.csv" rows)
list(POP_FRONT rows header)
string(REPLACE "," ";" header "${header}")
foreach(c workload.small_bar.importers ${policy} pass workload.revokes workload.refusals)
  list(FIND header "${c}" idx_${c})
  if(idx_${c} EQUAL -1)
    message(FATAL_ERROR "no column ${c} in the CSV header: ${header}")
  endif()
endforeach()
list(LENGTH rows n)
if(NOT n EQUAL 12)
  message(FATAL_ERROR "${n} rows, expected 12 (4 importer counts x 3 policies)")
endif()
foreach(r IN LISTS rows)
  string(REPLACE "," ";" r "${r}")
  list(GET r ${idx_workload.small_bar.importers} imp)
  list(GET r ${idx_${policy}} pol)
  list(GET r ${idx_pass} pass)
  list(GET r ${idx_workload.revokes} rev)
  list(GET r ${idx_workload.refusals} ref)
  if(NOT pass EQUAL 1)
    message(FATAL_ERROR "${pol} with ${imp} importers did not pass")
  endif()
  set(revokes_${pol}_${imp} ${rev})
  set(refusals_${pol}_${imp} ${ref})
endforeach()
# LRU: 8 and 16 importers (64, 128 windows) fit the 128-window aperture; 32 and 64 thrash it.
foreach(check "revokes_lru_reclaim_8 EQUAL 0" "revokes_lru_reclaim_16 EQUAL 0" "revokes_lru_reclaim_32 GREATER 0"
        "revokes_lru_reclaim_64 GREATER revokes_lru_reclaim_32" "refusals_lru_reclaim_64 EQUAL 0"
        "revokes_refuse_when_busy_64 EQUAL 0" "refusals_refuse_when_busy_16 EQUAL 0"
        "refusals_refuse_when_busy_32 GREATER 0" "revokes_per_importer_cap_64 EQUAL 0"
        "refusals_per_importer_cap_8 EQUAL 0" "refusals_per_importer_cap_16 GREATER 0")
  string(REPLACE " " ";" c "${check}")
  list(GET c 0 a)
  list(GET c 1 op)
  list(GET c 2 b)
  if(DEFINED ${b})
    set(b "${${b}}")
  endif()
  if(NOT ${${a}} ${op} ${b})
    message(FATAL_ERROR "expected ${check} (${a} = ${${a}}, right side ${b})")
  endif()
endforeach()
message(STATUS "small_bar sweep: 12 points pass; LRU revokes ${revokes_lru_reclaim_32} at 32 importers, "
               "${revokes_lru_reclaim_64} at 64; chart ${WORK}/throughput.svg")
