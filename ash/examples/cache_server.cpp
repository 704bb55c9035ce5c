// SPDX-License-Identifier: MIT
#include "cache_server.h"

#include <cstring>

#include "exojit/error.h"
#include "exojit/pipes/library.h"
#include "handlers.h"

namespace exojit::ash::examples {

using vcode::Op;
using vcode::Type;

namespace {

struct Entry {
  uint32_t key;
  uint32_t length;
  uint64_t va;
};

// The application layer: looks the key up; a miss fails (the message goes to the server); the
// commit part replies with the cached bytes.
class CacheLayer : public Layer {
 public:
  explicit CacheLayer(uint64_t base) : base_(base) {}
  std::string_view name() const override { return "cache"; }

  void body(LayerContext& c) override {
    HandlerBuilder& b = c.b;
    Reg key = b.getreg(Type::U32), k2 = b.getreg(Type::U32), e = b.getreg(Type::P),
        idx = b.getreg(Type::U64);
    b.peek(key, int64_t(0));
    b.cvt(idx, key);
    b.and_(idx, idx, CacheServer::kEntries - 1);
    b.lsh(idx, idx, 4);
    b.set(e, int64_t(base_));
    b.ld(k2, e, idx, 0);  // application memory: sandboxed
    c.fail_if(Op::Bne, k2, key);
    len_ = b.getreg(Type::U32, RegClass::Var);
    va_ = b.getreg(Type::P, RegClass::Var);
    b.ld(len_, e, idx, 4);
    c.fail_if(Op::Beq, len_, 0);
    b.ld(va_, e, idx, 8);
    b.putreg(key);
    b.putreg(k2);
    b.putreg(e);
    b.putreg(idx);
  }

  void commit(LayerContext& c) override {
    HandlerBuilder& b = c.b;
    pipes::PipeList pl;
    int ck = pipes::library::cksum(pl);
    int send = b.add_pipes(std::move(pl));
    int acc_ref = b.pipe_ref(send, ck, "acc");
    Reg t = b.getreg(Type::U32);
    b.reply_begin();
    b.reply_copy(int64_t(6), int64_t(6));
    b.reply_copy(int64_t(0), int64_t(6));
    b.reply_copy(int64_t(12), int64_t(4));  // EtherType, version, TOS
    b.add(t, len_, 20 + 8 + 4);
    b.reply_put(t, 2);                      // IPv4 total length
    b.reply_copy(int64_t(18), int64_t(6));  // id, fragment, TTL, protocol
    b.reply_put(int64_t(0), 2);             // header checksum, below
    b.reply_copy(int64_t(30), int64_t(4));
    b.reply_copy(int64_t(26), int64_t(4));
    b.reply_copy(int64_t(36), int64_t(2));
    b.reply_copy(int64_t(34), int64_t(2));
    b.add(t, len_, 8 + 4);
    b.reply_put(t, 2);                               // UDP length
    b.reply_put(int64_t(0), 2);                      // UDP checksum, below
    b.reply_copy(int64_t(kUdpHeaders), int64_t(4));  // the key
    b.reply_app(va_, len_, send);                    // the data, checksummed as it is copied
    // IPv4 header checksum.
    b.reply_cksum(t, int64_t(14), int64_t(20));
    b.xor_(t, t, 0xffff);
    b.reply_poke(int64_t(24), t, 2);
    // UDP checksum: pseudo-header, header and key (big-endian sums of the reply), and the data
    // (the pipe's little-endian sum, folded and byte-swapped).
    Reg sum = c.shared("cache.sum", Type::U32);
    b.reply_cksum(t, int64_t(26), int64_t(8));
    b.mov(sum, t);
    b.cksum(sum, sum, 17);
    b.add(t, len_, 8 + 4);
    b.cksum(sum, sum, t);
    b.reply_cksum(t, int64_t(34), int64_t(12));
    b.cksum(sum, sum, t);
    b.pipe_get(t, acc_ref);
    Reg half = b.getreg(Type::U16);
    b.cksum_fold(t, t);
    b.cvt(half, t);
    b.bswap(half, half);
    b.cvt(t, half);
    b.cksum(sum, sum, t);
    b.cksum_fold(t, sum);
    b.xor_(t, t, 0xffff);
    vcode::Label nonzero = b.label();
    b.bne(t, 0, nonzero);
    b.set(t, 0xffff);
    b.place(nonzero);
    b.reply_poke(int64_t(40), t, 2);
    b.reply_send();
    b.putreg(t);
    b.putreg(half);
  }

