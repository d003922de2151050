# vecscand: the daemon (server/rpc, server/admin, server/main.c). Included from the top level after
# proto/ (vs_proto) and server/engine; tests come with tests/unit/rpc.cmake.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent_core libevent_extra libevent_pthreads)

set(VS_SERVER_DIR ${CMAKE_CURRENT_LIST_DIR})

# The transport, the admin port and the services that need no engine.
add_library(vs_rpc STATIC
  ${VS_SERVER_DIR}/rpc/server.c
  ${VS_SERVER_DIR}/rpc/grpc_wire.c
  ${VS_SERVER_DIR}/rpc/dlog.c
  ${VS_SERVER_DIR}/rpc/svc_health.c
  ${VS_SERVER_DIR}/rpc/svc_test.c
  ${VS_SERVER_DIR}/admin/metrics.c
  ${VS_SERVER_DIR}/admin/admin.c)
target_include_directories(vs_rpc PUBLIC ${VS_SERVER_DIR}/rpc ${VS_SERVER_DIR}/admin)
target_link_libraries(vs_rpc PUBLIC vs_proto vs_common PkgConfig::NGHTTP2 PkgConfig::LIBEVENT
                      Threads::Threads m)

add_executable(vecscand ${VS_SERVER_DIR}/main.c)
target_link_libraries(vecscand PRIVATE vs_rpc)
install(TARGETS vecscand RUNTIME DESTINATION bin)

# The public API on the engine, when the engine is part of the build.
if(TARGET vs_engine)
  add_library(vs_api STATIC ${VS_SERVER_DIR}/rpc/svc_vecscan.c)
  target_link_libraries(vs_api PUBLIC vs_rpc vs_engine)
  target_compile_definitions(vecscand PRIVATE VS_HAVE_ENGINE=1)
  target_link_libraries(vecscand PRIVATE vs_api)
endif()
