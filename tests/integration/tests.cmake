# Integration tests: real etcd, real daemons, real processes (Python stdlib harness).
find_program(PYTHON3 python3 REQUIRED)
file(GLOB _itests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(_t ${_itests})
  get_filename_component(_name ${_t} NAME_WE)
  add_test(NAME integration_${_name}
           COMMAND ${PYTHON3} -m unittest -v ${_name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/integration)
  set_tests_properties(integration_${_name} PROPERTIES
    ENVIRONMENT "LBCP_BIN=${CMAKE_BINARY_DIR}/bin;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 300)
endforeach()
