# tests of index/ (see tests/CMakeLists.txt for vs_add_test)
