// SPDX-License-Identifier: MIT
// Frames for the tcpdump-language equivalence tests: every encapsulation pcap-filter(7) looks
// into on Ethernet, with values drawn from small pools so that the corpus's expressions match
// often. Link: unicast, broadcast and multicast MACs; 802.1Q/802.1ad/QinQ tags; MPLS stacks;
// PPPoE discovery and session; 802.3 frames with LLC (SNAP, STP, ISO, IPX, NetBEUI, every LLC
// frame kind). Network: IPv4 (options, fragments, broadcast and multicast addresses, bad header
// lengths), IPv6 (extension header chains: hop-by-hop, destination, routing, fragment, AH last),
// ARP, RARP, AppleTalk, DECnet, IPX. Transport: TCP (every flag), UDP, ICMP and ICMPv6 (named
// types), SCTP, IGMP, GRE, and Geneve over UDP carrying an inner Ethernet frame. Some frames are
// truncated at a random length, some are garbage.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace exojit::dpf::testing {

// What every frame maker writes with: a seeded generator and big-endian appends to the frame.
class FrameBytes {
 protected:
  explicit FrameBytes(uint64_t seed) : rng_(seed) {}
  unsigned pick(unsigned n) { return unsigned(rng_() % n); }
  void put8(unsigned v) { b_.push_back(uint8_t(v)); }
  void put16(unsigned v) { put8(v >> 8), put8(v); }
  void put32(uint32_t v) { put16(v >> 16), put16(v); }
  void put16_at(size_t at, unsigned v) { b_[at] = uint8_t(v >> 8), b_[at + 1] = uint8_t(v); }
  void fill(size_t n) {
    for (size_t i = 0; i < n; ++i) put8(unsigned(rng_()));
  }

  std::mt19937_64 rng_;
  std::vector<uint8_t> b_;
};

class FrameMaker : FrameBytes {
 public:
  explicit FrameMaker(uint64_t seed) : FrameBytes(seed) {}

  std::vector<uint8_t> next() {
    b_.clear();
    unsigned kind = pick(20);
    if (kind == 0) {  // garbage, sometimes behind a known EtherType
      b_.resize(pick(120));
      for (auto& x : b_) x = uint8_t(rng_());
      if (b_.size() > 13 && pick(2)) put16_at(12, pick_of(kEtherTypes));
      return b_;
    }
    macs();
    if (kind == 1) {
      llc_frame();
    } else {
      unsigned tags = pick(8) < 2 ? 1 + pick(2) : 0;  // 802.1Q, QinQ
      for (unsigned i = 0; i < tags; ++i) {
        put16(i + 1 < tags ? (pick(2) ? 0x88a8 : 0x9100) : 0x8100);
        put16(uint16_t(pick(8) << 13 | pick_of(kVlans)));
      }
      network();
    }
    if (pick(6) == 0 && !b_.empty()) b_.resize(pick(unsigned(b_.size())));  // truncated
    return b_;
  }

 private:
  static constexpr uint16_t kEtherTypes[] = {0x0800, 0x86dd, 0x0806, 0x8035, 0x8100, 0x8847,
                                             0x8864, 0x809b, 0x6003, 0x8137, 0x88a8};
  static constexpr uint16_t kVlans[] = {1, 10, 100, 200, 4095};
  static constexpr uint32_t kHosts4[] = {0xc0a80001, 0xc0a80002, 0x0a000001, 0x0a000102,
                                         0x7f000001, 0xffffffff, 0xe0000001, 0xc0a800ff};
  static constexpr uint16_t kPorts[] = {22, 53, 80, 443, 1234, 1500, 2000, 4321, 8000, 8080, 6081};
  static constexpr uint8_t kTcpFlags[] = {0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x20, 0x01, 0x3f};
  static constexpr uint8_t kIcmpTypes[] = {0, 3, 5, 8, 11, 13, 14, 17, 18};
  static constexpr uint8_t kIcmp6Types[] = {1, 2, 3, 128, 129, 133, 134, 135, 136};
  static constexpr uint32_t kLabels[] = {5, 16, 100, 1048575};

  template <typename T, size_t N>
  T pick_of(const T (&pool)[N]) {
    return pool[pick(N)];
  }

