# Differential conformance with a real Linux 6.12 kernel: every hmmprobe script recorded in
# shared/kernel-traces (beside the source tree) replayed through hmmsim, one ctest entry per
# script (tests/conformance/trace_replay.h).
include(${CMAKE_CURRENT_LIST_DIR}/trace_replay_lib.cmake)

add_executable(hmm_trace_replay conformance/trace_replay_main.cpp)
target_link_libraries(hmm_trace_replay PRIVATE hmmsim_trace_replay)
hmmsim_warnings(hmm_trace_replay)

set(HMMSIM_KERNEL_TRACES_DIR "${PROJECT_SOURCE_DIR}/../shared/kernel-traces" CACHE PATH
    "Folder of the recorded kernel traces (scripts/, expected/, crashed.txt) that the replay tests compare with")

# Scripts where hmmsim is known to differ from the kernel: their entries are expected to fail
# (WILL_FAIL), so a fix that makes one match fails until it is taken off the list. The list
# must shrink to empty; nothing is skipped.
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/conformance/kernel_traces_divergent.txt _divergent REGEX "^[0-9]")
# The script line where the real kernel oopsed, for each crashed script (see the file).
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/conformance/kernel_trace_crashes.txt _crashes REGEX "^[0-9]")

if(NOT EXISTS ${HMMSIM_KERNEL_TRACES_DIR}/scripts)
  message(WARNING "hmmsim: kernel traces not found at ${HMMSIM_KERNEL_TRACES_DIR}; the trace replay "
                  "test will fail. Set -DHMMSIM_KERNEL_TRACES_DIR=<path to kernel-traces>.")
  add_test(NAME "trace_replay: kernel traces present"
           COMMAND hmm_trace_replay --traces ${HMMSIM_KERNEL_TRACES_DIR} --script 0000)
else()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${HMMSIM_KERNEL_TRACES_DIR}/scripts
               ${HMMSIM_KERNEL_TRACES_DIR}/expected)
  file(GLOB _scripts CONFIGURE_DEPENDS ${HMMSIM_KERNEL_TRACES_DIR}/scripts/*.txt)
  list(SORT _scripts)
  foreach(script ${_scripts})
    get_filename_component(id ${script} NAME_WE)
    set(args --traces ${HMMSIM_KERNEL_TRACES_DIR} --script ${id})
    foreach(c ${_crashes})
      if(c MATCHES "^${id} +([0-9]+)")
        list(APPEND args --crash-line ${CMAKE_MATCH_1})
      endif()
    endforeach()
    add_test(NAME "trace_replay: ${id}" COMMAND hmm_trace_replay ${args})
    set_tests_properties("trace_replay: ${id}" PROPERTIES TIMEOUT 120)
    if(id IN_LIST _divergent)
      set_tests_properties("trace_replay: ${id}" PROPERTIES WILL_FAIL TRUE)
    endif()
  endforeach()
  add_test(NAME "trace_replay: every script on one reset machine"
           COMMAND hmm_trace_replay --traces ${HMMSIM_KERNEL_TRACES_DIR} --all)
  set_tests_properties("trace_replay: every script on one reset machine" PROPERTIES TIMEOUT 300)
endif()

hmmsim_test(test_trace_replay SOURCES conformance/test_trace_replay.cpp LIBS hmmsim_trace_replay)
