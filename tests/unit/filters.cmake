# tests of filters/ (see tests/CMakeLists.txt for vs_add_test)
