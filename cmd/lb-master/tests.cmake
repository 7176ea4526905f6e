# The dashboard's event ring (events.c) as pure code over the registry.
lb_unit_test(master_events_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-master/events_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-master/events.c
  LIBS lbregistry lbcommon PkgConfig::CJSON)
target_include_directories(master_events_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-master)

# Hot-spare reservations (spares.c) as pure code: claim, expiry, bounds.
lb_unit_test(master_spares_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-master/spares_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-master/spares.c
  LIBS Threads::Threads)
target_include_directories(master_spares_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-master ${CMAKE_SOURCE_DIR}/include)

# The leader's stock (stock.c) as pure code: one launch per server, N per
# app, take once and only in the current leader term, bounds, indexes kept
# true as entries move.
lb_unit_test(master_stock_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-master/stock_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-master/stock.c
  LIBS lbcommon Threads::Threads)
target_include_directories(master_stock_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-master ${CMAKE_SOURCE_DIR}/include)

# The role check (rpc_role.c): the listener a message came in on (real nng
# sockets) and what slaves and operators may ask.
lb_unit_test(master_rpc_role_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-master/rpc_role_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-master/rpc_role.c
  LIBS lbwire lbconfig lbregistry lbselect lbetcd lbobs lbcommon)
target_include_directories(master_rpc_role_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-master)

# The writer's batches (batch.c): the last op per key wins in a txn.
lb_unit_test(master_batch_test
  SOURCES ${CMAKE_SOURCE_DIR}/cmd/lb-master/batch_test.c ${CMAKE_SOURCE_DIR}/cmd/lb-master/batch.c
  LIBS lbcommon)
target_include_directories(master_batch_test PRIVATE ${CMAKE_SOURCE_DIR}/cmd/lb-master)
