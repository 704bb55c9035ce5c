// SPDX-License-Identifier: MIT
// Declarations (declaration.h): range queries and the cache key.
#include "exojit/specializer/declaration.h"

#include <cstring>

#include "exojit/error.h"

namespace exojit::specializer {

bool Declaration::is_invariant(uintptr_t address, size_t size) const {
  for (const Range& r : invariants)
    if (address >= r.address && size <= r.size && address - r.address <= r.size - size) return true;
  return false;
}

std::string Declaration::key() const {
  std::string k = function;
  k.push_back('\0');
  auto put = [&k](const void* p, size_t n) { k.append(static_cast<const char*>(p), n); };
  for (const Arg& a : args) {
    k.push_back(a.is_static ? 'S' : 'D');
    if (a.is_static) put(&a.value, sizeof a.value);
  }
  for (const Range& r : invariants) {
    put(&r.address, sizeof r.address);
    put(&r.size, sizeof r.size);
    put(reinterpret_cast<const void*>(r.address), r.size);  // the contents now
  }
  return k;
}

void Declaration::check() const {
  if (function.empty()) fail("specialization declaration: no function named");
  for (const Range& r : invariants)
    if (r.address == 0 || r.size == 0 || r.address + r.size < r.address)
      fail(
          "specialization declaration of @{}: invariant range '{}' ({} bytes at 0x{:x}) is empty "
          "or wraps",
          function, r.what, r.size, r.address);
}

}  // namespace exojit::specializer
