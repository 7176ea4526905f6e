# Test tools (not tests themselves).
add_executable(lb-rawreq ${CMAKE_SOURCE_DIR}/tests/tools/rawreq.c)
target_link_libraries(lb-rawreq PRIVATE lbwire)
add_executable(lb-sendreport ${CMAKE_SOURCE_DIR}/tests/tools/sendreport.c)
target_link_libraries(lb-sendreport PRIVATE lbwire lbauth lbcommon)
# nng 1.5.2's TLS config swap on running endpoints (README "Security model").
add_executable(lb-tls-swap-probe ${CMAKE_SOURCE_DIR}/tests/tools/tls_swap_probe.c)
target_link_libraries(lb-tls-swap-probe PRIVATE ${NNG_LIB} Threads::Threads)
add_test(NAME nng_tls_swap_probe
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/tools/tls_swap_probe.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(nng_tls_swap_probe PROPERTIES TIMEOUT 60)
