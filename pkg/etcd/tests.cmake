# pkg/etcd against a real etcd (tests/with-etcd.sh starts one per test binary).
set(_etcd_t ${CMAKE_SOURCE_DIR}/pkg/etcd/test)
lb_unit_test(etcd_kv_test ETCD SOURCES ${_etcd_t}/kv_test.c ${_etcd_t}/testlib.c LIBS lbetcd)
lb_unit_test(etcd_watch_test ETCD SOURCES ${_etcd_t}/watch_test.c ${_etcd_t}/testlib.c LIBS lbetcd)
target_include_directories(etcd_kv_test PRIVATE ${_etcd_t})
target_include_directories(etcd_watch_test PRIVATE ${_etcd_t})
lb_unit_test(etcd_json_test SOURCES ${_etcd_t}/json_test.c LIBS lbetcd)
lb_unit_test(etcd_auth_test ETCD SOURCES ${_etcd_t}/auth_test.c ${_etcd_t}/testlib.c LIBS lbetcd)
target_include_directories(etcd_auth_test PRIVATE ${_etcd_t})
