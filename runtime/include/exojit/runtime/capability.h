// SPDX-License-Identifier: MIT
// Hierarchically-named capabilities ([EXOTOOLS02], 2.1.1): 8 bytes, a header byte and 7 name bytes.
//
//   header bit 0-2  name length (0..7 bytes)
//          bit 3    valid
//          bit 4    pointer (extended ACL; carried, not interpreted by the runtime)
//          bit 5    grant: modify ACL / duplicate the capability (hand refinements to others)
//          bit 6    alloc: allocate resources under this name
//          bit 7    write
//
// An owned capability is adequate for a guard when it is valid, its name is a prefix of the
// guard's name (the shorter one *dominates*), and it carries the permissions the call needs.
// The empty name (length 0) dominates everything: it is the root a machine hands its first
// environment. Children receive refinements: a longer name and no more permissions.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

namespace exojit::runtime {

enum Perm : uint8_t {
  kPermGrant = 1u << 5,
  kPermAlloc = 1u << 6,
  kPermWrite = 1u << 7,
  kPermAll = kPermGrant | kPermAlloc | kPermWrite,
};

struct Capability {
  static constexpr uint8_t kLengthMask = 0x07;
  static constexpr uint8_t kValid = 1u << 3;
  static constexpr uint8_t kPointer = 1u << 4;
  static constexpr uint8_t kPermMask = kPermAll;
  static constexpr unsigned kMaxName = 7;

  uint8_t header = 0;
  uint8_t name[kMaxName] = {};

  // A valid capability named by `bytes` (at most 7; more is an exojit::Error) with `perms`.
  static Capability make(std::initializer_list<uint8_t> bytes, uint8_t perms);
  static Capability make(const uint8_t* bytes, unsigned length, uint8_t perms);
  static Capability root() { return make({}, kPermAll); }

  unsigned length() const { return header & kLengthMask; }
  bool valid() const { return header & kValid; }
  uint8_t perms() const { return header & kPermMask; }
  bool has(uint8_t p) const { return (perms() & p) == p; }

  // True when this (owned) capability is adequate for `guard` with permissions `need`.
  bool dominates(const Capability& guard, uint8_t need = 0) const {
    if (!valid() || !guard.valid() || !has(need) || length() > guard.length()) return false;
    // At most 7 bytes, checked on every kernel call: a loop the compiler unrolls, not a call
    // to memcmp (a twelfth of a specialized 64-byte send went there).
    for (unsigned i = 0; i < length(); ++i)
      if (name[i] != guard.name[i]) return false;
    return true;
  }

  // Whether `child` is a legal refinement of this capability: this one may grant, dominates the
  // child's name, and the child asks for no permission this one lacks.
  bool may_refine_to(const Capability& child) const {
    return valid() && has(kPermGrant) && child.valid() && dominates(child) &&
           (child.perms() & ~perms()) == 0;
  }

  uint64_t bits() const {
    uint64_t v;
    std::memcpy(&v, this, 8);
    return v;
  }
  friend bool operator==(const Capability& a, const Capability& b) { return a.bits() == b.bits(); }

  std::string str() const;  // e.g. "cap<02.7f w a g>" (name bytes in hex, then permissions)
};
static_assert(sizeof(Capability) == 8, "capabilities are 8 bytes");

}  // namespace exojit::runtime
