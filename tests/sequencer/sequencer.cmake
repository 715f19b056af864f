# The sequencer rule (issue 12): no raw SystemC timed wait or notification in the library layers
# (cmake/CheckSequencedWaits.cmake), checked on every ctest run.
add_test(NAME "sequencer: no model waits or notifies with raw SystemC timing"
         COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -P ${PROJECT_SOURCE_DIR}/cmake/CheckSequencedWaits.cmake)
# The check itself must catch each kind, naming file:line and the fix, and leave alone a wait on
# an event the file notifies and a use marked "raw-systemc: <why>".
add_test(NAME "sequencer: the check names file and line of each raw wait and notify, and the fix"
         COMMAND ${CMAKE_COMMAND} -DROOT=${CMAKE_CURRENT_LIST_DIR}/bad_tree
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckSequencedWaits.cmake)
set_tests_properties(
  "sequencer: the check names file and line of each raw wait and notify, and the fix"
  PROPERTIES
    PASS_REGULAR_EXPRESSION
    "models/devices/bad.cpp:8: wait\\(d\\): a time[^\n]*Fix: seqWait\\(d\\).*bad.cpp:9: timed wait\\(d, done\\)[^\n]*Fix: seqWait\\(d\\).*bad.cpp:10: timed notify\\(d\\)[^\n]*Fix: seqNotify\\(e, d\\).*bad.cpp:11: a plain tlm_utils::tlm_quantumkeeper[^\n]*Fix: SeqQuantumKeeper.*4 raw SystemC"
    FAIL_REGULAR_EXPRESSION "bad.cpp:(1[2-9]):")
