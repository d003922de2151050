# tests of server/engine (see tests/CMakeLists.txt for vs_add_test). Every test runs a real
# RocksDB in a temporary directory ($TMPDIR or /tmp).
vs_add_test(test_engine SOURCES unit/test_engine.c LIBS vs_engine)
vs_add_test(test_engine_crash SOURCES unit/test_engine_crash.c LIBS vs_engine)
vs_add_test(test_engine_concurrency SOURCES unit/test_engine_concurrency.c LIBS vs_engine)
vs_add_test(test_engine_diskfull SOURCES unit/test_engine_diskfull.c LIBS vs_engine)
