// SPDX-License-Identifier: MIT
// Hardening of the demultiplexer and the classic-BPF JIT (issue 20): code generated for untrusted
// owners masks every packet access since its bounds check (testsupport/masked_accesses.h) and
// blinds its constants; trusted code does neither.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/engine.h"
#include "exojit/dpf/pcap.h"
#include "exojit/vcode.h"
#include "live_tables.h"
#include "masked_accesses.h"
#include "packets.h"
#include "random_filters.h"

namespace exojit::dpf {
namespace {

std::vector<size_t> unmasked(const vcode::Module& m, size_t* checked) {
  const vcode::Function& f = *m.functions().front();
  exojit::testing::MaskedAccesses check(f, {f.params[0].id});
  std::vector<size_t> bad = check.unmasked();
  *checked = check.checked();
  return bad;
}

bool contains(const vcode::Code& c, uint32_t v) {
  for (size_t i = 0; i + 4 <= c.size(); ++i)
    if (std::memcmp(c.data() + i, &v, 4) == 0) return true;
  return false;
}

// Random filter sets (SHIFTs, hash tables, spilled segments): every packet access of untrusted
// code is masked; the check sees trusted code's unmasked ones.
TEST(DpfHardening, EveryPacketAccessOfUntrustedCodeIsMasked) {
  std::mt19937_64 rng(2020);
  size_t checked_total = 0, unmasked_trusted = 0;
  for (int round = 0; round < 80; ++round) {
    for (bool trusted : {false, true}) {
      std::mt19937_64 same(rng());
      Engine e;
      int n = 1 + int(same() % 30);
      for (int i = 0; i < n; ++i) {
        Filter f = testing::random_filter(same);
        e.insert(f, {.share = 1, .broad = true, .trusted = trusted});
      }
      size_t checked = 0;
      std::vector<size_t> bad = unmasked(e.module(), &checked);
      if (trusted) {
        unmasked_trusted += bad.size();
        continue;
      }
      checked_total += checked;
      ASSERT_TRUE(bad.empty()) << "instruction " << bad[0] << " is not masked\n"
                               << vcode::print(e.module());
    }
  }
  EXPECT_GT(checked_total, 500u);
  EXPECT_GT(unmasked_trusted, 0u);
}

// Connection filters (a hash node after two SHIFTs): the addresses are in the table (data), and
// the code's constants are blinded while an untrusted owner is in.
TEST(DpfHardening, UntrustedConstantsAreNotInTheCode) {
  auto conn = [](uint32_t src) {
    Filter f;
    f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), src);
    f.eq(field(30, 32), 0x0a0b0c0d).shift(14).shift((field(0, 8) & 0xf) << 2);
    f.eq(field(0, 16), 0x1f90);
    return f;
  };
  const uint32_t dst_be = 0x0d0c0b0a;  // 10.11.12.13 as the code compares it (byte-swapped load)
  Engine trusted, untrusted;
  trusted.insert(conn(0xc0a80001), {.trusted = true});
  untrusted.insert(conn(0xc0a80001), {});
  uint32_t dst = 0x0a0b0c0d;
#if defined(__x86_64__)  // the control: x86-64 carries a 32-bit immediate whole (AArch64 in halves)
  EXPECT_TRUE(contains(trusted.code(), dst) || contains(trusted.code(), dst_be));
#endif
  EXPECT_FALSE(contains(untrusted.code(), dst) || contains(untrusted.code(), dst_be));
}

