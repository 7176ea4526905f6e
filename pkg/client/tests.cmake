# liblbclient tests: the pick rule (cmocka), and the library against real etcd
# and real daemons (client_test.py drives lbclient-probe), and the example built
# against the installed library through pkg-config.
lb_unit_test(lbclient_pick_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/client/pick_test.c
             LIBS lbclient_static)

# lbclient-probe (tests/tools/probe.c): a test tool on the public API only, kept
# beside the other test tools so pkg/ holds library code and nothing above it.
add_executable(lbclient-probe ${CMAKE_SOURCE_DIR}/tests/tools/probe.c
               ${CMAKE_SOURCE_DIR}/tests/tools/probe_io.c)
target_include_directories(lbclient-probe PRIVATE ${CMAKE_SOURCE_DIR}/tests/tools)
target_link_libraries(lbclient-probe PRIVATE lbclient Threads::Threads)

find_program(PYTHON3 python3 REQUIRED)
add_test(NAME lbclient_integration
         COMMAND ${PYTHON3} -m unittest -v client_test
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/pkg/client)
set_tests_properties(lbclient_integration PROPERTIES
  ENVIRONMENT "LBCP_BIN=${CMAKE_BINARY_DIR}/bin;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 400)
# issue 4's gaps: relay teardown (release, process death), one-time tokens,
# keepalive against a short session_ttl and reaping, lbctl list
add_test(NAME lbclient_gaps
         COMMAND ${PYTHON3} -m unittest -v client_gaps_test
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/pkg/client)
set_tests_properties(lbclient_gaps PROPERTIES
  ENVIRONMENT "LBCP_BIN=${CMAKE_BINARY_DIR}/bin;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 300)
target_link_libraries(lbclient_pick_test PRIVATE m)

# The example compiled against the installed library (shared and static, via
# pkg-config) and served by a real cluster: tests/integration/test_installed_client.py
