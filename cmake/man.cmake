# Man pages walcastd(8), walcast(1) and walcast.yaml(5), generated with
# cmake/md2man.py from their Markdown sources in docs/, so that the pages
# and the docs cannot drift apart.  Built by `all`, installed to
# ${CMAKE_INSTALL_MANDIR}/manN.  Included from cmake/install.cmake.

option(WALCAST_MAN "build and install the man pages (needs Python 3)" ON)
if(NOT WALCAST_MAN)
  return()
endif()
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(wc_man_pages walcastd.8 walcast.1 walcast.yaml.5)
set(wc_man_outputs "")
foreach(page ${wc_man_pages})
  string(REGEX MATCH "[0-9]$" section "${page}")
  set(src ${PROJECT_SOURCE_DIR}/docs/${page}.md)
  set(out ${PROJECT_BINARY_DIR}/man/${page})
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/md2man.py
            --version ${PROJECT_VERSION} ${src} ${out}
    DEPENDS ${src} ${CMAKE_CURRENT_LIST_DIR}/md2man.py
    COMMENT "Generating man page ${page}"
    VERBATIM)
  list(APPEND wc_man_outputs ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${wc_man_outputs})
