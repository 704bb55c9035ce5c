// A filter evaluated on its own, as written: the meaning the trie and the code must preserve.
#include "canonical.h"

namespace exojit::dpf {

bool matches(const Filter& f, const uint8_t* pkt, size_t len) {
  const uint8_t* base = pkt;
  size_t avail = len;
  for (const Atom& a : f.atoms()) {
    if (a.kind == Atom::Kind::Record) continue;
    uint64_t v;
    if (!detail::evaluate(a.expr, base, avail, &v)) return false;
    switch (a.kind) {
      case Atom::Kind::Shift:
        if (v > avail) return false;
        base += v;
        avail -= v;
        break;
      case Atom::Kind::Compare: {
        uint64_t k = a.value;
        bool ok = a.cmp == Cmp::Eq   ? v == k
                  : a.cmp == Cmp::Ne ? v != k
                  : a.cmp == Cmp::Lt ? v < k
                  : a.cmp == Cmp::Le ? v <= k
                  : a.cmp == Cmp::Gt ? v > k
                                     : v >= k;
        if (!ok) return false;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace exojit::dpf
