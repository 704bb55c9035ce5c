# SPDX-License-Identifier: MIT
# Cross-compiling for AArch64 Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) and
# arm64 multiarch libraries (libasmjit-dev:arm64, libfmt-dev:arm64, libgtest-dev:arm64).
# Used by `./exo cross`; the tests run under qemu-aarch64 (qemu-user).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: the arm64 packages live in /usr/lib/aarch64-linux-gnu (CMake configs included);
# headers are shared in /usr/include.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# gtest_discover_tests and ctest run the test binaries through the emulator.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
