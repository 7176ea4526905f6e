# Deployment artefacts: the systemd units (systemd-analyze verify; PID 1 need
# not be systemd).
add_test(NAME deploy_systemd_units
         COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy/systemd_test.sh ${CMAKE_SOURCE_DIR}
                 ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(deploy_systemd_units PROPERTIES TIMEOUT 60)
# The Docker deployment without a Docker engine (compose_test.sh runs it for real).
add_test(NAME deploy_compose_static
         COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy/compose_static_test.sh ${CMAKE_SOURCE_DIR}
                 ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(deploy_compose_static PROPERTIES TIMEOUT 60)
# The .deb packages: a Release build of their own, cpack, dpkg -i on this
# machine (root), every binary's --version, man pages, units, the lbcp
# account, the example built via pkg-config against liblbclient-dev (shared
# and static), then purged. ~40 s on an idle 2-core machine.
add_test(NAME deploy_packages
         COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy/package_test.sh ${CMAKE_SOURCE_DIR}
                 ${CMAKE_BINARY_DIR}/pkg-build)
set_tests_properties(deploy_packages PROPERTIES TIMEOUT 400 RUN_SERIAL ON SKIP_RETURN_CODE 77)
