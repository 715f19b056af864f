# scripts/update-scenario-doc rebuilds the hmmsim target of a build tree of this source tree before
# it reads the parameter tables (a stale binary would drop rows). A binary it cannot rebuild is
# refused before docs/scenario-format.md is touched, with the fix. (The rebuilding path itself is
# not run here: it would build the tree these tests run from.)
set(_usd ${PROJECT_SOURCE_DIR}/scripts/update-scenario-doc)
function(update_scenario_doc_test name rc)
  cmake_parse_arguments(ARG "" "STDERR" "ARGS" ${ARGN})
  string(REPLACE ";" "|" args "${ARG_ARGS}")
  add_test(NAME "update-scenario-doc: ${name}"
           COMMAND ${CMAKE_COMMAND} -DEXE=${_usd} "-DARGS=${args}" -DRC=${rc} "-DSTDERR=${ARG_STDERR}"
                   -P ${PROJECT_SOURCE_DIR}/cmake/RunCli.cmake)
endfunction()

update_scenario_doc_test("a binary outside any build tree is refused: it cannot be rebuilt" 1
  ARGS ${PROJECT_SOURCE_DIR}/scripts/format
  STDERR "scripts/format is not inside a CMake build tree \\(no CMakeCache.txt above it\\), so it cannot be rebuilt and may be older than the sources; give a build folder of this tree")
# A build tree configured from another checkout (another worktree's build/release): its hmmsim
# describes that checkout's sources.
set(_other ${CMAKE_CURRENT_BINARY_DIR}/update-scenario-doc-other-tree)
file(MAKE_DIRECTORY ${_other}/scenarios)
file(WRITE ${_other}/CMakeCache.txt "CMAKE_HOME_DIRECTORY:INTERNAL=${CMAKE_CURRENT_BINARY_DIR}\n")
file(WRITE ${_other}/scenarios/hmmsim "")
update_scenario_doc_test("a build tree of another source tree is refused" 1
  ARGS ${_other}/scenarios/hmmsim
  STDERR "update-scenario-doc-other-tree was configured from [^\n]*, not from [^\n]*: its hmmsim describes other sources; give a build folder of this tree")
update_scenario_doc_test("a file of this build tree that is not its hmmsim is refused" 1
  ARGS ${CMAKE_BINARY_DIR}/CMakeCache.txt
  STDERR "CMakeCache.txt is not the hmmsim target of its build tree \\([^\n]*scenarios/hmmsim\\); give ")
update_scenario_doc_test("a build folder that does not exist is refused" 1
  ARGS ${CMAKE_CURRENT_BINARY_DIR}/no-such-build
  STDERR "no-such-build does not exist; give a build folder of this tree")
