# Style: every C file as the root .clang-format makes it.
add_test(NAME style_clang_format COMMAND ${CMAKE_SOURCE_DIR}/tests/style/check-format.sh)
# Layering: pkg/ never depends on cmd/ or on test tools.
add_test(NAME style_layering COMMAND ${CMAKE_SOURCE_DIR}/tests/style/check-layering.sh)
