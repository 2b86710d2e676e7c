# What a plugin author needs from an installed walcast: the ABI header and
# walcast.pc (`pkg-config --cflags walcast`, `--variable=plugindir`).  The
# plugins themselves install from plugins/CMakeLists.txt.

install(FILES ${PROJECT_SOURCE_DIR}/lib/include/walcast/plugin.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/walcast)

# walcast.pc is configured when installing, not when configuring, so that
# it names the prefix really installed to: `cmake --install --prefix DIR`
# (packaging, tests/plugin-oot) then gets a file that points into DIR.
# The first block carries configure-time values into the install script;
# the second runs there, where CMAKE_INSTALL_PREFIX is the final prefix.
install(CODE "
set(WALCAST_PC_IN \"${CMAKE_CURRENT_LIST_DIR}/walcast.pc.in\")
set(WALCAST_PC_OUT \"${PROJECT_BINARY_DIR}/walcast.pc\")
set(WALCAST_PC_LIBDIR_REL \"${CMAKE_INSTALL_LIBDIR}\")
set(WALCAST_PC_INCLUDEDIR_REL \"${CMAKE_INSTALL_INCLUDEDIR}\")
set(PROJECT_VERSION \"${PROJECT_VERSION}\")
")
install(CODE [[
set(WALCAST_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
# GNUInstallDirs directories are relative to the prefix unless the user
# gave absolute ones
if(IS_ABSOLUTE "${WALCAST_PC_LIBDIR_REL}")
  set(WALCAST_PC_LIBDIR "${WALCAST_PC_LIBDIR_REL}")
  set(pc_dest "${WALCAST_PC_LIBDIR_REL}/pkgconfig")
else()
  set(WALCAST_PC_LIBDIR "\${prefix}/${WALCAST_PC_LIBDIR_REL}")
  set(pc_dest "${CMAKE_INSTALL_PREFIX}/${WALCAST_PC_LIBDIR_REL}/pkgconfig")
endif()
if(IS_ABSOLUTE "${WALCAST_PC_INCLUDEDIR_REL}")
  set(WALCAST_PC_INCLUDEDIR "${WALCAST_PC_INCLUDEDIR_REL}")
else()
  set(WALCAST_PC_INCLUDEDIR "\${prefix}/${WALCAST_PC_INCLUDEDIR_REL}")
endif()
configure_file("${WALCAST_PC_IN}" "${WALCAST_PC_OUT}" @ONLY)
# file(INSTALL) honours DESTDIR and the install manifest, like install()
file(INSTALL DESTINATION "${pc_dest}" TYPE FILE FILES "${WALCAST_PC_OUT}")
]])
