# tests of client/ (libvecscan-client and the vecscan CLI; see tests/CMakeLists.txt for
# vs_add_test). test_client_rpc starts a real vecscand on loopback (a port picked by the kernel).
if(NOT TARGET vecscan_cli)
  return() # client/ is not part of this build
endif()
vs_add_test(test_client_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_client_cli.c LIBS vecscan_cli)
if(TARGET vecscand)
  vs_add_test(test_client_rpc SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_client_rpc.c LIBS vecscan_client Threads::Threads m)
  set_tests_properties(test_client_rpc PROPERTIES TIMEOUT 120 LABELS integration
                       ENVIRONMENT "VECSCAND=$<TARGET_FILE:vecscand>")
endif()
