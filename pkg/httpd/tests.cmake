# The shared HTTP server (routes, limits, answers from another thread) and the operator endpoints.
lb_unit_test(httpd_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/httpd/httpd_test.c LIBS lbhttpd lbobs)
