# tests of formats/ (see tests/CMakeLists.txt for vs_add_test)
