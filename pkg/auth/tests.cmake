lb_unit_test(auth_token_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/auth/token_test.c LIBS lbauth)
lb_unit_test(auth_verifier_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/auth/verifier_test.c LIBS lbauth)
lb_unit_test(auth_report_sig_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/auth/report_sig_test.c LIBS lbauth)
lb_unit_test(auth_report_mac_test SOURCES ${CMAKE_SOURCE_DIR}/pkg/auth/report_mac_test.c LIBS lbauth)
