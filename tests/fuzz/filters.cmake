# fuzz target of filters/ (libFuzzer, clang; tests/CMakeLists.txt defines vs_add_fuzz and builds
# every library with coverage instrumentation in a -DVECSCAN_FUZZ=ON tree). ctest runs it for
# $VECSCAN_FUZZ_SECONDS under the label "fuzz"; any crash, leak or input slower than 10 s fails.
if(TARGET vs_filters AND COMMAND vs_add_fuzz)
  vs_add_fuzz(fuzz_filter_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_filter_parse.c LIBS vs_filters)
endif()
