# tests of index/cuda's host-side logic: plain C, so they run on every machine, GPU or not
# (see tests/CMakeLists.txt for vs_add_test)
vs_add_test(test_cuda_host
  SOURCES unit/test_cuda_host.c ${PROJECT_SOURCE_DIR}/index/cuda/cuda_plan.c
  LIBS vs_common m)
target_include_directories(test_cuda_host PRIVATE ${PROJECT_SOURCE_DIR}/index
                                                  ${PROJECT_SOURCE_DIR}/index/cuda)
