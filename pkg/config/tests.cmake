lb_unit_test(cfg_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/config/cfg_test.c LIBS lbconfig)
