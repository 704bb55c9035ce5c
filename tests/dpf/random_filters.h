// SPDX-License-Identifier: MIT
// Random DPF filters over the header layouts of packets.h, for differential tests and fuzzing:
// Ethernet type, IPv4 protocol, addresses, fixed or variable IP header, ports with == and
// ranges, masks, TCP flags, IPv6 next header and ports.
#pragma once

#include <random>

#include "exojit/dpf/filter.h"
#include "packets.h"

namespace exojit::dpf::testing {

inline Filter random_filter(std::mt19937_64& rng) {
  auto pick = [&](auto& pool) { return pool[rng() % std::size(pool)]; };
  auto maybe = [&](int percent) { return int(rng() % 100) < percent; };
  Filter f;
  switch (rng() % 6) {
    case 0:  // ARP
      f.eq(field(12, 16), 0x806);
      if (maybe(50)) f.eq(field(28, 32), pick(kHosts));
      if (maybe(30)) f.eq(field(38, 32), pick(kHosts));
      return f;
    case 1:  // IPv6
      f.eq(field(12, 16), 0x86dd);
      if (maybe(70)) f.eq(field(20, 8), std::array<uint8_t, 3>{6, 17, 58}[rng() % 3]);
      if (maybe(30)) f.eq(field(53, 8), 1 + rng() % 3);
      if (maybe(50)) f.shift(54).eq(field(2, 16), pick(kPorts));
      return f;
    default:
      break;
  }
  if (maybe(95)) f.eq(field(12, 16), 0x800);
  if (maybe(80)) f.eq(field(23, 8), std::array<uint8_t, 3>{6, 17, 1}[rng() % 3]);
  if (maybe(50)) f.eq(field(26, 32), pick(kHosts));
  if (maybe(40)) f.eq(field(30, 32), pick(kHosts));
  if (maybe(20)) f.eq(field(20, 16) & 0x1fff, 0);  // first fragment
  if (maybe(10)) f.gt(field(18, 16), 1);           // a range on the IP ID
  if (maybe(10)) f.eq(field(14, 8) & 0xf0, 0x40);  // version
  if (maybe(70)) {
    f.shift(14);
    if (maybe(50))
      f.shift((field(0, 8) & 0xf) << 2);  // variable IP header
    else
      f.shift(20);
    if (maybe(70)) f.eq(field(2, 16), pick(kPorts));
    if (maybe(50)) f.eq(field(0, 16), pick(kPorts));
    if (maybe(15)) f.lt(field(0, 16), 1024);
    if (maybe(10)) f.ge(field(2, 16), 443);
    if (maybe(10)) f.ne(field(2, 16), 80);
    if (maybe(10)) f.eq(field(12, 8) & 0xf0, 0x50);  // TCP data offset
  }
  if (f.atoms().empty()) f.eq(field(12, 16), 0x800);
  return f;
}

}  // namespace exojit::dpf::testing
