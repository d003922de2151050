# tests of index/cuda that need no GPU (see tests/CMakeLists.txt for vs_add_test); include after
# unit/index.cmake.
#
# test_cuda_host: the host-side plans and arithmetic, plain C.
vs_add_test(test_cuda_host
  SOURCES unit/test_cuda_host.c ${PROJECT_SOURCE_DIR}/index/cuda/cuda_plan.c
  LIBS vs_common m)
target_include_directories(test_cuda_host PRIVATE ${PROJECT_SOURCE_DIR}/index
                                                  ${PROJECT_SOURCE_DIR}/index/cuda)

# The CUDA backend on the CPU emulator (index/cuda/emu/cuda_emu.h): its kernels compiled as C++
# with every thread a fiber, its host code linked against an emulated runtime and cuBLAS. It needs
# the CUDA toolkit's headers (not a GPU, not nvcc) and a C++ compiler.
#   test_cuda_emu              tests/gpu/test_gpu_backend.c, short (VS_GPU_TEST_QUICK)
#   test_cuda_emu_full         the whole of it (minutes): runs when VECSCAN_EMU_FULL=1, else skips
#   test_cuda_emu_conformance  the conformance suite on the emulated CUDA backend
if(NOT CUDAToolkit_FOUND)
  find_package(CUDAToolkit QUIET)
endif()
include(CheckLanguage)
check_language(CXX)
if(CUDAToolkit_FOUND AND CMAKE_CXX_COMPILER)
  enable_language(CXX)
  set(_cu ${PROJECT_SOURCE_DIR}/index/cuda)
  add_library(vs_index_cuda_emu STATIC
    ${_cu}/cuda_backend.c ${_cu}/cuda_plan.c
    ${_cu}/emu/emu_runtime.cpp ${_cu}/emu/emu_scan.cpp ${_cu}/emu/emu_scan_f32.cpp
    ${_cu}/emu/emu_scan_f16.cpp ${_cu}/emu/emu_scan_i8.cpp ${_cu}/emu/emu_scan_b1.cpp
    ${_cu}/emu/emu_scan_mma.cpp
    ${_cu}/emu/emu_select.cpp ${_cu}/emu/emu_util.cpp)
  # the directory's flags are the C compiler's: this target takes its own (and, running fibers,
  # no sanitizer instrumentation)
  set_property(TARGET vs_index_cuda_emu PROPERTY COMPILE_OPTIONS "")
  target_compile_options(vs_index_cuda_emu PRIVATE -Wall -Wextra
    $<$<COMPILE_LANGUAGE:C>:-Wshadow -Wstrict-prototypes -Werror>
    $<$<COMPILE_LANGUAGE:CXX>:-Wno-unknown-pragmas -Werror>)
  set_target_properties(vs_index_cuda_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_compile_definitions(vs_index_cuda_emu PUBLIC VS_HAVE_CUDA PRIVATE VS_CUDA_EMU)
  target_include_directories(vs_index_cuda_emu PUBLIC ${_cu} ${PROJECT_SOURCE_DIR}/index
                                                      ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(vs_index_cuda_emu PUBLIC vs_common m)

  # libvecscan over the emulated backend, from vecscan_index's own sources, for the CPU backend
  # comparison and the conformance suite
  if(TARGET vecscan_index AND TARGET vs_conformance)
    get_target_property(_src vecscan_index SOURCES)
    get_target_property(_dir vecscan_index SOURCE_DIR)
    get_target_property(_defs vecscan_index COMPILE_DEFINITIONS)
    get_target_property(_libs vecscan_index LINK_LIBRARIES)
    set(_abs "")
    foreach(_s IN LISTS _src)
      if(IS_ABSOLUTE "${_s}")
        list(APPEND _abs "${_s}")
      else()
        list(APPEND _abs "${_dir}/${_s}")
      endif()
    endforeach()
    if(_libs)
      list(REMOVE_ITEM _libs vs_index_cuda)
    else()
      set(_libs "")
    endif()
    add_library(vecscan_index_emu STATIC ${_abs})
    target_include_directories(vecscan_index_emu PUBLIC ${_dir})
    if(_defs)
      target_compile_definitions(vecscan_index_emu PRIVATE ${_defs})
    endif()
    target_link_libraries(vecscan_index_emu PUBLIC ${_libs} vs_index_cuda_emu)

    add_library(vs_conformance_emu STATIC ${PROJECT_SOURCE_DIR}/tests/conformance/conformance.c)
    target_include_directories(vs_conformance_emu PUBLIC ${PROJECT_SOURCE_DIR}/tests/conformance)
    target_link_libraries(vs_conformance_emu PUBLIC vecscan_index_emu vs_testutil)
    vs_add_test(test_cuda_emu_conformance SOURCES gpu/test_gpu_conformance.c
                LIBS vs_conformance_emu)
    set_tests_properties(test_cuda_emu_conformance PROPERTIES LABELS emu ENVIRONMENT
                         "VS_GPU_TEST_QUICK=1;VECSCAN_DATA_DIR=${VS_DEFAULT_DATA_DIR}")
    set(_emu_libs vecscan_index_emu vs_index_cuda_emu)
    set(_emu_cpu VS_GPU_TEST_CPU)
  else()
    set(_emu_libs vs_index_cuda_emu)
    set(_emu_cpu "")
  endif()

  vs_add_test(test_cuda_emu SOURCES gpu/test_gpu_backend.c LIBS ${_emu_libs} m)
  target_compile_definitions(test_cuda_emu PRIVATE ${_emu_cpu})
  set_tests_properties(test_cuda_emu PROPERTIES LABELS emu ENVIRONMENT "VS_GPU_TEST_QUICK=1")
  vs_add_test(test_cuda_emu_full SOURCES gpu/test_gpu_backend.c LIBS ${_emu_libs} m)
  target_compile_definitions(test_cuda_emu_full PRIVATE ${_emu_cpu} VS_GPU_TEST_FULL_GATE)
  set_tests_properties(test_cuda_emu_full PROPERTIES LABELS emu TIMEOUT 1800)
endif()
