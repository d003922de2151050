# libFuzzer target for formats/: fuzz_formats feeds arbitrary bytes to every dataset reader and the
# TSV reader (see fuzz_formats.c). Built with -DVECSCAN_FUZZ=ON -DCMAKE_C_COMPILER=clang, where
# tests/CMakeLists.txt defines vs_add_fuzz and instruments vs_formats for coverage.
if(CMAKE_C_COMPILER_ID STREQUAL "Clang" AND COMMAND vs_add_fuzz)
  find_package(ZLIB REQUIRED)
  vs_add_fuzz(fuzz_formats SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_formats.c
              LIBS vs_formats ZLIB::ZLIB)
endif()
