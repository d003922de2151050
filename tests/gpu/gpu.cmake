# tests/gpu: the CUDA backend on a real GPU (every test prints SKIP and exits 77 without one), and
# the GPU benchmark binary that bench/gpu.sh runs. Included by tests/CMakeLists.txt when
# VS_HAVE_CUDA; see there for vs_add_test.
if(TARGET vs_index_cuda)
  # the backend through its table of functions, against a float64 reference (and against the CPU
  # backend when libvecscan is built beside it)
  if(TARGET vecscan_index)
    vs_add_test(test_gpu_backend SOURCES gpu/test_gpu_backend.c LIBS vecscan_index vs_index_cuda m)
    target_compile_definitions(test_gpu_backend PRIVATE VS_GPU_TEST_CPU)
  else()
    vs_add_test(test_gpu_backend SOURCES gpu/test_gpu_backend.c LIBS vs_index_cuda m)
  endif()
  set_tests_properties(test_gpu_backend PROPERTIES LABELS gpu TIMEOUT 600)

  # the shared conformance suite (tests/conformance, built by unit/index.cmake) on the CUDA backend
  if(TARGET vs_conformance)
    vs_add_test(test_gpu_conformance SOURCES gpu/test_gpu_conformance.c
                LIBS vs_conformance vs_index_cuda m)
    set_tests_properties(test_gpu_conformance PROPERTIES LABELS gpu TIMEOUT 600)
  endif()

  # bench/gpu.sh's benchmark (not a test)
  add_executable(vs_gpu_bench ${PROJECT_SOURCE_DIR}/bench/gpu_bench.c)
  target_link_libraries(vs_gpu_bench PRIVATE vs_index_cuda m)
endif()
