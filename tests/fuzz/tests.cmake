# libFuzzer targets (see tests/fuzz/README.md).
#
# In a fuzz build (CC=clang, -DLBCP_FUZZ=ON; tests/fuzz/run.sh makes one) this
# defines the targets and `lb-fuzzers` that builds them all. In the normal
# build it registers `fuzz_smoke`, which makes that build under
# <build>/fuzz-build and runs every target for a short bounded time, when clang
# and libFuzzer are installed.
set(LB_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
if(LBCP_FUZZ)
  function(lb_fuzzer name)
    cmake_parse_arguments(F "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
    add_executable(${name} ${F_SOURCES})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_include_directories(${name} PRIVATE ${LB_FUZZ_DIR} ${F_INCLUDES})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    add_dependencies(lb-fuzzers ${name})
  endfunction()
  add_custom_target(lb-fuzzers)
  lb_fuzzer(fuzz_wire SOURCES ${LB_FUZZ_DIR}/fuzz_wire.c LIBS lbwire)
  lb_fuzzer(fuzz_etcd SOURCES ${LB_FUZZ_DIR}/fuzz_etcd.c LIBS lbetcd)
  # the agent's loader is every cmd/lb-agent/config*.c (it is split by concern)
  file(GLOB _lb_agent_cfg CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/cmd/lb-agent/config*.c)
  lb_fuzzer(fuzz_config
    SOURCES ${LB_FUZZ_DIR}/fuzz_config.c ${LB_FUZZ_DIR}/fuzz_config_master.c
            ${LB_FUZZ_DIR}/fuzz_config_slave.c ${_lb_agent_cfg}
    INCLUDES ${CMAKE_SOURCE_DIR}/cmd/lb-master ${CMAKE_SOURCE_DIR}/cmd/lb-slave
             ${CMAKE_SOURCE_DIR}/cmd/lb-agent
    LIBS lbconfig lbselect lbregistry lbwire lbetcd lbobs lbauth)
  lb_fuzzer(fuzz_registry SOURCES ${LB_FUZZ_DIR}/fuzz_registry.c LIBS lbregistry lbselect)
  # the query comes from the input: httpd_query/httpd_header are wrapped at link time
  lb_fuzzer(fuzz_api SOURCES ${LB_FUZZ_DIR}/fuzz_api.c LIBS lbapi lbwire)
  target_link_options(fuzz_api PRIVATE -Wl,--wrap=httpd_query -Wl,--wrap=httpd_header)
  lb_fuzzer(fuzz_http SOURCES ${LB_FUZZ_DIR}/fuzz_http.c LIBS lbhttpd lbobs)
  lb_fuzzer(fuzz_token SOURCES ${LB_FUZZ_DIR}/fuzz_token.c LIBS lbauth)
else()
  find_program(LB_CLANG clang)
  file(GLOB _lb_fuzz_rt /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a)
  if(LB_CLANG AND _lb_fuzz_rt)
    add_test(NAME fuzz_smoke
             COMMAND ${LB_FUZZ_DIR}/run.sh --seconds 30 --build ${CMAKE_BINARY_DIR}/fuzz-build)
    set_tests_properties(fuzz_smoke PROPERTIES TIMEOUT 600)
  else()
    message(STATUS "clang or libFuzzer (libclang-rt-dev) missing: fuzz_smoke not registered")
  endif()
endif()
