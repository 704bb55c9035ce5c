// SPDX-License-Identifier: MIT
#include "handlers.h"

#include <cstring>

#include "exojit/error.h"

namespace exojit::ash::examples {

using vcode::Type;

void remote_write(HandlerBuilder& h) {
  Reg dst = h.getreg(Type::P, RegClass::Var), len = h.getreg(Type::U32, RegClass::Var);
  Reg left = h.getreg(Type::U32);
  vcode::Label bad = h.label();
  h.skip(int64_t(14));                   // Ethernet header
  h.consume_field(dst, Endian::Little);  // destination address
  h.consume_field(len, Endian::Little);  // length
  h.remaining(left);
  h.bgt(len, left, bad);  // incomplete packet
  h.consume(dst, len);    // the data, straight to its place
  h.commit();
  h.place(bad);
  h.abort();
  h.finish();
}

// The reply to a UDP request: the request's headers with MAC addresses, IP addresses and ports
// swapped (the IPv4 and UDP checksums stay valid: one's-complement sums commute).
static void swapped_udp_headers(HandlerBuilder& h) {
  h.reply_begin();
  h.reply_copy(int64_t(6), int64_t(6));    // destination MAC = request's source
  h.reply_copy(int64_t(0), int64_t(6));    // source MAC = request's destination
  h.reply_copy(int64_t(12), int64_t(14));  // EtherType, IPv4 header up to the addresses
  h.reply_copy(int64_t(30), int64_t(4));   // source IP = request's destination
  h.reply_copy(int64_t(26), int64_t(4));   // destination IP = request's source
  h.reply_copy(int64_t(36), int64_t(2));   // source port = request's destination port
  h.reply_copy(int64_t(34), int64_t(2));   // destination port = request's source port
}

void remote_increment(HandlerBuilder& h) {
  Reg va = h.getreg(Type::P, RegClass::Var), x = h.getreg(Type::U64, RegClass::Var);
  h.skip(int64_t(kUdpHeaders));
  h.consume_field(va, Endian::Little);
  h.ld(x, va);  // application memory: sandboxed
  h.add(x, x, 1);
  h.st(x, va);
  swapped_udp_headers(h);
  h.reply_copy(int64_t(38), int64_t(2));  // UDP length
  h.reply_put(int64_t(0), 2);             // UDP checksum: none
  h.reply_copy(int64_t(kUdpHeaders), int64_t(8));
  h.reply_put(x, 8, Endian::Little);
  h.reply_send();
  h.commit();
  h.finish();
}

void udp_echo(HandlerBuilder& h) {
  Reg n = h.getreg(Type::U32, RegClass::Var);
  h.msg_length(n);
  h.skip(int64_t(kUdpHeaders));  // shorter frames abort (to the ring)
  swapped_udp_headers(h);
  h.sub(n, n, 38);
  h.reply_copy(int64_t(38), n);  // UDP length, checksum and the payload
  h.reply_send();
  h.commit();
  h.finish();
}

const std::vector<std::string_view>& names() {
  static const std::vector<std::string_view> n{"remote_write", "remote_increment", "udp_echo"};
  return n;
}

void build(std::string_view name, HandlerBuilder& h) {
  if (name == "remote_write") return remote_write(h);
  if (name == "remote_increment") return remote_increment(h);
  if (name == "udp_echo") return udp_echo(h);
  fail("no example handler '{}' (remote_write, remote_increment, udp_echo, cache_server)", name);
}

uint32_t ones_sum(const uint8_t* p, size_t n, uint32_t sum) {
  uint64_t s = sum;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return uint32_t(s);
}

static void put16(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
static void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}

std::vector<uint8_t> udp_frame(const runtime::MacAddress& src_mac,
                               const runtime::MacAddress& dst_mac, uint32_t src_ip, uint32_t dst_ip,
                               uint16_t src_port, uint16_t dst_port, const uint8_t* payload,
                               size_t n, bool udp_checksum) {
  std::vector<uint8_t> f(kUdpHeaders + n);
  uint8_t* p = f.data();
  std::memcpy(p, dst_mac.data(), 6);
  std::memcpy(p + 6, src_mac.data(), 6);
  put16(p + 12, 0x0800);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  put16(ip + 2, uint32_t(20 + 8 + n));
  ip[8] = 64;
  ip[9] = 17;
  put32(ip + 12, src_ip);
  put32(ip + 16, dst_ip);
  put16(ip + 10, ~ones_sum(ip, 20) & 0xffff);
  uint8_t* udp = ip + 20;
  put16(udp, src_port);
  put16(udp + 2, dst_port);
  put16(udp + 4, uint32_t(8 + n));
  if (n) std::memcpy(udp + 8, payload, n);
  if (udp_checksum) {
    uint8_t pseudo[12];
    std::memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 17;
    put16(pseudo + 10, uint32_t(8 + n));
    uint32_t c = ~ones_sum(udp, 8 + n, ones_sum(pseudo, 12)) & 0xffff;
    put16(udp + 6, c ? c : 0xffff);
  }
  return f;
}

std::vector<uint8_t> remote_write_frame(const runtime::MacAddress& dst_mac, uint64_t dst_va,
                                        const uint8_t* data, uint32_t n) {
  std::vector<uint8_t> f(14 + 12 + n);
  std::memcpy(f.data(), dst_mac.data(), 6);
  f[6] = 0x02;
  f[12] = 0x88;  // a local experimental EtherType
  f[13] = 0xb5;
  std::memcpy(f.data() + 14, &dst_va, 8);
  std::memcpy(f.data() + 22, &n, 4);
  if (n) std::memcpy(f.data() + 26, data, n);
  return f;
}

bool udp_checksums_ok(const uint8_t* f, size_t n) {
  if (n < kUdpHeaders) return false;
  const uint8_t* ip = f + 14;
  if (ones_sum(ip, 20) != 0xffff) return false;
  const uint8_t* udp = ip + 20;
  uint32_t ulen = uint32_t(udp[4]) << 8 | udp[5];
  if (ulen < 8 || 34 + ulen > n) return false;
  if (udp[6] == 0 && udp[7] == 0) return true;
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 17;
  put16(pseudo + 10, ulen);
  return ones_sum(udp, ulen, ones_sum(pseudo, 12)) == 0xffff;
}

}  // namespace exojit::ash::examples
