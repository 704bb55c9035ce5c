// SPDX-License-Identifier: MIT
#include "exojit/runtime/builtin_demux.h"

#include <algorithm>

#include "exojit/error.h"

namespace exojit::runtime {

namespace {
uint16_t be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
}  // namespace

uint32_t BuiltinDemux::add(const DemuxRule& r) {
  if (r.ethertype == 0) fail("demux rule without an EtherType");
  bool ip_fields = r.ip_dst || r.ip_proto || r.dst_port;
  if (ip_fields && r.ethertype != 0x0800)
    fail("demux rule: IPv4 fields need EtherType 0x0800, not 0x{:04x}", r.ethertype);
  if (r.dst_port && r.ip_proto != 6 && r.ip_proto != 17)
    fail("demux rule: a port needs IP protocol 6 (TCP) or 17 (UDP), not {}", r.ip_proto);
  int spec = 1 + (r.ip_dst != 0) + (r.ip_proto != 0) + 2 * (r.dst_port != 0);
  Entry e{r, next_id_++, spec};
  auto at = std::find_if(rules_.begin(), rules_.end(),
                         [&](const Entry& x) { return x.specificity < spec; });
  rules_.insert(at, e);
  return e.id;
}

void BuiltinDemux::remove(uint32_t id) {
  auto it = std::find_if(rules_.begin(), rules_.end(), [&](const Entry& e) { return e.id == id; });
  if (it == rules_.end()) fail("demux: no rule {}", id);
  rules_.erase(it);
}

uint32_t BuiltinDemux::classify(const uint8_t* p, size_t len) {
  if (len < 14) return 0;
  uint16_t type = be16(p + 12);
  // IPv4 fields, when the frame carries a well-formed enough header to have them.
  bool ip = false, have_port = false;
  uint32_t dst = 0;
  uint8_t proto = 0;
  uint16_t port = 0;
  if (type == 0x0800 && len >= 14 + 20 && (p[14] >> 4) == 4) {
    size_t ihl = size_t(p[14] & 0x0f) * 4;
    if (ihl >= 20 && len >= 14 + ihl) {
      ip = true;
      dst = be32(p + 14 + 16);
      proto = p[14 + 9];
      bool first_fragment = (be16(p + 14 + 6) & 0x1fff) == 0;
      if (first_fragment && (proto == 6 || proto == 17) && len >= 14 + ihl + 4) {
        have_port = true;
        port = be16(p + 14 + ihl + 2);
      }
    }
  }
  for (const Entry& e : rules_) {
    const DemuxRule& r = e.rule;
    if (r.ethertype != type) continue;
    if (r.ip_dst || r.ip_proto || r.dst_port) {
      if (!ip) continue;
      if (r.ip_dst && r.ip_dst != dst) continue;
      if (r.ip_proto && r.ip_proto != proto) continue;
      if (r.dst_port && (!have_port || r.dst_port != port)) continue;
    }
    return e.id;
  }
  return 0;
}

}  // namespace exojit::runtime