// The constants of a filter that take 16 bits or more (compared values, expression constants,
// field offsets), each scanned for as the bytes of its width (2, 4 or 8), in either order.
void wide_constants(const Filter& f, std::set<uint64_t>* out) {
  auto walk = [&](auto& self, const ExprPtr& e) -> void {
    if (!e) return;
    if (e->op == ExprOp::Const && e->value > 0xff) out->insert(e->value);
    if (e->op == ExprOp::Load && e->offset > 0xff) out->insert(e->offset);
    self(self, e->a);
    self(self, e->b);
  };
  for (const Atom& a : f.atoms()) {
    if (a.kind == Atom::Kind::Compare && a.value > 0xff) out->insert(a.value);
    walk(walk, a.expr);
  }
}
std::vector<uint8_t> le_bytes(uint64_t v) {
  size_t n = v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
  std::vector<uint8_t> b(n);
  std::memcpy(b.data(), &v, n);  // little-endian host (x86-64, AArch64)
  return b;
}
// A constant's bytes as an immediate would carry them: little-endian, and big-endian too, since
// equality compares packet bytes loaded as they are (no byte swap) with the constant in memory
// order -- unless that reads as a value of one signed byte (0x0800 compared as 8), which vcode
// leaves unblinded like any 8-bit constant: a byte, not a 16-bit pattern of the owner's choice.
std::vector<std::vector<uint8_t>> byte_patterns(uint64_t v) {
  std::vector<uint8_t> le = le_bytes(v), be(le.rbegin(), le.rend());
  uint64_t as_read = 0;
  std::memcpy(&as_read, be.data(), be.size());
  if (as_read <= 0x7f) return {le};
  return {le, be};
}
#if EXOJIT_WITH_DISASM
constexpr bool kDisassembler = true;
#else
constexpr bool kDisassembler = false;
#endif

// The x86-64 code's bytes, and which of them are a jump's or call's displacement: the layout of
// the code, not a constant (a `jmp 443` is no filter's 443).
// The hardened code's bytes where an immediate could stand: the trailing bytes of each
// instruction (x86-64 puts displacements and immediates last: 8 for movabs, else up to 4), minus
// branch and call displacements. (Without that, an opcode byte followed by a random immediate's
// low byte -- `41 bb 01 ..`, mov r11d -- reads as the 16-bit constant 0x1bb in some compilations.)
// The immediates of a module's records marked owned (ir.h: the engine's own, left plain).
std::set<uint64_t> owned_constants(const vcode::Module& m) {
  std::set<uint64_t> out;
  for (const auto& fn : m.functions())
    for (const vcode::Insn& in : fn->code)
      if (in.flags & vcode::kOwnedImm) out.insert(uint64_t(in.imm));
  return out;
}

// The bytes of generated code where an immediate or a displacement can stand, but those of the
// module's owned constants: a table's address is a heap address, the same high bytes in every
// engine of the process, so a filter's 2-byte pattern in it (about one run in a few hundred,
// by where the heap was put) is in every compilation without being the filter's.
struct ScannedCode {
  std::vector<uint8_t> bytes;
  std::vector<bool> field;
  ScannedCode(const vcode::Code& c, const std::set<uint64_t>& owned)
      : bytes(c.data(), c.data() + c.size()), field(c.size(), true) {
#if EXOJIT_WITH_DISASM
    std::fill(field.begin(), field.end(), false);
    size_t at = 0;
    for (const vcode::DisasmLine& l : vcode::disassemble(c.data(), c.size(), 0)) {
      const size_t len = l.bytes.size();
      const bool branch = l.text[0] == 'j' || l.text.rfind("call", 0) == 0;
      const size_t tail = branch ? 0 : len >= 10 ? 8 : std::min<size_t>(4, len - 1);
      uint64_t imm = 0;
      std::memcpy(&imm, l.bytes.data() + len - tail, tail);
      if (tail == 4) imm = uint64_t(int64_t(int32_t(uint32_t(imm))));  // sign-extended imm32
      if (!owned.count(imm))
        for (size_t k = len - tail; k < len; ++k) field[at + k] = true;
      at += len;
    }
#else
    (void)owned;
#endif
  }
  bool contains(const std::vector<uint8_t>& p) const {
    for (size_t i = 0; i + p.size() <= bytes.size(); ++i)
      if (std::memcmp(bytes.data() + i, p.data(), p.size()) == 0 &&
          std::find(field.begin() + long(i), field.begin() + long(i + p.size()), false) ==
              field.begin() + long(i + p.size()))
        return true;
    return false;
  }
};