  void macs() {
    for (int side = 0; side < 2; ++side) {
      switch (side == 0 ? pick(5) : 4) {
        case 0:
          for (int i = 0; i < 6; ++i) put8(0xff);  // broadcast
          break;
        case 1:
          put8(0x01), put8(0x00), put8(0x5e), fill(3);  // IPv4 multicast
          break;
        case 2:
          put8(0x33), put8(0x33), fill(4);  // IPv6 multicast
          break;
        default:
          put8(0x02), put8(0x03), put8(0x04), put8(0x05), put8(0x06), put8(pick(2) ? 0x07 : 0x08);
      }
    }
  }

  // EtherType and what follows.
  void network() {
    switch (pick(16)) {
      case 0:
      case 1:
        return put16(0x86dd), ipv6();
      case 2:
        return put16(pick(2) ? 0x0806 : 0x8035), arp();
      case 3:
        return mpls();
      case 4:
        return pppoe();
      case 5: {  // AppleTalk, AARP, DECnet, IPX, STP-less oddities: a few bytes of payload
        static constexpr uint16_t others[] = {0x809b, 0x80f3, 0x6003, 0x8137, 0x6004, 0x88cc};
        put16(pick_of(others));
        return fill(20 + pick(20));
      }
      default:
        return put16(0x0800), ipv4(pick(4) == 0 ? pick(256) : 0);
    }
  }

  void ipv4(unsigned proto_choice) {
    size_t start = b_.size();
    unsigned words = pick(6) == 0 ? pick(4) : 0;         // options
    unsigned ihl = pick(30) == 0 ? pick(5) : 5 + words;  // sometimes a bad header length
    put8(0x40 | ihl), put8(pick(4) << 2);
    put16(0);  // total length, set below
    put16(pick(3));
    static constexpr uint16_t frags[] = {0x4000, 0, 0x2000, 0x2001, 0x0003, 0x4000};
    put16(pick_of(frags));
    put8(64);
    static constexpr uint8_t protos[] = {6, 6, 17, 17, 1, 2, 132, 47, 50, 51, 6};
    uint8_t proto = proto_choice ? uint8_t(proto_choice) : pick_of(protos);
    put8(proto), put16(0);
    put32(pick_of(kHosts4)), put32(pick_of(kHosts4));
    for (unsigned i = 0; i < 4 * words; ++i) put8(1);
    if ((b_[start + 6] & 0x1f) == 0 && b_[start + 7] == 0) transport(proto, false);
    fill(pick(12));
    put16_at(start + 2, unsigned(b_.size() - start));
  }

  void ipv6() {
    size_t start = b_.size();
    put32(0x60000000u | pick(3));
    put16(0);
    size_t next_at = b_.size();
    put8(0), put8(64);
    for (int a = 0; a < 2; ++a) {
      if (pick(4) == 0) {
        put32(0), put32(0), put32(0), put32(1);  // ::1
      } else if (pick(4) == 0) {
        put32(0xff020000u), put32(0), put32(0), put32(1);  // multicast
      } else {
        put32(0x20010db8), put32(0), put32(0), put32(1 + pick(3));
      }
    }
    // Extension headers (AH only last: libpcap 1.10's protochain loops on some chains past it).
    static constexpr uint8_t exts[] = {0, 60, 43, 44};
    unsigned n = pick(4) == 0 ? 1 + pick(3) : 0;
    bool ah = pick(8) == 0;
    static constexpr uint8_t finals[] = {6, 17, 58, 132, 6, 17, 58};
    uint8_t last = pick_of(finals);
    for (unsigned i = 0; i < n + ah; ++i) {
      uint8_t kind = i < n ? pick_of(exts) : 51;
      b_[next_at] = kind;
      next_at = b_.size();
      put8(0);  // next header, set by the following one
      if (kind == 51) {
        put8(1), put16(0), fill(8);  // AH: (1 + 2) * 4 = 12 bytes
      } else if (kind == 44) {
        put8(0), put16(pick(2) ? 0 : 0x0009), put32(pick(5));  // first or later fragment
      } else {
        unsigned len = pick(3);
        put8(len), fill(6 + 8 * len);
      }
    }
    b_[next_at] = last;
    transport(last, true);
    fill(pick(8));
    put16_at(start + 4, unsigned(b_.size() - start - 40));
  }

