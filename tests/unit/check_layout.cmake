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

# A sink's keys are its kind's (lib/sinks/KIND/kind.c, core/settings.h):
# lib/config reads none of them and includes no sink's headers but the
# registry's.  A key name the configuration also has of its own (prefix,
# schemas, ops...) may appear in its own tables; any other sink key, or a
# Kafka property, named in lib/config is a key that has come back.
file(GLOB kinds ${SRC}/lib/sinks/*/kind.c)
set(sink_keys bootstrap.servers metadata.broker.list)
foreach(f ${kinds})
  file(STRINGS ${f} rows REGEX "WC_KEY\\(WC_KEY_[A-Z0-9_]+, \"[^\"]+\"")
  foreach(row ${rows})
    string(REGEX MATCH "WC_KEY\\(WC_KEY_[A-Z0-9_]+, \"([^\"]+)\"" m "${row}")
    list(APPEND sink_keys ${CMAKE_MATCH_1})
  endforeach()
endforeach()
list(REMOVE_DUPLICATES sink_keys)
list(LENGTH sink_keys nkeys)
if(nkeys LESS 8)
  message(FATAL_ERROR "found only ${nkeys} sink keys in lib/sinks/*/kind.c: "
                      "has the WC_KEY( table format changed?")
endif()
file(GLOB config_sources ${SRC}/lib/config/*.c ${SRC}/lib/config/*.h)
foreach(f ${config_sources})
  file(READ ${f} text)
  if(text MATCHES "#[ \t]*include[ \t]+\"sinks/(file|kafka|plugin)/")
    message(FATAL_ERROR "${f} includes a sink's header: a sink's keys and "
                        "types are its own (lib/sinks/KIND/kind.c)")
  endif()
  set(own "")
  string(REGEX MATCHALL "WC_KEY\\(WC_KEY_[A-Z0-9_]+, \"[^\"]+\"" rows "${text}")
  foreach(row ${rows})
    string(REGEX MATCH "\"([^\"]+)\"" m "${row}")
    list(APPEND own ${CMAKE_MATCH_1})
  endforeach()
  foreach(k ${sink_keys})
    list(FIND own "${k}" mine)
    if(k STREQUAL "name" OR NOT mine EQUAL -1)
      continue()
    endif()
    string(FIND "${text}" "\"${k}\"" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${f} names the sink key \"${k}\": move what "
                          "reads it to the sink's kind.c")
    endif()
  endforeach()
endforeach()
