# The layering check (ctest "layering: no lower layer includes an upper one").
# Run as: cmake -DROOT=<repo> -P cmake/CheckLayering.cmake (tests/layering/layering.cmake does).
#
# Reads every #include "<dir>/..." in the layers' sources and fails, naming the file, the line
# and the rule, when a layer includes one it may not depend on. The rules are those of
# docs/architecture.md ("Layers and their allowed dependencies"):
#   sim        <- everything; includes only sim
#   cpu_mmu    (models/cpu_mmu)  may include sim
#   pcie       (models/pcie)     may include sim
#   hmm        (hmm)             may include sim, cpu_mmu, pcie
#   devices    (models/devices)  may include sim, cpu_mmu, pcie, hmm
#   platform   (models/platform) may include sim, cpu_mmu, pcie, hmm, devices
#   scenarios  (scenarios)       may include every layer
# Tests and benchmarks may include anything. Pure CMake: no extra tool to install.
cmake_minimum_required(VERSION 3.25)
if(NOT DEFINED ROOT)
  message(FATAL_ERROR "check_layering: pass -DROOT=<repository root>")
endif()

set(_layers sim cpu_mmu pcie hmm devices platform scenarios)
set(_dir_sim sim)
set(_dir_cpu_mmu models/cpu_mmu)
set(_dir_pcie models/pcie)
set(_dir_hmm hmm)
set(_dir_devices models/devices)
set(_dir_platform models/platform)
set(_dir_scenarios scenarios)
set(_allowed_sim sim)
set(_allowed_cpu_mmu sim cpu_mmu)
set(_allowed_pcie sim pcie)
set(_allowed_hmm sim cpu_mmu pcie hmm)
set(_allowed_devices sim cpu_mmu pcie hmm devices)
set(_allowed_platform sim cpu_mmu pcie hmm devices platform)
set(_allowed_scenarios sim cpu_mmu pcie hmm devices platform scenarios)

# The layer an include path belongs to ("" for none of ours).
function(_layer_of path out)
  set(result "")
  foreach(l ${_layers})
    string(LENGTH "${_dir_${l}}/" n)
    string(SUBSTRING "${path}" 0 ${n} prefix)
    if(prefix STREQUAL "${_dir_${l}}/")
      set(result ${l})
    endif()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

set(_violations 0)
set(_files_checked 0)
foreach(layer ${_layers})
  file(GLOB_RECURSE _srcs "${ROOT}/${_dir_${layer}}/*.h" "${ROOT}/${_dir_${layer}}/*.cpp")
  list(SORT _srcs)
  foreach(src ${_srcs})
    math(EXPR _files_checked "${_files_checked} + 1")
    file(STRINGS "${src}" _lines)
    set(lineno 0)
    foreach(line IN LISTS _lines)
      math(EXPR lineno "${lineno} + 1")
      if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
        set(inc "${CMAKE_MATCH_1}")
        _layer_of("${inc}" target)
        if(target AND NOT target IN_LIST _allowed_${layer})
          file(RELATIVE_PATH rel "${ROOT}" "${src}")
          message(NOTICE "${rel}:${lineno}: layer ${layer} includes \"${inc}\" of layer ${target}; "
                             "${layer} may include only: ${_allowed_${layer}} (docs/architecture.md)")
          math(EXPR _violations "${_violations} + 1")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()

if(_files_checked EQUAL 0)
  message(FATAL_ERROR "check_layering: no sources found under ${ROOT}")
endif()
if(_violations GREATER 0)
  message(FATAL_ERROR "check_layering: ${_violations} include(s) break the layering")
endif()
message(STATUS "check_layering: ${_files_checked} files, layering respected")
