# Common settings for every hmmsim target. No global include_directories():
# each library exports its own include root (the repository root) through its target.

# Several people grow the tree at once: a fragment may name a source that is not written yet.
# Such a target is skipped with a warning instead of breaking everybody's configure step;
# the release check (`make test` on a clean clone) treats any such warning as a failure.
function(_hmmsim_missing_sources out)
  set(missing)
  foreach(src ${ARGN})
    if(NOT IS_ABSOLUTE ${src})
      set(src ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    endif()
    if(NOT EXISTS ${src})
      list(APPEND missing ${src})
    endif()
  endforeach()
  set(${out} "${missing}" PARENT_SCOPE)
endfunction()

function(hmmsim_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wnon-virtual-dtor -Woverloaded-virtual)
  if(HMMSIM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# hmmsim_library(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per layer; consumers include "<layer>/<file>.h" from the repo root.
function(hmmsim_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  _hmmsim_missing_sources(missing ${ARG_SOURCES})
  if(missing)
    message(WARNING "hmmsim: library ${name} built without missing sources ${missing}")
    set_property(GLOBAL APPEND PROPERTY HMMSIM_SKIPPED_TARGETS ${name})
    list(REMOVE_ITEM ARG_SOURCES ${missing})
    foreach(m ${missing})
      file(RELATIVE_PATH rel ${CMAKE_CURRENT_SOURCE_DIR} ${m})
      list(REMOVE_ITEM ARG_SOURCES ${rel})
    endforeach()
  endif()
  if(NOT ARG_SOURCES)
    # Nothing written yet: an interface target keeps dependents configurable.
    add_library(${name} INTERFACE)
    add_library(hmmsim::${name} ALIAS ${name})
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_PUBLIC_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(hmmsim::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hmmsim_warnings(${name})
endfunction()

# hmmsim_test(<name> SOURCES ... LIBS ...)
# A Catch2 executable whose runner lives inside sc_main; every TEST_CASE becomes its own ctest
# entry (and so its own process: SystemC elaborates once per process).
function(hmmsim_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  _hmmsim_missing_sources(missing ${ARG_SOURCES})
  if(missing)
    message(WARNING "hmmsim: test ${name} skipped: missing ${missing}")
    set_property(GLOBAL APPEND PROPERTY HMMSIM_SKIPPED_TARGETS ${name})
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE hmmsim_catch_main ${ARG_LIBS})
  hmmsim_warnings(${name})
  # --warn NoTests: a ctest entry whose test spec matches no test case fails instead of passing
  # silently (a case name with an unbalanced '[' once merged several cases into one entry that
  # ran nothing: CMake lists do not split inside brackets).
  catch_discover_tests(${name}
    TEST_PREFIX "${name}: "
    EXTRA_ARGS --warn NoTests
    PROPERTIES ENVIRONMENT "SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1" TIMEOUT 300)
endfunction()

# hmmsim_bench(<name> SOURCES ... LIBS ...)
function(hmmsim_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  _hmmsim_missing_sources(missing ${ARG_SOURCES})
  if(missing)
    message(WARNING "hmmsim: benchmark ${name} skipped: missing ${missing}")
    set_property(GLOBAL APPEND PROPERTY HMMSIM_SKIPPED_TARGETS ${name})
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE benchmark::benchmark ${ARG_LIBS})
  hmmsim_warnings(${name})
endfunction()
