# Integration tests of the real lb-agent (with lb-echo as its app) against a
# throwaway etcd each; the binaries are found through LBCP_BIN. Three binaries
# so ctest runs them side by side: core RPCs, life and death, warm pools.
foreach(_t agent_test agent_life_test agent_pool_test)
  lb_unit_test(${_t} ETCD
    SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-agent/${_t}.c ${CMAKE_SOURCE_DIR}/cmd/lb-agent/fixture_test.c
            ${CMAKE_SOURCE_DIR}/cmd/lb-agent/harness_test.c
    LIBS lbwire lbetcd lbobs Threads::Threads)
  target_include_directories(${_t} PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-agent)
  add_dependencies(${_t} lb-agent lb-echo)
  set_tests_properties(${_t} PROPERTIES ENVIRONMENT "LBCP_BIN=${CMAKE_BINARY_DIR}/bin")
endforeach()

# Which sockets listen on a port (listeners.c, sock_diag) against the kernel.
lb_unit_test(agent_listeners_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-agent/listeners_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-agent/listeners.c
  LIBS lbwire lbconfig lbcommon)
target_include_directories(agent_listeners_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-agent)
