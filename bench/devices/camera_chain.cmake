# devices: camera -> colour engine -> memory at 1080p60, pixel-exact and timing-only (issue 12).
hmmsim_bench(bench_camera_chain SOURCES devices/bench_camera_chain.cpp LIBS hmmsim::devices)
