// SPDX-License-Identifier: MIT
// The GDB JIT interface (private header): gdb puts a breakpoint in __jit_debug_register_code and,
// each time it is called, reads the in-memory object file that __jit_debug_descriptor points
// at ("JIT Compilation Interface" in the GDB manual). A GdbRegistration hands one object to gdb
// and takes it back when it dies; registrations from many threads are serialized.
#pragma once

#include <cstdint>
#include <vector>

namespace exojit::vcode::detail {

class GdbRegistration {
 public:
  explicit GdbRegistration(std::vector<uint8_t> object);
  ~GdbRegistration();
  GdbRegistration(const GdbRegistration&) = delete;
  GdbRegistration& operator=(const GdbRegistration&) = delete;

  const std::vector<uint8_t>& object() const { return object_; }

 private:
  std::vector<uint8_t> object_;
  void* entry_;  // the jit_code_entry in gdb's list
};

}  // namespace exojit::vcode::detail
