# Common settings for every hmmsim target. No global include_directories():
# each library exports its own include root (the repository root) through its target.

# A target that names a source file which does not exist is a configure error, everywhere
# (locally and in CI): nothing is skipped silently. The message names the target and the file.
function(_hmmsim_require_sources kind name)
  set(missing)
  foreach(src ${ARGN})
    if(NOT IS_ABSOLUTE ${src})
      set(src ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    endif()
    if(NOT EXISTS ${src})
      list(APPEND missing ${src})
    endif()
  endforeach()
  if(missing)
    message(FATAL_ERROR "hmmsim: ${kind} ${name} names missing source(s): ${missing}\n"
                        "Add the file, or remove it from the target in ${CMAKE_CURRENT_LIST_FILE}.")
  endif()
endfunction()

function(hmmsim_warnings target)
  # -Wshadow=local is GCC's; clang (the fuzz preset) has no such option.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                                           -Wnon-virtual-dtor -Woverloaded-virtual)
  if(HMMSIM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# hmmsim_library(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per layer; consumers include "<layer>/<file>.h" from the repo root.
function(hmmsim_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  _hmmsim_require_sources(library ${name} ${ARG_SOURCES})
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
  _hmmsim_require_sources(test ${name} ${ARG_SOURCES})
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
  _hmmsim_require_sources(benchmark ${name} ${ARG_SOURCES})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE benchmark::benchmark ${ARG_LIBS})
  hmmsim_warnings(${name})
endfunction()
