# Integration test of the real lb-agent (with lb-echo as its app) against a
# throwaway etcd; the binaries are found through LBCP_BIN.
lb_unit_test(agent_test ETCD
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-agent/agent_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-agent/harness_test.c
  LIBS lbwire lbetcd lbobs Threads::Threads)
target_include_directories(agent_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-agent)
add_dependencies(agent_test lb-agent lb-echo)
set_tests_properties(agent_test PROPERTIES ENVIRONMENT "LBCP_BIN=${CMAKE_BINARY_DIR}/bin")
