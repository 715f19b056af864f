# The replay library (tests/conformance/trace_replay.h): the trace replay tests and the
# fuzz_mm_script target share it (included from tests/ and from fuzz/, whichever comes first).
if(NOT TARGET hmmsim_trace_replay)
  set(_replay_dir ${PROJECT_SOURCE_DIR}/tests/conformance)
  add_library(hmmsim_trace_replay STATIC ${_replay_dir}/trace_replay.cpp ${_replay_dir}/replay_audit.cpp)
  target_link_libraries(hmmsim_trace_replay PUBLIC hmmsim::devices)
  target_include_directories(hmmsim_trace_replay PUBLIC ${PROJECT_SOURCE_DIR})
  hmmsim_warnings(hmmsim_trace_replay)
  if(HMMSIM_LIBFUZZER)
    # The audit is the fuzzer's oracle, not code to explore: no coverage instrumentation (the
    # sanitizers stay on).
    set_source_files_properties(${_replay_dir}/replay_audit.cpp PROPERTIES COMPILE_OPTIONS
                                                                           -fno-sanitize=fuzzer-no-link)
  endif()
endif()