// Random untrusted filter sets: none of their constants of 16 bits or more is in the hardened
// x86-64 code (a 2-byte pattern may come out of a random key or the engine's own constants by
// chance: a leak is in every compilation, so the set goes into five engines, five keys), and
// no constant the engine marked owned (left plain: its tables' addresses, hash multipliers,
// offsets in a table entry) is one of theirs. The same sets inserted trusted: the constants are
// there (the scan sees them).
TEST(DpfHardening, NoUntrustedFilterConstantInTheCode) {
  // x86-64, with the disassembler (to tell displacements); AArch64 splits constants into
  // move-wide pieces (vcode's Blinding tests scan those).
  const bool scan = vcode::kHostTarget == vcode::Target::X86_64 && kDisassembler;
  std::mt19937_64 rng(2026);
  size_t scanned = 0, owned = 0, in_plain = 0;
  for (int round = 0; round < 40; ++round) {
    std::vector<Filter> filters;
    std::set<uint64_t> constants;
    for (int i = 0, n = 1 + int(rng() % 40); i < n; ++i) {
      filters.push_back(testing::random_filter(rng));
      wide_constants(filters.back(), &constants);
    }
    Engine hardened[5], trusted;
    for (const Filter& f : filters) {
      for (Engine& e : hardened) e.insert(f, {.share = 1, .broad = true});
      trusted.insert(f, {.share = 1, .broad = true, .trusted = true});
    }
    std::vector<ScannedCode> codes;
    if (scan)
      for (const Engine& e : hardened) codes.emplace_back(e.code(), owned_constants(e.module()));
    ScannedCode plain(trusted.code(), owned_constants(trusted.module()));
    for (uint64_t k : scan ? constants : std::set<uint64_t>{}) {
      bool seen = false;
      for (const std::vector<uint8_t>& p : byte_patterns(k)) {
        bool everywhere = true;
        for (const ScannedCode& c : codes) everywhere = everywhere && c.contains(p);
        EXPECT_FALSE(everywhere) << fmt::format("{:#x} in the hardened code\n", k)
                                 << vcode::print(hardened[0].module());
        seen = seen || plain.contains(p);
      }
      in_plain += seen;
      ++scanned;
    }
    for (const vcode::Insn& in : hardened[0].module().functions().front()->code) {
      if (!(in.flags & vcode::kOwnedImm)) continue;
      ++owned;
      EXPECT_EQ(constants.count(uint64_t(in.imm)), 0u)
          << fmt::format("owned {:#x} is a filter's constant", in.imm);
    }
  }
  EXPECT_GT(owned, 0u);
  if (!scan) return;
  EXPECT_GT(scanned, 200u);
  EXPECT_GT(in_plain, scanned / 4);
}

// A TCP connection through the variable IP header (a hash node after the SHIFTs), and its packet.
Filter connection(uint32_t src, uint16_t sport) {
  Filter f;
  f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), src);
  f.eq(field(30, 32), 0x0a000001).shift(14).shift((field(0, 8) & 0xf) << 2);
  return f.eq(field(0, 16), sport).eq(field(2, 16), 80);
}
testing::Bytes connection_packet(uint32_t src, uint16_t sport) {
  testing::Ipv4 s;
  s.src = src, s.dst = 0x0a000001, s.sport = sport, s.dport = 80, s.payload = 10;
  return testing::ipv4(s);
}

