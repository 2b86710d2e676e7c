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
set(WALCAST_STAGING_BASE \"${PROJECT_BINARY_DIR}/install-staging\")
set(WALCAST_PC_LIBDIR_REL \"${CMAKE_INSTALL_LIBDIR}\")
set(WALCAST_PC_INCLUDEDIR_REL \"${CMAKE_INSTALL_INCLUDEDIR}\")
set(PROJECT_VERSION \"${PROJECT_VERSION}\")
")
install(CODE [[
# Installs into different prefixes may run at the same time (ctest -j runs
# several tests that install): each destination configures its files in a
# staging directory of its own, never in one shared file.  The blocks
# below that configure files use WALCAST_STAGING too.
string(MD5 WALCAST_STAGING_KEY "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(WALCAST_STAGING "${WALCAST_STAGING_BASE}/${WALCAST_STAGING_KEY}")
set(WALCAST_PC_OUT "${WALCAST_STAGING}/walcast.pc")
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

# --------------------------------------------------------------------------
# Running it: the systemd unit, its system user, the example configuration
# and the documentation.

# Where walcastd.service goes.  systemd.pc names the distribution's unit
# directory (Debian: /lib/systemd/system); it is asked with its prefixes
# replaced by a marker, so that the answer becomes a path relative to the
# install prefix: `cmake --install --prefix DIR` then stays inside DIR, and
# /usr/local lands in /usr/local/lib/systemd/system, which systemd reads too.
set(wc_unitdir_default "lib/systemd/system")
set(wc_notify_reload_default ON)
if(PKG_CONFIG_FOUND)
  set(wc_marker "/WALCAST-PREFIX")
  execute_process(
    COMMAND ${PKG_CONFIG_EXECUTABLE}
            --define-variable=prefix=${wc_marker}
            --define-variable=rootprefix=${wc_marker}
            --define-variable=root_prefix=${wc_marker}
            --variable=systemdsystemunitdir systemd
    OUTPUT_VARIABLE wc_unitdir RESULT_VARIABLE wc_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(wc_rc EQUAL 0 AND wc_unitdir MATCHES "^${wc_marker}/(.+)$")
    set(wc_unitdir_default "${CMAKE_MATCH_1}")
  elseif(wc_rc EQUAL 0 AND IS_ABSOLUTE "${wc_unitdir}")
    set(wc_unitdir_default "${wc_unitdir}")  # a distribution's fixed path
  endif()
  # Type=notify-reload exists from systemd 253 on; an older systemd
  # ignores the line (with a warning) and would run walcastd as
  # Type=simple, without readiness or reload.
  execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --modversion systemd
                  OUTPUT_VARIABLE wc_systemd_version RESULT_VARIABLE wc_rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(wc_rc EQUAL 0 AND wc_systemd_version MATCHES "^([0-9]+)")
    if(CMAKE_MATCH_1 LESS 253)
      set(wc_notify_reload_default OFF)
    endif()
  endif()
endif()
set(WALCAST_SYSTEMD_UNITDIR "${wc_unitdir_default}" CACHE STRING
    "directory for walcastd.service; a relative path is taken from the install prefix")
set(WALCAST_SYSUSERSDIR "lib/sysusers.d" CACHE STRING
    "directory for the sysusers.d file creating the walcast user; relative to the install prefix unless absolute")
option(WALCAST_SYSTEMD_NOTIFY_RELOAD
       "walcastd.service with Type=notify-reload (systemd 253 and later); OFF: Type=notify and ExecReload="
       ${wc_notify_reload_default})
if(NOT WALCAST_SYSTEMD_NOTIFY_RELOAD)
  message(STATUS "walcastd.service: Type=notify with ExecReload= "
                 "(WALCAST_SYSTEMD_NOTIFY_RELOAD is off; systemd here: "
                 "${wc_systemd_version})")
endif()

# The unit names the sbindir of the prefix really installed to, so it is
# configured when installing, like walcast.pc above.
install(CODE "
set(WALCAST_UNIT_IN \"${PROJECT_SOURCE_DIR}/config/walcastd.service.in\")
set(WALCAST_UNIT_SBINDIR_REL \"${CMAKE_INSTALL_SBINDIR}\")
set(WALCAST_UNIT_DIR_REL \"${WALCAST_SYSTEMD_UNITDIR}\")
set(WALCAST_UNIT_NOTIFY_RELOAD ${WALCAST_SYSTEMD_NOTIFY_RELOAD})
")
install(CODE [[
function(walcast_install_dir rel ret)
  if(IS_ABSOLUTE "${rel}")
    set(${ret} "${rel}" PARENT_SCOPE)
  else()
    set(${ret} "${CMAKE_INSTALL_PREFIX}/${rel}" PARENT_SCOPE)
  endif()
endfunction()
walcast_install_dir("${WALCAST_UNIT_SBINDIR_REL}" WALCAST_UNIT_SBINDIR)
walcast_install_dir("${WALCAST_UNIT_DIR_REL}" unit_dest)
if(WALCAST_UNIT_NOTIFY_RELOAD)
  set(WALCAST_UNIT_TYPE "Type=notify-reload")
else()
  set(WALCAST_UNIT_TYPE "Type=notify\nExecReload=/bin/kill -HUP $MAINPID")
endif()
configure_file("${WALCAST_UNIT_IN}" "${WALCAST_STAGING}/walcastd.service"
               @ONLY)
file(INSTALL DESTINATION "${unit_dest}" TYPE FILE
     FILES "${WALCAST_STAGING}/walcastd.service")
]])
# the user and group the unit runs as, for systemd-sysusers
install(FILES ${PROJECT_SOURCE_DIR}/config/walcast.sysusers
        DESTINATION ${WALCAST_SYSUSERSDIR} RENAME walcast.conf)

# The example configuration is documentation: installing it as
# /etc/walcast/walcast.yaml would overwrite an operator's file on every
# upgrade, which install() cannot avoid.  README: copy it there once.
install(FILES ${PROJECT_SOURCE_DIR}/config/walcast.yaml
              ${PROJECT_SOURCE_DIR}/config/postgresql.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The documentation: README.md, LICENSE and every page of docs/ but the man
# pages' sources (those install as man pages, cmake/man.cmake) go into
# DOCDIR, the bench reports the pages cite into DOCDIR/bench.  The pages
# link to each other as they lie in the source tree (docs/x.md,
# ../config/walcast.yaml, ../lib/include/walcast/plugin.h), which is not
# where they are installed: each link to a file installed here is
# rewritten, when installing, to where that file is installed, so that the
# installed pages read where they are (tests/integration/test_install.py
# follows every link).  Each entry: source path, then destination
# directory relative to DOCDIR ("."), or "@include" for INCLUDEDIR.
file(GLOB wc_docs RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/docs/*.md)
list(FILTER wc_docs EXCLUDE REGEX "\\.[1-8]\\.md$")
set(wc_doc_map README.md . LICENSE . bench/README.md bench bench/kafka.md bench
    config/walcast.yaml examples config/postgresql.conf examples
    lib/include/walcast/plugin.h @include/walcast)
foreach(doc ${wc_docs})
  list(APPEND wc_doc_map ${doc} .)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(CODE "
set(WALCAST_DOC_SRC \"${PROJECT_SOURCE_DIR}\")
set(WALCAST_DOC_MAP \"${wc_doc_map}\")
set(WALCAST_DOC_DIR_REL \"${CMAKE_INSTALL_DOCDIR}\")
set(WALCAST_DOC_INCLUDEDIR_REL \"${CMAKE_INSTALL_INCLUDEDIR}\")
")
install(CODE [[
# walcast_install_dir() is the unit's, above: every install(CODE) runs in
# one script
walcast_install_dir("${WALCAST_DOC_DIR_REL}" docdir)
walcast_install_dir("${WALCAST_DOC_INCLUDEDIR_REL}" incdir)
# where each mapped file lands: wc_dest_<source path> (a variable name
# may hold any character)
set(pages "")
list(LENGTH WALCAST_DOC_MAP n)
math(EXPR last "${n} - 1")
foreach(i RANGE 0 ${last} 2)
  math(EXPR j "${i} + 1")
  list(GET WALCAST_DOC_MAP ${i} src)
  list(GET WALCAST_DOC_MAP ${j} dir)
  get_filename_component(name "${src}" NAME)
  if(dir MATCHES "^@include(.*)$")
    set(dest "${incdir}${CMAKE_MATCH_1}/${name}")
  elseif(dir STREQUAL ".")
    set(dest "${docdir}/${name}")
  else()
    set(dest "${docdir}/${dir}/${name}")
  endif()
  set("wc_dest_${src}" "${dest}")
  if(src MATCHES "\\.md$")
    list(APPEND pages "${src}")
  endif()
endforeach()
foreach(src ${pages})
  file(READ "${WALCAST_DOC_SRC}/${src}" text)
  get_filename_component(src_dir "${WALCAST_DOC_SRC}/${src}" DIRECTORY)
  get_filename_component(dest_dir "${wc_dest_${src}}" DIRECTORY)
  # "](" marks a link's target; a "]" in a list element would stop
  # CMake from splitting the list, so the matches are taken without it
  string(REPLACE "](" "@wc_link@(" scan "${text}")
  string(REGEX MATCHALL "@wc_link@\\([^()#: ]+[)#]" links "${scan}")
  if(links)
    list(REMOVE_DUPLICATES links)
  endif()
  foreach(link ${links})
    string(REGEX REPLACE "^@wc_link@\\((.*)[)#]$" "\\1" target "${link}")
    get_filename_component(abs "${src_dir}/${target}" ABSOLUTE)
    file(RELATIVE_PATH linked "${WALCAST_DOC_SRC}" "${abs}")
    if(DEFINED "wc_dest_${linked}")
      file(RELATIVE_PATH to "${dest_dir}" "${wc_dest_${linked}}")
      string(REPLACE "](${target})" "](${to})" text "${text}")
      string(REPLACE "](${target}#" "](${to}#" text "${text}")
    endif()
  endforeach()
  set(out "${WALCAST_STAGING}/doc/${src}")
  file(WRITE "${out}" "${text}")
  get_filename_component(dest_dir_install "${wc_dest_${src}}" DIRECTORY)
  file(INSTALL DESTINATION "${dest_dir_install}" TYPE FILE FILES "${out}")
endforeach()
]])

include(${CMAKE_CURRENT_LIST_DIR}/man.cmake)
