# Benchmarks: built with the project, never registered with ctest (they
# measure, they do not pass or fail). Binaries land in build/bin/.
# Run them from a Release build without sanitizers:
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench
#   build-bench/bin/lb-bench-select && build-bench/bin/lb-bench-balance -o build-bench
add_executable(lb-bench-select ${CMAKE_SOURCE_DIR}/tests/bench/bench_select.c)
target_link_libraries(lb-bench-select PRIVATE lbselect)

add_executable(lb-bench-balance ${CMAKE_SOURCE_DIR}/tests/bench/bench_balance.c)
target_link_libraries(lb-bench-balance PRIVATE lbselect m)

# The request path against a running cluster (tests/bench/request.py starts one).
add_executable(lb-bench-request ${CMAKE_SOURCE_DIR}/tests/bench/bench_request.c)
target_link_libraries(lb-bench-request PRIVATE lbwire lbcommon Threads::Threads)

# The load generator (tests/bench/loadgen/lg.h): fake servers, reports, clients.
file(GLOB _lg_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/bench/loadgen/*.c)
add_executable(lb-loadgen ${_lg_src})
target_link_libraries(lb-loadgen PRIVATE lbwire lbetcd lbauth lbcommon m Threads::Threads)

# Sticky request latency, HTTP/JSON API vs nng front door (tests/bench/api.py starts a cluster).
add_executable(lb-bench-api ${CMAKE_SOURCE_DIR}/tests/bench/bench_api.c)
target_link_libraries(lb-bench-api PRIVATE lbwire lbcommon PkgConfig::CURL)

# P4: first byte of a first-time client, warm pool vs started on connect
# (tests/bench/firstbyte.py starts a cluster).
add_executable(lb-bench-firstbyte ${CMAKE_SOURCE_DIR}/tests/bench/bench_firstbyte.c)
target_link_libraries(lb-bench-firstbyte PRIVATE lbwire lbcommon)

# P3 and P2 of issue 10: request path latency and master throughput, each over
# an nng round-trip baseline from the same run (tests/bench/path.py starts a cluster).
add_executable(lb-bench-path ${CMAKE_SOURCE_DIR}/tests/bench/bench_path.c)
target_link_libraries(lb-bench-path PRIVATE lbwire lbcommon Threads::Threads)
# the cost of checking one client token (parse + Ed25519 verify)
add_executable(lb-bench-token ${CMAKE_SOURCE_DIR}/tests/bench/bench_token.c)
target_link_libraries(lb-bench-token PRIVATE lbauth)
# what per-agent report identity costs a master: one signed ServerLoad verified
add_executable(lb-bench-report-sig ${CMAKE_SOURCE_DIR}/tests/bench/bench_report_sig.c)
target_link_libraries(lb-bench-report-sig PRIVATE lbauth)
# P9's view alone: heap per server and per session of a loaded registry
add_executable(lb-bench-view ${CMAKE_SOURCE_DIR}/tests/bench/bench_view.c)
target_link_libraries(lb-bench-view PRIVATE lbregistry)
