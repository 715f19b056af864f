# Runs one sweep locally (--jobs 2, forked processes) and under `mpirun -n 2` and fails unless
# the two CSVs are byte-identical. As root, OpenMPI needs its allow-run-as-root variables;
# --oversubscribe lets 2 ranks start on a machine with fewer free slots.
#   cmake -DEXE=<hmmsim> -DMPIRUN=<mpirun> -DFILE=<scenario> -DWORK=<folder> [-DGRID=<--param args, |-separated>]
#         -P CompareMpiSweep.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
if(DEFINED GRID)
  string(REPLACE "|" ";" grid "${GRID}")
else()
  set(grid --param script[0].times=1,2,3 --param script[0].script[0].size=256KiB,1MiB)
endif()
execute_process(COMMAND "${EXE}" sweep "${FILE}" ${grid} --jobs 2 --out "${WORK}/local.csv" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "local sweep exited ${rc}")
endif()
set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
execute_process(COMMAND "${MPIRUN}" -n 2 --oversubscribe "${EXE}" sweep "${FILE}" ${grid} --out "${WORK}/mpi.csv"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun sweep exited ${rc}\n${out}${err}")
endif()
file(READ "${WORK}/local.csv" a)
file(READ "${WORK}/mpi.csv" b)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "the mpirun CSV differs from the local one:\n--- local\n${a}--- mpi\n${b}")
endif()
string(REGEX MATCHALL "\n" rows "${a}")
list(LENGTH rows n)
message(STATUS "mpirun -n 2 and the local sweep wrote the same ${n}-line CSV")
