lb_unit_test(reg_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/registry/reg_test.c LIBS lbregistry)
lb_unit_test(reg_compact_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/registry/reg_compact_test.c LIBS lbregistry)
