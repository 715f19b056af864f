# devices: the camera and the colour-correction engine (issue 12), alone and chained.
hmmsim_test(test_camera
  SOURCES unit/devices/test_camera.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_colour_engine
  SOURCES unit/devices/test_colour_engine.cpp
  LIBS hmmsim::devices)
hmmsim_test(test_camera_chain
  SOURCES unit/devices/test_camera_chain.cpp
  LIBS hmmsim::devices)
# The chain on the platform builder (types "camera" and "colour_engine", MSI to a CPU driver thread).
hmmsim_test(test_camera_chain_platform
  SOURCES unit/devices/test_camera_chain_platform.cpp
  LIBS hmmsim::platform)
