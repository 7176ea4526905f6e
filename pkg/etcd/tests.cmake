lb_unit_test(etcd_test ETCD SOURCES ${CMAKE_SOURCE_DIR}/pkg/etcd/etcd_test.c LIBS lbetcd)
