# Deployment artefacts: the systemd units (systemd-analyze verify; PID 1 need
# not be systemd).
add_test(NAME deploy_systemd_units
         COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy/systemd_test.sh ${CMAKE_SOURCE_DIR}
                 ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(deploy_systemd_units PROPERTIES TIMEOUT 60)
