# tests of formats/ (see tests/CMakeLists.txt for vs_add_test)
find_package(ZLIB REQUIRED)
vs_add_test(test_formats SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_formats.c
            LIBS vs_formats ZLIB::ZLIB)
vs_add_test(test_recall SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_recall.c LIBS vs_formats m)
