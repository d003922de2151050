# tests of server/rpc (see tests/CMakeLists.txt for vs_add_test) and the daemon's integration
# tests: a real vecscand on loopback driven by Python grpcio (tests/integration/rpc_*.py; each
# prints SKIP when grpcio, protoc or a dataset is missing).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBEVENT_PTHREADS REQUIRED IMPORTED_TARGET libevent_pthreads)
vs_add_test(test_rpc SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rpc.c LIBS vs_rpc PkgConfig::LIBEVENT_PTHREADS)
set_tests_properties(test_rpc PROPERTIES TIMEOUT 60)

if(TARGET vecscand)
  # Debian's grpcio and protobuf live under /usr/bin/python3, not a virtualenv's python3.
  find_program(VS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT VS_PYTHON3)
    find_program(VS_PYTHON3 python3)
  endif()
  find_program(VS_PROTOC protoc)
  file(GLOB vs_rpc_py ${CMAKE_CURRENT_LIST_DIR}/../integration/rpc_*.py)
  foreach(py ${vs_rpc_py})
    get_filename_component(name ${py} NAME_WE)
    if(name STREQUAL "rpc_common")
      continue()
    endif()
    add_test(NAME ${name} COMMAND ${VS_PYTHON3} ${py})
    set(env "VECSCAND=$<TARGET_FILE:vecscand>" "PYTHONDONTWRITEBYTECODE=1")
    if(VS_PROTOC)
      list(APPEND env "PROTOC=${VS_PROTOC}")
    endif()
    if(VS_DEFAULT_DATA_DIR)
      list(APPEND env "VECSCAN_DATA_DIR=${VS_DEFAULT_DATA_DIR}")
    endif()
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 ENVIRONMENT "${env}"
                         LABELS integration)
  endforeach()
endif()
