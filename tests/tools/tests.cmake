# Test tools (not tests themselves).
add_executable(lb-rawreq ${CMAKE_SOURCE_DIR}/tests/tools/rawreq.c)
target_link_libraries(lb-rawreq PRIVATE lbwire)
add_executable(lb-sendreport ${CMAKE_SOURCE_DIR}/tests/tools/sendreport.c)
target_link_libraries(lb-sendreport PRIVATE lbwire lbauth lbcommon)
