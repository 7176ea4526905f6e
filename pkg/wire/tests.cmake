lb_unit_test(wire_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/wire/wire_test.c LIBS lbwire)
