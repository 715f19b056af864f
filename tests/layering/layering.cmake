# The layering rules of docs/architecture.md, checked on every ctest run.
add_test(NAME "layering: no lower layer includes an upper one"
         COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -P ${PROJECT_SOURCE_DIR}/cmake/CheckLayering.cmake)
# The check itself must catch a violation: a fake tree where sim includes hmm.
add_test(NAME "layering: a sim file including hmm/ fails the check"
         COMMAND ${CMAKE_COMMAND} -DROOT=${CMAKE_CURRENT_LIST_DIR}/bad_tree
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckLayering.cmake)
# Passes only if the check names the offending file, line and layers.
set_tests_properties("layering: a sim file including hmm/ fails the check" PROPERTIES
                     PASS_REGULAR_EXPRESSION "sim/bad.h:2: layer sim includes \"hmm/hmm.h\" of layer hmm")
