// A filter evaluated on its own, as written: the meaning the trie and the code must preserve.
#include "canonical.h"

namespace exojit::dpf {

bool matches(const Filter& f, const uint8_t* pkt, size_t len) {
  const uint8_t* base = pkt;
  size_t avail = len;
  for (const Atom& a : f.atoms()) {
    uint64_t v;
    if (!a.expr || !detail::evaluate(a.expr, base, avail, &v)) return false;
    switch (a.kind) {
      case Atom::Kind::Shift:
        if (v > avail) return false;
        base += v;
        avail -= v;
        break;
      case Atom::Kind::Compare:
        if (!detail::compare_holds(a.cmp, v, a.value)) return false;
        break;
      case Atom::Kind::Record:  // an action: true once its fields are inside the packet
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace exojit::dpf
