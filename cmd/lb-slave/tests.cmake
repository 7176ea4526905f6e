# The slave's shedding decision (shed.c) as pure code: peers, visited, sticky, staleness.
lb_unit_test(slave_shed_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-slave/shed_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-slave/shed.c
  LIBS lbwire lbobs lbcommon)
target_include_directories(slave_shed_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-slave)
