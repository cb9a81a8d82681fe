# The pure core (DESIGN rule 6: src/common, src/pgoutput, src/outbox, src/relay) has no I/O, no
# clock, no logging and no adapter. The build enforces it three ways:
#  1. Its sources compile with a "poison" include directory ahead of src/: every adapter header
#     (src/pg, src/kafka, src/metrics, src/config, src/app) and the C/C++ libraries the adapters
#     wrap resolve there to an #error naming the rule.
#  2. A scan of its sources for clocks, console and file I/O, the environment and sleeping fails
#     the build (cmake/check-core-purity).
#  3. tests/ links `core_tests` against the core alone, as a whole archive: any reference to
#     libpq, librdkafka, yaml-cpp, spdlog, fmt or prometheus-cpp fails the link.
set(OUTBOX_POISON_DIR ${CMAKE_BINARY_DIR}/core-poison)
file(GLOB_RECURSE OUTBOX_ADAPTER_HEADERS RELATIVE ${CMAKE_SOURCE_DIR}/src CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/src/pg/*.h ${CMAKE_SOURCE_DIR}/src/kafka/*.h ${CMAKE_SOURCE_DIR}/src/metrics/*.h
  ${CMAKE_SOURCE_DIR}/src/config/*.h ${CMAKE_SOURCE_DIR}/src/app/*.h)
foreach(header IN LISTS OUTBOX_ADAPTER_HEADERS)
  file(CONFIGURE OUTPUT ${OUTBOX_POISON_DIR}/${header} CONTENT
    "#error \"${header} is an adapter: the pure core (common, pgoutput, outbox, relay) must not include it\"\n")
endforeach()
foreach(header IN ITEMS libpq-fe.h librdkafka/rdkafka.h yaml-cpp/yaml.h spdlog/spdlog.h fmt/core.h
                        fmt/format.h prometheus/registry.h systemd/sd-daemon.h
                        chrono thread iostream fstream)
  file(CONFIGURE OUTPUT ${OUTBOX_POISON_DIR}/${header} CONTENT
    "#error \"<${header}> is I/O, a clock or an adapter's library: the pure core must not include it\"\n")
endforeach()
target_include_directories(outbox_core BEFORE PRIVATE ${OUTBOX_POISON_DIR})

file(GLOB_RECURSE OUTBOX_CORE_FILES CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/src/common/*.h ${CMAKE_SOURCE_DIR}/src/common/*.cpp
  ${CMAKE_SOURCE_DIR}/src/pgoutput/*.h ${CMAKE_SOURCE_DIR}/src/pgoutput/*.cpp
  ${CMAKE_SOURCE_DIR}/src/outbox/*.h ${CMAKE_SOURCE_DIR}/src/outbox/*.cpp
  ${CMAKE_SOURCE_DIR}/src/relay/*.h ${CMAKE_SOURCE_DIR}/src/relay/*.cpp)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/core-purity.stamp
  COMMAND bash ${CMAKE_SOURCE_DIR}/cmake/check-core-purity ${OUTBOX_CORE_FILES}
  COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/core-purity.stamp
  DEPENDS ${OUTBOX_CORE_FILES} ${CMAKE_SOURCE_DIR}/cmake/check-core-purity
  COMMENT "Checking that the pure core has no clock, I/O or environment access")
add_custom_target(core_purity DEPENDS ${CMAKE_BINARY_DIR}/core-purity.stamp)
add_dependencies(outbox_core core_purity)
