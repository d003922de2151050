# tests of index/ (see tests/CMakeLists.txt for vs_add_test)
add_library(vs_conformance STATIC ${PROJECT_SOURCE_DIR}/tests/conformance/conformance.c)
target_include_directories(vs_conformance PUBLIC ${PROJECT_SOURCE_DIR}/tests/conformance ${PROJECT_SOURCE_DIR}/index)
target_link_libraries(vs_conformance PUBLIC vecscan_index vs_testutil)

vs_add_test(test_index SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_index.c LIBS vs_conformance)
vs_add_test(test_quant SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_quant.c LIBS vecscan_index)
vs_add_test(test_cpu_kernels SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_cpu_kernels.c LIBS vecscan_index)
if(NOT VECSCAN_CUDA_ONLY)
  vs_add_test(test_index_mnist SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_index_mnist.c
              LIBS vecscan_index vs_formats)
endif()
if(TARGET vs_filters)
  # index + filters + formats together: true pre-filtering on MNIST
  vs_add_test(test_filtered_mnist SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_filtered_mnist.c
              LIBS vecscan_index vs_filters vs_formats)
endif()
