# SPDX-License-Identifier: MIT
# cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -P embed.cmake: writes OUTPUT, a C++ source that
# defines exojit::specializer::detail::libos_bitcode (the bytes of INPUT) and its size.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR bytes "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
       "\\1\n" hex "${hex}")
file(WRITE ${OUTPUT}.tmp
  "// Generated from ${INPUT} by specializer/cmake/embed.cmake: the libOS as LLVM bitcode.\n"
  "#include <cstddef>\n"
  "namespace exojit::specializer::detail {\n"
  "alignas(16) extern const unsigned char libos_bitcode[] = {\n${hex}};\n"
  "extern const size_t libos_bitcode_size = ${bytes};\n"
  "}  // namespace exojit::specializer::detail\n")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
