// SPDX-License-Identifier: MIT
#include "exojit/runtime/capability.h"

#include <fmt/format.h>

#include "exojit/error.h"

namespace exojit::runtime {

Capability Capability::make(const uint8_t* bytes, unsigned length, uint8_t perms) {
  if (length > kMaxName) fail("capability name of {} bytes (at most {})", length, kMaxName);
  if (perms & ~kPermMask) fail("capability permissions 0x{:02x} use non-permission bits", perms);
  Capability c;
  c.header = uint8_t(length | kValid | perms);
  if (length) std::memcpy(c.name, bytes, length);
  return c;
}

Capability Capability::make(std::initializer_list<uint8_t> bytes, uint8_t perms) {
  return make(bytes.begin(), unsigned(bytes.size()), perms);
}

std::string Capability::str() const {
  if (!valid()) return "cap<invalid>";
  std::string s = "cap<";
  for (unsigned i = 0; i < length(); ++i) s += fmt::format("{}{:02x}", i ? "." : "", name[i]);
  if (length() == 0) s += "root";
  if (has(kPermWrite)) s += " w";
  if (has(kPermAlloc)) s += " a";
  if (has(kPermGrant)) s += " g";
  return s + ">";
}

}  // namespace exojit::runtime
