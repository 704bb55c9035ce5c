// SPDX-License-Identifier: MIT
// The peers bench_demux compares DPF with: libpcap's bpf_filter interpreter and dpf's
// classic-BPF JIT (the filters tried in turn), and the demultiplexors a kernel programmer writes
// by hand (headers parsed once, then the connection table, linearly or hashed; Figure 3's
// fixed-depth check). A function call each (noinline), as a driver's demux hook is.
#pragma once

#include <exojit/dpf/bpf.h>
#include <exojit/dpf/pcap.h>
#include <pcap/pcap.h>

#include <cstring>

#include "common.h"

namespace exojit::bench {

// libpcap's compiled filters, tried in turn by the bpf_filter interpreter.
class BpfSet {
 public:
  explicit BpfSet(const std::vector<std::string>& exprs) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    for (const std::string& e : exprs) {
      bpf_program p{};
      if (pcap_compile(dead, &p, e.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        fail("pcap_compile `{}`: {}", e, pcap_geterr(dead));
      programs_.push_back(p);
    }
    pcap_close(dead);
  }
  ~BpfSet() {
    for (bpf_program& p : programs_) pcap_freecode(&p);
  }
  uint32_t demux(const uint8_t* p, size_t len) const {
    for (size_t i = 0; i < programs_.size(); ++i)
      if (bpf_filter(programs_[i].bf_insns, p, u_int(len), u_int(len))) return uint32_t(i + 1);
    return 0;
  }

 private:
  std::vector<bpf_program> programs_;
};

// The same filters compiled one by one by the classic-BPF JIT, tried in turn.
class BpfJitSet {
 public:
  explicit BpfJitSet(const std::vector<std::string>& exprs) {
    for (const std::string& e : exprs)
      filters_.push_back(dpf::compile_bpf(dpf::compile_pcap_bpf(e)));
    for (const dpf::BpfFilter& f : filters_) fns_.push_back(f.function());
  }
  uint32_t demux(const uint8_t* p, size_t len) const {
    for (size_t i = 0; i < fns_.size(); ++i)
      if (fns_[i](p, len, len)) return uint32_t(i + 1);
    return 0;
  }

 private:
  std::vector<dpf::BpfFilter> filters_;
  std::vector<dpf::BpfFilter::Fn*> fns_;
};

inline uint16_t be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}

// The hand-coded demultiplexor: headers parsed once, then the table.
template <bool kVariable>
struct Parsed {
  uint32_t src, dst;
  uint16_t sport, dport;
  static bool parse(const uint8_t* p, size_t len, Parsed* out) {
    if (len < 34 || be16(p + 12) != 0x0800 || p[23] != 6) return false;
    size_t l4 = kVariable ? 14 + size_t(p[14] & 0xf) * 4 : 34;
    if (len < l4 + 4) return false;
    out->src = be32(p + 26), out->dst = be32(p + 30);
    out->sport = be16(p + l4), out->dport = be16(p + l4 + 2);
    return true;
  }
};

template <bool kVariable>
[[gnu::noinline]] uint32_t hand_linear(const uint8_t* p, size_t len, const std::vector<Conn>& t) {
  Parsed<kVariable> h;
  if (!Parsed<kVariable>::parse(p, len, &h)) return 0;
  for (const Conn& c : t)
    if (c.src == h.src && c.dst == h.dst && c.sport == h.sport && c.dport == h.dport) return c.id;
  return 0;
}

class HandHash {
 public:
  explicit HandHash(const std::vector<Conn>& conns) {
    size_t n = 8;
    while (n < conns.size() * 2) n *= 2;
    mask_ = n - 1;
    table_.assign(n, Conn{0, 0, 0, 0, 0});
    for (const Conn& c : conns) {
      size_t s = slot(c.src, c.dst, c.sport, c.dport);
      while (table_[s].id) s = (s + 1) & mask_;
      table_[s] = c;
    }
  }
  [[gnu::noinline]] uint32_t demux(const uint8_t* p, size_t len) const {
    Parsed<true> h;
    if (!Parsed<true>::parse(p, len, &h)) return 0;
    for (size_t s = slot(h.src, h.dst, h.sport, h.dport);; s = (s + 1) & mask_) {
      const Conn& c = table_[s];
      if (!c.id) return 0;
      if (c.src == h.src && c.dst == h.dst && c.sport == h.sport && c.dport == h.dport) return c.id;
    }
  }

 private:
  size_t slot(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp) const {
    uint64_t x = (uint64_t(s) << 32 | d) ^ (uint64_t(sp) << 16 | dp) * 0x9e3779b97f4a7c15ull;
    return size_t((x * 0xc2b2ae3d27d4eb4full) >> 32) & mask_;
  }
  std::vector<Conn> table_;
  size_t mask_;
};

// Figure 3's hand-coded check: d levels of two 16-bit fields.
[[gnu::noinline]] inline uint32_t hand_depth(const uint8_t* p, size_t n, int d) {
  if (n < size_t(4 * d)) return 0;
  for (int k = 0; k < d; ++k, p += 4)
    if (be16(p) != 2 * k + 1 || be16(p + 2) != 2 * k + 2) return 0;
  return 1;
}

}  // namespace exojit::bench
