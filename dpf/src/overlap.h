// Ownership: could two canonical filters accept the same packet? (a safe approximation)
#pragma once

#include "canonical.h"

namespace exojit::dpf::detail {

// False only when some packet bytes must hold values in one filter that the other excludes.
bool may_overlap(const Canonical& a, const Canonical& b);

}  // namespace exojit::dpf::detail
