# SPDX-License-Identifier: MIT
# exojit_tool_tests(DIR <dir> [PREFIX <prefix>] [ENVIRONMENT <NAME=VALUE>...])
#
# One ctest per data file under <dir> (*.test, *.vc, *.txt): the file's RUN/CHECK lines say what
# to run and what to expect, and tests/tools/tool_test.py checks it (the format is described
# there). The test is named after the file's path under <dir>, '/' read as '.': vdump/run/fib.test
# is `vdump.run.fib`. A file that uses %example runs once per example listing (tools/examples/
# *.vc), as `<name>.<example>`. A word of a command that is one of the programs below runs the
# program built here; a test that needs one that is not built (vdump without LLVM) is left out.
set(EXOJIT_TOOL_TEST_PROGRAMS vdump dpf-match exo-sim exo-spec cksum_demo debug_target
    CACHE INTERNAL "programs a tool test may run by name")

function(exojit_tool_tests)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "DIR;PREFIX" "ENVIRONMENT")
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(runner ${PROJECT_SOURCE_DIR}/tests/tools/tool_test.py)
  set(examples_dir ${PROJECT_SOURCE_DIR}/tools/examples)
  file(GLOB examples CONFIGURE_DEPENDS ${examples_dir}/*.vc)
  # A cross build runs its programs through the emulator (qemu-aarch64 -L ...), as ctest would:
  # one --emulator=WORD per word.
  set(emulator "")
  foreach(word IN LISTS CMAKE_CROSSCOMPILING_EMULATOR)
    list(APPEND emulator --emulator=${word})
  endforeach()
  set(tools "")
  foreach(program IN LISTS EXOJIT_TOOL_TEST_PROGRAMS)
    if(TARGET ${program})
      list(APPEND tools --tool ${program}=$<TARGET_FILE:${program}>)
    endif()
  endforeach()
  file(GLOB_RECURSE files CONFIGURE_DEPENDS ${arg_DIR}/*.test ${arg_DIR}/*.vc ${arg_DIR}/*.txt)
  list(FILTER files EXCLUDE REGEX "/CMakeLists\\.txt$")
  foreach(file IN LISTS files)
    # The programs its RUN lines name must be built.
    file(STRINGS ${file} runs REGEX "RUN:")
    set(missing "")
    foreach(program IN LISTS EXOJIT_TOOL_TEST_PROGRAMS)
      if("${runs}" MATCHES "[ :]${program}( |;|$)" AND NOT TARGET ${program})
        set(missing ${program})
      endif()
    endforeach()
    if(missing)
      continue()
    endif()
    file(RELATIVE_PATH name ${arg_DIR} ${file})
    string(REGEX REPLACE "\\.[^./]+$" "" name "${name}")
    string(REPLACE "/" "." name "${arg_PREFIX}${name}")
    file(STRINGS ${file} per_example REGEX "%example([^s]|$)")
    set(variants "-")
    if(per_example)
      set(variants ${examples})
    endif()
    foreach(example IN LISTS variants)
      set(test ${name})
      set(example_arg "")
      if(NOT example STREQUAL "-")
        get_filename_component(stem ${example} NAME_WE)
        set(test ${name}.${stem})
        set(example_arg --example ${example})
      endif()
      add_test(NAME ${test}
               COMMAND ${Python3_EXECUTABLE} -B ${runner} ${file} ${tools} --examples
                       ${examples_dir} ${example_arg} ${emulator}
                       --scratch ${CMAKE_CURRENT_BINARY_DIR}/scratch/${test})
      set_tests_properties(${test} PROPERTIES SKIP_RETURN_CODE 77)
      if(arg_ENVIRONMENT)
        set_tests_properties(${test} PROPERTIES ENVIRONMENT "${arg_ENVIRONMENT}")
      endif()
    endforeach()
  endforeach()
endfunction()