 private:
  uint64_t base_;
  Reg len_, va_;
};

void put16(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

}  // namespace

CacheServer::CacheServer(runtime::Environment& env, uint64_t base)
    : env_(env), base_(base), next_data_(base + runtime::kPageSize) {
  std::vector<uint8_t> zero(kEntries * sizeof(Entry), 0);
  env_.user_copy_out(base_, zero.data(), zero.size());
}

void CacheServer::put(uint32_t key, const std::vector<uint8_t>& data) {
  if (data.empty() || data.size() > 1024) fail("cache: {} bytes (1..1024)", data.size());
  Entry e{key, uint32_t(data.size()), next_data_};
  env_.user_copy_out(next_data_, data.data(), data.size());
  next_data_ += (data.size() + 7) & ~size_t(7);
  env_.user_copy_out(base_ + (key % kEntries) * sizeof(Entry), &e, sizeof e);
}

bool CacheServer::cached(uint32_t key) {
  Entry e;
  env_.user_copy_in(&e, base_ + (key % kEntries) * sizeof(Entry), sizeof e);
  return e.key == key && e.length;
}

std::vector<uint8_t> CacheServer::load(uint32_t key) {
  std::vector<uint8_t> d(64 + key % 448);
  for (size_t i = 0; i < d.size(); ++i) d[i] = uint8_t(key * 31 + i);
  return d;
}

void CacheServer::build(HandlerBuilder& h, uint32_t ip, uint16_t port) {
  EthernetLayer eth;
  Ipv4Layer ipv4(ip);
  UdpLayer udp(port);
  CacheLayer cache(base_);
  compose(h, {&eth, &ipv4, &udp, &cache});
}

std::vector<uint8_t> CacheServer::reply(const uint8_t* f, uint32_t key) {
  Entry e;
  env_.user_copy_in(&e, base_ + (key % kEntries) * sizeof(Entry), sizeof e);
  std::vector<uint8_t> data(e.length);
  env_.user_copy_in(data.data(), e.va, e.length);
  std::vector<uint8_t> payload(4 + data.size());
  std::memcpy(payload.data(), f + kUdpHeaders, 4);
  std::memcpy(payload.data() + 4, data.data(), data.size());
  runtime::MacAddress src, dst;
  std::memcpy(src.data(), f, 6);
  std::memcpy(dst.data(), f + 6, 6);
  auto be32 = [&](size_t at) {
    return uint32_t(f[at]) << 24 | uint32_t(f[at + 1]) << 16 | uint32_t(f[at + 2]) << 8 | f[at + 3];
  };
  auto be16 = [&](size_t at) { return uint16_t(f[at] << 8 | f[at + 1]); };
  std::vector<uint8_t> r =
      udp_frame(src, dst, be32(30), be32(26), be16(36), be16(34), payload.data(), payload.size());
  // The handler keeps the request's IPv4 id, flags and TTL: so does the ring path.
  std::memcpy(r.data() + 18, f + 18, 6);
  put16(r.data() + 24, 0);
  put16(r.data() + 24, ~ones_sum(r.data() + 14, 20) & 0xffff);
  return r;
}

std::vector<uint8_t> CacheServer::serve(const uint8_t* f, size_t n) {
  if (n < kUdpHeaders + 4 || !udp_checksums_ok(f, n)) return {};
  uint32_t key = uint32_t(f[42]) << 24 | uint32_t(f[43]) << 16 | uint32_t(f[44]) << 8 | f[45];
  if (!cached(key)) put(key, load(key));
  return reply(f, key);
}

std::vector<uint8_t> cache_request(const Testbed& t, uint32_t key) {
  uint8_t payload[4] = {uint8_t(key >> 24), uint8_t(key >> 16), uint8_t(key >> 8), uint8_t(key)};
  return t.request(payload, 4);
}

}  // namespace exojit::ash::examples
