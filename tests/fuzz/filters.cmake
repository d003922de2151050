# fuzz targets of filters/: libFuzzer with ASan and UBSan, so clang only.
#
#   CC=clang cmake -S . -B build-fuzz -DVECSCAN_CUDA=OFF
#   cmake --build build-fuzz --target fuzz_filter_parse
#   build-fuzz/tests/fuzz_filter_parse -max_total_time=60 -max_len=4096 CORPUS_DIR
#
# The filters sources are compiled into the target itself so that libFuzzer's coverage reaches
# them. ctest runs it for VECSCAN_FUZZ_SECONDS (label "fuzz"; `ctest -LE fuzz` leaves it out),
# keeping its corpus in the build folder between runs; any crash, leak or input slower than 10 s
# fails the test and leaves the input in that folder.
if(TARGET vs_filters AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(VECSCAN_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under ctest")
  get_target_property(VS_FILTERS_DIR vs_filters SOURCE_DIR)
  get_target_property(VS_FILTERS_SOURCES vs_filters SOURCES)
  list(FILTER VS_FILTERS_SOURCES INCLUDE REGEX "\\.c$")
  list(TRANSFORM VS_FILTERS_SOURCES PREPEND ${VS_FILTERS_DIR}/)
  add_executable(fuzz_filter_parse ${CMAKE_CURRENT_LIST_DIR}/fuzz_filter_parse.c ${VS_FILTERS_SOURCES})
  target_include_directories(fuzz_filter_parse PRIVATE ${VS_FILTERS_DIR})
  target_include_directories(fuzz_filter_parse SYSTEM PRIVATE ${ROARING_INCLUDE_DIR})
  target_compile_options(fuzz_filter_parse PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_filter_parse PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_filter_parse PRIVATE vs_common ${ROARING_LIBRARY})
  set(VS_FUZZ_FILTER_DIR ${CMAKE_CURRENT_BINARY_DIR}/fuzz_filter_parse.corpus)
  file(MAKE_DIRECTORY ${VS_FUZZ_FILTER_DIR})
  add_test(NAME fuzz_filter_parse
           COMMAND fuzz_filter_parse -max_total_time=${VECSCAN_FUZZ_SECONDS} -max_len=4096
                   -timeout=10 -artifact_prefix=${VS_FUZZ_FILTER_DIR}/ ${VS_FUZZ_FILTER_DIR})
  math(EXPR VS_FUZZ_TIMEOUT "${VECSCAN_FUZZ_SECONDS} + 120")
  set_tests_properties(fuzz_filter_parse PROPERTIES LABELS fuzz TIMEOUT ${VS_FUZZ_TIMEOUT})
endif()