  void transport(uint8_t proto, bool v6) {
    switch (proto) {
      case 6:
        put16(pick_of(kPorts)), put16(pick_of(kPorts)), put32(1), put32(0);
        put8(0x50), put8(pick_of(kTcpFlags)), put16(1024), put16(0), put16(0);
        return;
      case 17: {
        uint16_t dst = pick_of(kPorts);
        put16(pick_of(kPorts)), put16(dst), put16(8 + 40), put16(0);
        if (dst == 6081 && pick(2)) geneve();
        return;
      }
      case 1:
        put8(pick_of(kIcmpTypes)), put8(pick(4)), put16(0), put32(0);
        return;
      case 58:
        put8(pick_of(kIcmp6Types)), put8(0), put16(0), put32(0);
        return;
      case 132:  // SCTP: common header and one chunk
        put16(pick_of(kPorts)), put16(pick_of(kPorts)), put32(7), put32(0);
        put8(pick(3)), put8(0), put16(4);
        return;
      case 2:
        put8(pick(2) ? 0x11 : 0x16), put8(0), put16(0), put32(0xe0000001);
        return;
      default:
        (void)v6;
        fill(8);
    }
  }

  // Geneve (RFC 8926) with an inner Ethernet frame (or a bare IPv4 packet).
  void geneve() {
    unsigned opt_words = pick(2);
    put8(opt_words), put8(0);
    bool ethernet = pick(3) != 0;
    put16(ethernet ? 0x6558 : 0x0800);
    put32(uint32_t(pick(3)) << 8);  // VNI 0..2, reserved
    fill(4 * opt_words);
    if (ethernet) {
      macs();
      put16(0x0800);
    }
    ipv4(6);
  }

  void arp() {
    put16(1), put16(0x0800), put8(6), put8(4), put16(1 + pick(4));
    fill(6), put32(pick_of(kHosts4)), fill(6), put32(pick_of(kHosts4));
  }

  void mpls() {
    put16(0x8847);
    unsigned labels = 1 + pick(3);
    for (unsigned i = 0; i < labels; ++i)
      put32(pick_of(kLabels) << 12 | (i + 1 == labels ? 0x100 : 0) | 64);
    if (pick(3) == 0)
      ipv6();
    else
      ipv4(0);
  }

  void pppoe() {
    bool session = pick(4) != 0;
    put16(session ? 0x8864 : 0x8863);
    put8(0x11), put8(session ? 0 : 0x09);
    static constexpr uint16_t sessions[] = {0, 1, 0x1234};
    put16(pick_of(sessions));
    size_t len_at = b_.size();
    put16(0);
    if (session) {
      bool v6 = pick(3) == 0;
      put16(v6 ? 0x0057 : 0x0021);
      if (v6)
        ipv6();
      else
        ipv4(0);
    } else {
      fill(8);
    }
    put16_at(len_at, unsigned(b_.size() - len_at - 2));
  }

  // 802.3 length field, then LLC (DSAP, SSAP, control) and what those saps carry.
  void llc_frame() {
    size_t len_at = b_.size();
    put16(0);
    static constexpr std::array<uint8_t, 2> saps[] = {{0xaa, 0xaa}, {0x42, 0x42}, {0xfe, 0xfe},
                                                      {0xe0, 0xe0}, {0xf0, 0xf0}, {0x06, 0x06}};
    auto [dsap, ssap] = pick_of(saps);
    put8(dsap), put8(ssap | (pick(4) == 0 ? 1 : 0));
    static constexpr uint8_t controls[] = {0x03, 0x03, 0x00, 0x02, 0x01, 0x05, 0x09,
                                           0x73, 0x43, 0x6f, 0xe3, 0xaf, 0x87, 0x0f};
    uint8_t control = pick_of(controls);
    put8(control);
    if ((control & 3) != 3) put8(pick(256));  // I and S frames: two control bytes
    if (dsap == 0xaa) {
      put8(0), put8(0), put8(pick(2) ? 0 : 0x07);  // SNAP OUI
      static constexpr uint16_t snap_types[] = {0x0800, 0x809b, 0x80f3, 0x86dd};
      uint16_t t = pick_of(snap_types);
      put16(t);
      if (t == 0x0800) ipv4(0);
    } else if (dsap == 0xfe) {
      static constexpr uint8_t nlpids[] = {0x81, 0x82, 0x83};
      put8(pick_of(nlpids)), put8(27), put8(1), put8(0), put8(pick(32));
    }
    fill(10 + pick(20));
    put16_at(len_at, unsigned(b_.size() - len_at - 2));
  }
};

}  // namespace exojit::dpf::testing