// Code generated while only trusted filters were in takes more of their connections by table
// writes; an untrusted owner's connection would fit the same table, but its packets must not
// run through unmasked loads: it gets hardened code (the whole regenerated while small, the
// layer of recent changes once large), and only then do untrusted keys go into tables.
TEST(DpfHardening, AnUntrustedFilterIsNeverServedByUnhardenedCode) {
  for (size_t threshold : {size_t(2048), size_t(64)}) {
    SCOPED_TRACE(threshold);
    Engine e({.layer_threshold = threshold});
    // More than HashNode::kSearchedKeys: a probing table, which takes almost any new key.
    for (uint32_t i = 0; i < 260; ++i)
      e.insert(connection(0xc0a80000 + i, uint16_t(1000 + i)), {.owner = 1, .trusted = true});
    size_t checked = 0;
    ASSERT_FALSE(unmasked(e.module(), &checked).empty());  // trusted code: plain loads
    // More trusted connections: the running code takes them (table writes), but for a table
    // that fills up.
    EngineStats before;
    bool written = false;
    for (uint32_t k = 0; k < 8 && !written; ++k) {
      before = e.stats();
      e.insert(connection(0xc0a81000 + k, uint16_t(2000 + k)), {.owner = 1, .trusted = true});
      written = e.stats().table_updates == before.table_updates + 1 &&
                e.stats().regenerations == before.regenerations;
    }
    ASSERT_EQ(written, kLiveTableWrites);  // (AArch64: every table change is new code)

    // An untrusted owner's connection, of the same shape: new code, hardened.
    before = e.stats();
    FilterId id = e.insert(connection(0xc0a82000, 3000), {.owner = 2});
    EXPECT_GT(e.stats().regenerations, before.regenerations);
    const vcode::Module& runs = e.layered() ? e.recent_module() : e.module();
    EXPECT_EQ(e.layered(), threshold == 64);
    std::vector<size_t> bad = unmasked(runs, &checked);
    EXPECT_TRUE(bad.empty()) << "instruction " << bad[0] << "\n" << vcode::print(runs);
    EXPECT_GT(checked, 0u);
    testing::Bytes p = connection_packet(0xc0a82000, 3000);
    EXPECT_EQ(e.demux(p.data(), p.size()), id);

    // While small, the next one goes into the hardened code's table: a table write, no new
    // code. (Layered, the trusted whole is not regenerated for it: the recent layer is.)
    before = e.stats();
    FilterId next = e.insert(connection(0xc0a82001, 3001), {.owner = 2});
    if (!e.layered() && kLiveTableWrites) {
      EXPECT_EQ(e.stats().table_updates, before.table_updates + 1);
      EXPECT_EQ(e.stats().regenerations, before.regenerations);
    } else if (e.layered()) {
      EXPECT_EQ(e.stats().merges, before.merges);
    }
    p = connection_packet(0xc0a82001, 3001);
    EXPECT_EQ(e.demux(p.data(), p.size()), next);
    p = connection_packet(0xc0a80007, 1007);
    EXPECT_EQ(e.demux(p.data(), p.size()), FilterId(8));
  }
}

// The BPF JIT: libpcap's programs, untrusted (masked, blinded) and trusted.
TEST(DpfHardening, EveryPacketLoadOfAnUntrustedBpfProgramIsMasked) {
  for (const char* expr : {"tcp port 80", "ip[2:2] - ip[0] > 2", "vlan and tcp",
                           "udp dst port 53 or icmp", "ip and tcp[13] & 2 != 0"}) {
    std::vector<BpfInsn> p = compile_pcap_bpf(expr);
    size_t checked = 0;
    BpfFilter hardened = compile_bpf(p);
    EXPECT_TRUE(unmasked(hardened.module(), &checked).empty()) << expr << "\n"
                                                               << vcode::print(hardened.module());
    EXPECT_GT(checked, 0u) << expr;
    BpfFilter plain = compile_bpf(p, {.trusted = true});
    EXPECT_FALSE(unmasked(plain.module(), &checked).empty()) << expr;
  }
}

}  // namespace
}  // namespace exojit::dpf
