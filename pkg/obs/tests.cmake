# Histograms, the Prometheus exposition and the HTTP server.
lb_unit_test(obs_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/obs/obs_test.c LIBS lbobs)
