# The selection policy's tests: pure, no I/O.
lb_unit_test(sel_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/select/sel_test.c LIBS lbselect)
lb_unit_test(sel_stat_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/select/sel_stat_test.c LIBS lbselect m)
lb_unit_test(sel_pair_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/select/sel_pair_test.c LIBS lbselect)
