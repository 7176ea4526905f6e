# JSON translation of the HTTP API (pure code: answers to statuses, codes, Location).
lb_unit_test(api_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/api/api_test.c LIBS lbapi)
