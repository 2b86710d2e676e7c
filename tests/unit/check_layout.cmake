# Dependencies flow one way (docs/architecture.md): nothing in lib/ below
# the configuration includes "config/config.h"; the types that modules
# share (patterns, key/value lists, log levels, the filter) are in core/.
# Run as: cmake -DSRC=<source dir> -P check_layout.cmake
file(GLOB_RECURSE sources RELATIVE ${SRC} ${SRC}/lib/*.c ${SRC}/lib/*.h)
set(bad "")
foreach(f ${sources})
  if(f MATCHES "^lib/config/")
    continue()
  endif()
  file(STRINGS ${SRC}/${f} hits REGEX "#[ \t]*include[ \t]+\"config/config\\.h\"")
  if(hits)
    list(APPEND bad ${f})
  endif()
endforeach()
if(bad)
  string(REPLACE ";" ", " bad "${bad}")
  message(FATAL_ERROR "below lib/config, these include \"config/config.h\": "
                      "${bad}; take the shared types from core/ instead")
endif()
