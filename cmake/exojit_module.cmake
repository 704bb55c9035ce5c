# SPDX-License-Identifier: MIT
# exojit_add_module(<name> [INCLUDE_DIR <dir>] SOURCES <file>...)
#
# One module = one static library exojit_<name> (alias exojit::<name>, exported as <name> in the
# installed package), public headers under <dir> (default: include), our warnings privately.
# The caller adds its own dependencies with target_link_libraries(exojit_<name> PUBLIC ...).
function(exojit_add_module name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "INCLUDE_DIR" "SOURCES")
  if(NOT arg_INCLUDE_DIR)
    set(arg_INCLUDE_DIR include)
  endif()
  set(target exojit_${name})
  add_library(${target} STATIC ${arg_SOURCES})
  add_library(exojit::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME ${target}
                        POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/${arg_INCLUDE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:exojit_warnings>)
  install(TARGETS ${target} EXPORT exojitTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${arg_INCLUDE_DIR}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
