# devices: GPU platform start with 16 GiB of VRAM (issue 12: < 100 ms; untouched memory costs nothing).
hmmsim_bench(bench_gpu_start SOURCES devices/bench_gpu_start.cpp LIBS hmmsim::devices)
