# The sequencer rule (issue 12), checked on every ctest run ("sequencer: ..." in
# tests/sequencer/sequencer.cmake). Run as: cmake -DROOT=<repo> -P cmake/CheckSequencedWaits.cmake
#
# SystemC wakes the processes due at one simulated time in the order its timed-event heap pops
# them, which depends on the whole simulation; models/cpu_mmu/sequencer.h releases them in request
# order instead. A model thread that waits or notifies with plain SystemC timing brings the
# same-time ties back, so in the library layers (sim, models, hmm, scenarios) this fails, naming
# the file, the line and the fix, on:
#   - a timed wait: wait(t), wait(t, e), wait(n, unit), wait() on static sensitivity,
#     next_trigger(...)                                       -> seqWait(d) / seqWait(d, e)
#   - wait(x) on anything the same file does not notify as an event (x.notify(...) or
#     seqNotify(x, ...)): a time, or an event the check cannot see woken in order
#   - a timed notification: e.notify(t) other than notify() or notify(SC_ZERO_TIME)
#                                                             -> seqNotify(e, d)
#   - a plain tlm_utils::tlm_quantumkeeper object (its sync() is a raw timed wait)
#                                                             -> SeqQuantumKeeper
# wait(e) on an event the file notifies is allowed: every notification in these layers is
# delta, immediate or sequenced (the rule above), and SystemC keeps the order in which those
# make processes runnable. A use that is raw on purpose carries the marker comment
# "raw-systemc: <why>" on its line or the line above; the Sequencer itself
# (models/cpu_mmu/sequencer.{h,cpp}) is exempt. Comments ("//") are not code. Pure CMake.
cmake_minimum_required(VERSION 3.25)
if(NOT DEFINED ROOT)
  message(FATAL_ERROR "check_sequenced_waits: pass -DROOT=<repository root>")
endif()

set(_dirs sim models hmm scenarios)
set(_exempt models/cpu_mmu/sequencer.h models/cpu_mmu/sequencer.cpp)
set(_why "same-time wake-ups would follow SystemC's event heap, not request order (issue 12)")
set(_mark "or, if it must stay raw, say why in a comment \"raw-systemc: <why>\" on the line or the line above")

set(_violations 0)
set(_files_checked 0)

# Reports one violation at rel:lineno.
macro(_report what fix)
  message(NOTICE "${rel}:${lineno}: ${what}: ${_why}. Fix: ${fix} (models/cpu_mmu/sequencer.h); ${_mark}")
  math(EXPR _violations "${_violations} + 1")
endmacro()

set(_srcs "")
foreach(d ${_dirs})
  file(GLOB_RECURSE _found "${ROOT}/${d}/*.h" "${ROOT}/${d}/*.cpp")
  list(APPEND _srcs ${_found})
endforeach()
list(SORT _srcs)

foreach(src ${_srcs})
  file(RELATIVE_PATH rel "${ROOT}" "${src}")
  if(rel IN_LIST _exempt)
    continue()
  endif()
  math(EXPR _files_checked "${_files_checked} + 1")
  file(READ "${src}" _text)
  # Lines as a CMake list: ';' and brackets would split or glue list elements.
  string(REPLACE ";" "<semicolon>" _text "${_text}")
  string(REPLACE "[" "<lbracket>" _text "${_text}")
  string(REPLACE "]" "<rbracket>" _text "${_text}")
  string(REGEX REPLACE "[ \t\r\n]+" " " _flat "${_text}")
  string(REPLACE "\n" ";" _lines "${_text}")
  set(lineno 0)
  set(_prev "")
  foreach(line IN LISTS _lines)
    math(EXPR lineno "${lineno} + 1")
    set(_marked FALSE)
    if(line MATCHES "raw-systemc: *[^ ]" OR _prev MATCHES "raw-systemc: *[^ ]")
      set(_marked TRUE)
    endif()
    set(_prev "${line}")
    string(REGEX REPLACE "//.*$" "" code "${line}")
    if(_marked OR NOT code MATCHES "wait|notify|next_trigger|tlm_quantumkeeper")
      continue()
    endif()
    # Waits: sc_core::wait(...) or an unqualified wait(...) (not x.wait(), y->wait(), Z::wait()).
    if(code MATCHES "(^|[^A-Za-z0-9_.>:]|sc_core::)wait *\\(")
      if(code MATCHES "wait *\\(([^()]*(\\([^()]*\\))?[^()]*)\\)")
        string(STRIP "${CMAKE_MATCH_1}" _arg)
        if(_arg STREQUAL "")
          _report("wait() on static sensitivity" "seqWait(d, e) on the event")
        elseif(_arg MATCHES ",")
          _report("timed wait(${_arg})" "seqWait(d) / seqWait(d, e)")
        else()
          string(REGEX REPLACE "([][+*.?^$()|{}\\\\])" "\\\\\\1" _re "${_arg}")
          if(NOT _flat MATCHES "${_re}(\\.|->)notify *\\(" AND NOT _flat MATCHES "seqNotify\\( *${_re} *,")
            _report("wait(${_arg}): a time, or an event this file never notifies"
                    "seqWait(d) for a time; wait(e) only on an event this file notifies (notify(), notify(SC_ZERO_TIME), seqNotify(e, d))")
          endif()
        endif()
      else()
        _report("a wait whose argument the check cannot read" "one wait(e) per line, or seqWait(d)")
      endif()
    endif()
    # Notifications: e.notify() and e.notify(SC_ZERO_TIME) only.
    if(code MATCHES "(\\.|->)notify *\\(([^()]*)\\)")
      string(STRIP "${CMAKE_MATCH_2}" _arg)
      if(NOT _arg STREQUAL "" AND NOT _arg MATCHES "^(sc_core::)?SC_ZERO_TIME$")
        _report("timed notify(${_arg})" "seqNotify(e, d)")
      endif()
    elseif(code MATCHES "(\\.|->)notify *\\(")
      _report("a notify whose argument the check cannot read" "notify() / notify(SC_ZERO_TIME) on one line, or seqNotify(e, d)")
    endif()
    if(code MATCHES "(^|[^A-Za-z0-9_])next_trigger *\\(")
      _report("next_trigger()" "an SC_THREAD with seqWait(d)")
    endif()
    if(code MATCHES "tlm_quantumkeeper +[A-Za-z_]")
      _report("a plain tlm_utils::tlm_quantumkeeper (its sync() is a raw timed wait)" "SeqQuantumKeeper")
    endif()
  endforeach()
endforeach()

if(_files_checked EQUAL 0)
  message(FATAL_ERROR "check_sequenced_waits: no sources found under ${ROOT}")
endif()
if(_violations GREATER 0)
  message(FATAL_ERROR "check_sequenced_waits: ${_violations} raw SystemC wait(s)/notification(s)")
endif()
message(STATUS "check_sequenced_waits: ${_files_checked} files, every timed wake-up sequenced")
