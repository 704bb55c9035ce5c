// SPDX-License-Identifier: MIT
// The GDB JIT interface (gdb_jit_p.h). The two symbols and the structures' layout are gdb's
// protocol (gdb/jit.h, version 1); gdb finds them by name in the executable.
#include <mutex>

#include "gdb_jit_p.h"

extern "C" {

enum jit_actions_t : uint32_t { JIT_NOACTION = 0, JIT_REGISTER_FN, JIT_UNREGISTER_FN };

struct jit_code_entry {
  jit_code_entry* next_entry;
  jit_code_entry* prev_entry;
  const char* symfile_addr;
  uint64_t symfile_size;
};

struct jit_descriptor {
  uint32_t version;
  uint32_t action_flag;  // jit_actions_t
  jit_code_entry* relevant_entry;
  jit_code_entry* first_entry;
};

// gdb's breakpoint goes here; the asm keeps the call from being optimized away.
[[gnu::noinline, gnu::used]] void __jit_debug_register_code() {
  asm volatile("" ::: "memory");
}

[[gnu::used]] jit_descriptor __jit_debug_descriptor = {1, JIT_NOACTION, nullptr, nullptr};
}

namespace exojit::vcode::detail {

namespace {

std::mutex& registry_lock() {
  static std::mutex m;
  return m;
}

}  // namespace

GdbRegistration::GdbRegistration(std::vector<uint8_t> object) : object_(std::move(object)) {
  auto* e = new jit_code_entry{nullptr, nullptr, reinterpret_cast<const char*>(object_.data()),
                               object_.size()};
  entry_ = e;
  std::lock_guard<std::mutex> g(registry_lock());
  e->next_entry = __jit_debug_descriptor.first_entry;
  if (e->next_entry) e->next_entry->prev_entry = e;
  __jit_debug_descriptor.first_entry = e;
  __jit_debug_descriptor.relevant_entry = e;
  __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
  __jit_debug_register_code();
}

GdbRegistration::~GdbRegistration() {
  auto* e = static_cast<jit_code_entry*>(entry_);
  {
    std::lock_guard<std::mutex> g(registry_lock());
    if (e->prev_entry)
      e->prev_entry->next_entry = e->next_entry;
    else
      __jit_debug_descriptor.first_entry = e->next_entry;
    if (e->next_entry) e->next_entry->prev_entry = e->prev_entry;
    __jit_debug_descriptor.relevant_entry = e;
    __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
    __jit_debug_register_code();
  }
  delete e;
}

}  // namespace exojit::vcode::detail
