// SPDX-License-Identifier: MIT
// A filter evaluated on its own, as written: the meaning the trie and the code must preserve.
#include "canonical_p.h"

namespace exojit::dpf {

bool matches(const Filter& f, const uint8_t* pkt, size_t len) {
  // RECORDED depends on the engine's state: false here.
  return detail::accepts(f.atoms(), pkt, len, nullptr, [](const Atom&, uint64_t) { return false; });
}

}  // namespace exojit::dpf
