# libFuzzer target for server/rpc: fuzz_grpc feeds arbitrary bytes after the HTTP/2 preface to a
# real vs_rpc server through a bufferevent pair, and through the gRPC message reader (see
# fuzz_grpc.c). Built with -DVECSCAN_FUZZ=ON -DCMAKE_C_COMPILER=clang (tests/CMakeLists.txt).
if(CMAKE_C_COMPILER_ID STREQUAL "Clang" AND COMMAND vs_add_fuzz AND TARGET vs_rpc)
  vs_add_fuzz(fuzz_grpc SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc.c LIBS vs_rpc)
endif()
