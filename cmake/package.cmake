# Packaging: systemd units, man pages, example configs, and CPack .deb
# packages, one per component:
#   lbcp             lb-master, lb-slave, lb-agent, lb-echo, units, configs, man pages
#   lbctl            lbctl, its man page and bash completion
#   liblbclient0     liblbclient.so.0
#   liblbclient-dev  headers, liblbclient.a, the .so link, lbclient.pc, the example
# Build them with: cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release
#   -DCMAKE_INSTALL_PREFIX=/usr -DLBCP_BUILD_TESTS=OFF && cmake --build build-pkg
#   && (cd build-pkg && cpack -G DEB)      (tests/deploy/package_test.sh does this)
include(GNUInstallDirs)

# --- systemd units, the lbcp account, example configs --------------------------------
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/lb-master.service
              ${CMAKE_SOURCE_DIR}/deploy/systemd/lb-slave.service
              ${CMAKE_SOURCE_DIR}/deploy/systemd/lb-agent.service
        DESTINATION lib/systemd/system COMPONENT daemons)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/lbcp.sysusers
        DESTINATION lib/sysusers.d RENAME lbcp.conf COMPONENT daemons)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/local/master.yaml
              ${CMAKE_SOURCE_DIR}/deploy/local/slave-a.yaml
              ${CMAKE_SOURCE_DIR}/deploy/agent.example.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT daemons)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT daemons)

# --- man pages from --help and --version (help2man) ----------------------------------
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(_man_dir ${CMAKE_BINARY_DIR}/man)
  file(MAKE_DIRECTORY ${_man_dir})
  set(_pages)
  foreach(_p "lb-master;8;daemons;the lbcp master: selects servers and slaves for clients"
             "lb-slave;8;daemons;the lbcp slave: the clients' front door"
             "lb-agent;8;daemons;the lbcp agent: launches application processes on a server"
             "lb-echo;1;daemons;the lbcp demo application (a line echo server)"
             "lbctl;1;lbctl;control and inspect an lbcp cluster")
    list(GET _p 0 _bin)
    list(GET _p 1 _sec)
    list(GET _p 2 _comp)
    list(GET _p 3 _what)
    set(_page ${_man_dir}/${_bin}.${_sec})
    add_custom_command(OUTPUT ${_page}.gz
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=${_sec} --name=${_what}
              --output=${_page} $<TARGET_FILE:${_bin}>
      COMMAND gzip -9nf ${_page}
      DEPENDS ${_bin} VERBATIM COMMENT "help2man ${_bin}")
    list(APPEND _pages ${_page}.gz)
    install(FILES ${_page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sec} COMPONENT ${_comp})
  endforeach()
  add_custom_target(manpages ALL DEPENDS ${_pages})
else()
  message(STATUS "help2man not found: no man pages (apt-get install help2man)")
endif()

# --- CPack: .deb per component --------------------------------------------------------
set(CPACK_PACKAGE_NAME lbcp)
set(CPACK_PACKAGE_VENDOR "lbcp")
set(CPACK_PACKAGE_CONTACT "lbcp maintainers <lbcp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "lbcp load-balancing control plane")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemons lbctl liblbclient0 liblbclient-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # Depends: from dpkg-shlibdeps (dpkg-dev)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_DAEMONS_PACKAGE_NAME lbcp)
set(CPACK_DEBIAN_DAEMONS_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_DAEMONS_PACKAGE_RECOMMENDS "lbctl, etcd-server")
set(CPACK_DEBIAN_DAEMONS_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/lbcp/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/lbcp/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/lbcp/postrm)
set(CPACK_DEBIAN_DAEMONS_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_DAEMONS_DESCRIPTION
    "lbcp daemons: lb-master, lb-slave, lb-agent and lb-echo, with systemd units")
set(CPACK_DEBIAN_LBCTL_PACKAGE_NAME lbctl)
set(CPACK_COMPONENT_LBCTL_DESCRIPTION "lbctl: control and inspect an lbcp cluster")
set(CPACK_DEBIAN_LIBLBCLIENT0_PACKAGE_NAME liblbclient0)
set(CPACK_DEBIAN_LIBLBCLIENT0_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIBLBCLIENT0_PACKAGE_GENERATE_SHLIBS ON) # shlibs + ldconfig trigger
set(CPACK_COMPONENT_LIBLBCLIENT0_DESCRIPTION "lbcp client library (runtime)")
set(CPACK_DEBIAN_LIBLBCLIENT-DEV_PACKAGE_NAME liblbclient-dev)
set(CPACK_DEBIAN_LIBLBCLIENT-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_LIBLBCLIENT-DEV_PACKAGE_DEPENDS "libnng-dev, libprotobuf-c-dev")
set(CPACK_COMPONENT_LIBLBCLIENT-DEV_DEPENDS liblbclient0)
set(CPACK_COMPONENT_LIBLBCLIENT-DEV_DESCRIPTION
    "lbcp client library: headers, static library, pkg-config file, example")
include(CPack)
