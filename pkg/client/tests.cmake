# liblbclient tests: the pick rule (cmocka), and the library against real etcd
# and real daemons (client_test.py drives lbclient-probe), and the example built
# against the installed library through pkg-config.
lb_unit_test(lbclient_pick_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/client/pick_test.c
             LIBS lbclient_static)

add_executable(lbclient-probe ${CMAKE_SOURCE_DIR}/pkg/client/tools/probe.c
               ${CMAKE_SOURCE_DIR}/pkg/client/tools/probe_io.c)
target_include_directories(lbclient-probe PRIVATE ${CMAKE_SOURCE_DIR}/pkg/client/tools)
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

# the example program, compiled against the installed library via pkg-config
if(LBCP_SANITIZE)
  set(_lbc_example_flags "-fsanitize=address,undefined")
else()
  set(_lbc_example_flags "")
endif()
add_test(NAME lbclient_installed_example
         COMMAND ${CMAKE_SOURCE_DIR}/pkg/client/example/install_test.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_SOURCE_DIR} "${_lbc_example_flags}")
set_tests_properties(lbclient_installed_example PROPERTIES TIMEOUT 120)
