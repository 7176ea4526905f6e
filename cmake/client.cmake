# liblbclient: shared and static library from the same sources, the public
# header, a pkg-config file, and install rules for everything (cmake --install).
include(GNUInstallDirs)

file(GLOB _lbc_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/pkg/client/*.c)
list(FILTER _lbc_src EXCLUDE REGEX "_(test|bench)\\.c$")

# The pkg/ modules are static with -fPIC, so both variants absorb them; the
# shared one exports only the public lb_ API (version script).
add_library(lbclient_obj OBJECT ${_lbc_src})
target_include_directories(lbclient_obj PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/pkg)
target_link_libraries(lbclient_obj PUBLIC lbwire lbobs lbcommon lbproto)
set_target_properties(lbclient_obj PROPERTIES POSITION_INDEPENDENT_CODE ON)

# Both variants carry every object of the pkg/ modules the client uses, so the
# installed liblbclient.a links alone (with its Libs.private) like the .so.
set(_lbc_objs $<TARGET_OBJECTS:lbclient_obj> $<TARGET_OBJECTS:lbwire> $<TARGET_OBJECTS:lbobs>
              $<TARGET_OBJECTS:lbcommon> $<TARGET_OBJECTS:lbproto>)
add_library(lbclient SHARED ${_lbc_objs})
target_include_directories(lbclient PUBLIC ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(lbclient PRIVATE lbwire lbobs lbcommon lbproto ${NNG_LIB} Threads::Threads)
target_link_options(lbclient PRIVATE
  -Wl,--version-script=${CMAKE_SOURCE_DIR}/pkg/client/lbclient.map)
set_target_properties(lbclient PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${CMAKE_SOURCE_DIR}/pkg/client/lbclient.map)

add_library(lbclient_static STATIC ${_lbc_objs})
target_include_directories(lbclient_static PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/pkg)
target_link_libraries(lbclient_static PUBLIC lbwire lbobs lbcommon lbproto)
set_target_properties(lbclient_static PROPERTIES OUTPUT_NAME lbclient)

file(RELATIVE_PATH LBC_PC_UP /x/${CMAKE_INSTALL_LIBDIR}/pkgconfig /x)
configure_file(${CMAKE_SOURCE_DIR}/pkg/client/lbclient.pc.in ${CMAKE_BINARY_DIR}/lbclient.pc @ONLY)

# components = packages (cmake/package.cmake): the runtime library in
# liblbclient0, the linker name, archive, headers and lbclient.pc in -dev
install(TARGETS lbclient
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT liblbclient0
                NAMELINK_COMPONENT liblbclient-dev)
install(TARGETS lbclient_static
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT liblbclient-dev)
install(FILES ${CMAKE_SOURCE_DIR}/include/lb/client.h ${CMAKE_SOURCE_DIR}/include/lb/err.h
              ${CMAKE_SOURCE_DIR}/include/lb/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lb COMPONENT liblbclient-dev)
install(FILES ${CMAKE_BINARY_DIR}/lbclient.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT liblbclient-dev)
install(FILES ${CMAKE_SOURCE_DIR}/pkg/client/example/example.c
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT liblbclient-dev)

# the example program (pkg/client/example), also used by deploy/local/demo.sh
add_executable(lbclient-example ${CMAKE_SOURCE_DIR}/pkg/client/example/example.c)
target_link_libraries(lbclient-example PRIVATE lbclient)
install(TARGETS lbclient-example RUNTIME DESTINATION bin COMPONENT example)
