# tests of filters/ (see tests/CMakeLists.txt for vs_add_test)
vs_add_test(test_attr_store SOURCES unit/test_attr_store.c LIBS vs_filters)
vs_add_test(test_filter_parser SOURCES unit/test_filter_parser.c LIBS vs_filters)
vs_add_test(test_filter_eval SOURCES unit/test_filter_eval.c LIBS vs_filters)
