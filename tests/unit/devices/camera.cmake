# devices: the camera and the colour-correction engine (issue 12), alone and chained.
hmmsim_test(test_camera
  SOURCES unit/devices/test_camera.cpp
  LIBS hmmsim::devices)
