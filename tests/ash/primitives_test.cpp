// SPDX-License-Identifier: MIT
// The message primitives and the sandboxed memory accesses, each handler run natively and
// through the vcode interpreter (the reference semantics), checked and trusted, and compared
// with the same logic written in C++.
#include <gtest/gtest.h>

#include <random>

#include "exojit/pipes/library.h"
#include "exojit/pipes/reference.h"
#include "machine.h"

namespace exojit::ash::testing {
namespace {

using vcode::Type;

struct Mode {
  Sandbox sandbox;
  Engine engine;
};

class Primitives : public ::testing::TestWithParam<Mode> {
 protected:
  Machine m;
  HandlerOptions opts() const { return m.options(GetParam().sandbox, GetParam().engine); }
};

// Peeks fields of every width, both byte orders, at constant and register offsets, and stores
// them in application memory at kApp + 8*i.
TEST_P(Primitives, PeekFieldsMatchCpp) {
  HandlerBuilder h("peeks");
  Reg out = h.getreg(Type::P, RegClass::Var);
  Reg off = h.getreg(Type::U64, RegClass::Var);
  Reg v8 = h.getreg(Type::U8), v16 = h.getreg(Type::U16), v32 = h.getreg(Type::U32),
      v64 = h.getreg(Type::U64);
  h.set(out, int64_t(Machine::kApp));
  h.peek(v8, int64_t(3));
  h.st(v8, out, 0);
  h.peek(v16, int64_t(5), Endian::Big);
  h.st(v16, out, 8);
  h.peek(v32, int64_t(7), Endian::Little);
  h.st(v32, out, 16);
  h.peek(v64, int64_t(9), Endian::Big);
  h.st(v64, out, 24);
  h.set(off, 11);
  h.peek(v32, off, Endian::Big);
  h.st(v32, out, 32);
  h.skip(int64_t(4));
  h.consume_field(v16, Endian::Little);  // bytes 4..5
  h.st(v16, out, 40);
  h.remaining(v64);
  h.st(v64, out, 48);
  h.msg_length(v32);
  h.st(v32, out, 56);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());

  std::vector<uint8_t> msg(64);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = uint8_t(i * 7 + 1);
  ASSERT_EQ(m.run(handler, msg), Outcome::Committed);
  auto be = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | msg[at + size_t(i)];
    return v;
  };
  auto le = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | msg[at + size_t(i)];
    return v;
  };
  uint64_t a = Machine::kApp;
  EXPECT_EQ(m.read<uint8_t>(a), msg[3]);
  EXPECT_EQ(m.read<uint16_t>(a + 8), be(5, 2));
  EXPECT_EQ(m.read<uint32_t>(a + 16), le(7, 4));
  EXPECT_EQ(m.read<uint64_t>(a + 24), be(9, 8));
  EXPECT_EQ(m.read<uint32_t>(a + 32), be(11, 4));
  EXPECT_EQ(m.read<uint16_t>(a + 40), le(4, 2));
  EXPECT_EQ(m.read<uint64_t>(a + 48), 64u - 6);
  EXPECT_EQ(m.read<uint32_t>(a + 56), 64u);
  EXPECT_EQ(handler.counters().committed, 1u);
}

// A peek past the end aborts (fault), and a short message never reads beyond its length.
TEST_P(Primitives, PeekOutOfBoundsFaults) {
  HandlerBuilder h("oob");
  Reg off = h.getreg(Type::U64, RegClass::Var);
  Reg v = h.getreg(Type::U32);
  h.msg_length(off);
  h.sub(off, off, 3);  // the last 3 bytes: a 4-byte peek overruns by one
  h.peek(v, off);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  for (size_t n : {3, 4, 10, 100}) {
    std::vector<uint8_t> msg(n, 0xaa);
    EXPECT_EQ(m.run(handler, msg), Outcome::Fault) << n;
  }
  EXPECT_EQ(handler.counters().aborted_fault, 4u);
}

// consume through a checksum + byte-swap pipe list: the data lands byte-swapped and the
// checksum equals the one-pass C reference.
TEST_P(Primitives, ConsumeThroughPipesMatchesReference) {
  HandlerBuilder h("dilp");
  pipes::PipeList pl;
  int ck = pipes::library::cksum(pl);
  pipes::library::bswap32(pl);
  int list = h.add_pipes(std::move(pl));
  int acc = h.pipe_ref(list, ck, "acc");
  Reg dst = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::U64, RegClass::Var);
  Reg sum = h.getreg(Type::U32);
  h.set(dst, int64_t(Machine::kApp + 100));  // straddles pages for long messages
  h.remaining(n);
  h.consume(dst, n, list);
  h.pipe_get(sum, acc);
  h.set(dst, int64_t(Machine::kApp));
  h.st(sum, dst, 0);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  std::mt19937 rng(7);
  for (size_t len : {0, 1, 5, 64, 1000, 5000}) {
    std::vector<uint8_t> msg(len);
    for (auto& b : msg) b = uint8_t(rng());
    ASSERT_EQ(m.run(handler, msg), Outcome::Committed) << len;
    std::vector<uint8_t> want = msg;
    uint32_t want_acc = pipes::reference::cksum(0, want.data(), want.size());
    pipes::reference::bswap32(want.data(), want.size());
    std::vector<uint8_t> got(len);
    m.env.user_copy_in(got.data(), Machine::kApp + 100, len);
    EXPECT_EQ(got, want) << len;
    EXPECT_EQ(m.read<uint32_t>(Machine::kApp), want_acc) << len;
  }
}

// Loads and stores at every alignment across a page boundary (contiguous frames).
TEST_P(Primitives, UnalignedAccessesAcrossPages) {
  HandlerBuilder h("unaligned");
  Reg p = h.getreg(Type::P, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  h.set(p, int64_t(Machine::kApp + kPageSize - 3));
  h.ld(v, p);
  h.add(v, v, 1);
  h.st(v, p, 0);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  m.write<uint64_t>(Machine::kApp + kPageSize - 3, 0x1122334455667788ull);
  ASSERT_EQ(m.run(handler, std::vector<uint8_t>(20)), Outcome::Committed);
  EXPECT_EQ(m.read<uint64_t>(Machine::kApp + kPageSize - 3), 0x1122334455667789ull);
}

// Accesses through one base register reuse its translation while they stay in its page; one
// leaving the page (or the region) is checked in full out of line. Same results as the
// interpreter and the trusted handler, and as C++.
TEST_P(Primitives, ReusedTranslationsStayChecked) {
  HandlerBuilder h("fields");
  Reg p = h.getreg(Type::P, RegClass::Var), sum = h.getreg(Type::U64, RegClass::Var);
  Reg v = h.getreg(Type::U64), w = h.getreg(Type::U32);
  h.consume_field(p, Endian::Little);
  h.ld(sum, p, 0);
  h.ld(v, p, 8);
  h.add(sum, sum, v);
  h.ld(w, p, 4100);  // usually the next page: rechecked
  h.cvt(v, w);
  h.add(sum, sum, v);
  h.ld(v, p, 16);
  h.add(sum, sum, v);
  h.st(sum, p, 24);
  h.st(sum, p, 32);  // reuses the store's translation
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  if (GetParam().sandbox == Sandbox::Checked) {
    EXPECT_NE(handler.listing().find("recheck"), std::string::npos);
    if (std::getenv("ASH_SHOW")) std::puts(handler.listing().c_str());
  }
  for (uint64_t at : {uint64_t(100), uint64_t(4000), uint64_t(4090), uint64_t(8100)}) {
    uint64_t base = Machine::kApp + at;
    for (uint64_t k = 0; k < 64; ++k) m.write<uint8_t>(base + k, uint8_t(k * 3 + at));
    m.write<uint32_t>(base + 4100, uint32_t(at * 7));
    std::vector<uint8_t> msg(8);
    std::memcpy(msg.data(), &base, 8);
    ASSERT_EQ(m.run(handler, msg), Outcome::Committed) << at;
    uint64_t want =
        m.read<uint64_t>(base) + m.read<uint64_t>(base + 8) + at * 7 + m.read<uint64_t>(base + 16);
    EXPECT_EQ(m.read<uint64_t>(base + 24), want) << at;
    EXPECT_EQ(m.read<uint64_t>(base + 32), want) << at;
  }
  if (GetParam().sandbox == Sandbox::Trusted) return;
  // The first field in the region's last page, the one 4100 bytes on outside it: fault, and
  // nothing stored.
  uint64_t base = Machine::kApp + (Machine::kAppPages - 1) * kPageSize + 8;
  std::vector<uint8_t> msg(8);
  std::memcpy(msg.data(), &base, 8);
  m.write<uint64_t>(base + 24, 77);
  EXPECT_EQ(m.run(handler, msg), Outcome::Fault);
  EXPECT_EQ(m.read<uint64_t>(base + 24), 77u);
}

// A loop walking an array through one pointer: the check is hoisted to the loop's entry and
// each access only checks it stays in its page. Sums across pages, stops at the region's end
// or an unmapped page (fault), and a loop that never runs does not fault on its hoisted check.
TEST_P(Primitives, LoopChecksAreHoisted) {
  HandlerBuilder h("array_sum");
  Reg p = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::U32, RegClass::Var);
  Reg sum = h.getreg(Type::U64, RegClass::Var), v = h.getreg(Type::U64);
  vcode::Label top = h.label(), done = h.label();
  h.consume_field(p, Endian::Little);
  h.consume_field(n, Endian::Little);
  h.set(sum, 0);
  h.beq(n, 0, done);
  h.place(top);
  h.ld(v, p, 0);
  h.add(sum, sum, v);
  h.ld(v, p, 8);
  h.add(sum, sum, v);
  h.add(p, p, 16);
  h.sub(n, n, 1);
  h.bne(n, 0, top);
  h.place(done);
  h.set(p, int64_t(Machine::kApp));
  h.st(sum, p, 0);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  if (GetParam().sandbox == Sandbox::Checked) {
    std::string l = handler.listing();
    EXPECT_NE(l.find("loop_head"), std::string::npos);
    if (std::getenv("ASH_SHOW")) std::puts(l.c_str());
  }
  for (uint64_t k = 8; k < Machine::kAppPages * kPageSize; k += 8)
    m.write<uint64_t>(Machine::kApp + k, k * 0x9e3779b9u);
  auto msg = [](uint64_t va, uint32_t count) {
    std::vector<uint8_t> bytes(12);
    std::memcpy(bytes.data(), &va, 8);
    std::memcpy(bytes.data() + 8, &count, 4);
    return bytes;
  };
  for (uint64_t start : {uint64_t(8), uint64_t(4000), uint64_t(100)}) {
    uint32_t count = uint32_t((Machine::kAppPages * kPageSize - start) / 16);
    uint64_t want = 0;
    for (uint64_t k = 0; k < 2 * uint64_t(count); ++k)
      want += m.read<uint64_t>(Machine::kApp + start + 8 * k);  // as C++ reads it
    ASSERT_EQ(m.run(handler, msg(Machine::kApp + start, count)), Outcome::Committed) << start;
    EXPECT_EQ(m.read<uint64_t>(Machine::kApp), want) << start;
    // Restore the word the result overwrote.
    m.write<uint64_t>(Machine::kApp, 0);
  }
  // Zero iterations from an address outside the region: no access, no fault.
  EXPECT_EQ(m.run(handler, msg(0x1000, 0)), Outcome::Committed);
  if (GetParam().sandbox == Sandbox::Trusted) return;
  // One element too many: the loop runs off the region's end.
  EXPECT_EQ(m.run(handler,
                  msg(Machine::kApp + 8, uint32_t((Machine::kAppPages * kPageSize - 8) / 16) + 1)),
            Outcome::Fault);
  // From outside the region: the hoisted check fails softly, the first access faults.
  EXPECT_EQ(m.run(handler, msg(0x1000, 3)), Outcome::Fault);
  // An unmapped page in the middle.
  m.kernel.unmap_page(m.env, 0, Machine::kApp + 2 * kPageSize);
  EXPECT_EQ(m.run(handler, msg(Machine::kApp + 8, 600)), Outcome::Fault);
  EXPECT_EQ(m.run(handler, msg(Machine::kApp + 8, 200)), Outcome::Committed);
}

// Signed and unsigned division: a zero divisor aborts, INT_MIN / -1 wraps like the machine
// would not (it would trap): the handler goes on.
TEST_P(Primitives, DivisionIsGuarded) {
  HandlerBuilder h("div");
  Reg a = h.getreg(Type::I32, RegClass::Var), b = h.getreg(Type::I32, RegClass::Var);
  Reg out = h.getreg(Type::P, RegClass::Var), q = h.getreg(Type::I32);
  h.peek(a, int64_t(0), Endian::Little);
  h.peek(b, int64_t(4), Endian::Little);
  h.set(out, int64_t(Machine::kApp));
  h.div(q, a, b);
  h.st(q, out, 0);
  h.mod(q, a, b);
  h.st(q, out, 4);
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  auto msg = [](int32_t x, int32_t y) {
    std::vector<uint8_t> v(8);
    std::memcpy(v.data(), &x, 4);
    std::memcpy(v.data() + 4, &y, 4);
    return v;
  };
  ASSERT_EQ(m.run(handler, msg(-17, 5)), Outcome::Committed);
  EXPECT_EQ(m.read<int32_t>(Machine::kApp), -3);
  EXPECT_EQ(m.read<int32_t>(Machine::kApp + 4), -2);
  ASSERT_EQ(m.run(handler, msg(INT32_MIN, -1)), Outcome::Committed);
  EXPECT_EQ(m.read<int32_t>(Machine::kApp), INT32_MIN);
  EXPECT_EQ(m.read<int32_t>(Machine::kApp + 4), 0);
  EXPECT_EQ(m.run(handler, msg(5, 0)), Outcome::Fault);
}

// Replies: headers put and poked, message bytes, application data through a pipe, a checksum.
TEST_P(Primitives, ReplyPrimitives) {
  HandlerBuilder h("reply");
  Reg sum = h.getreg(Type::U32, RegClass::Var);
  pipes::PipeList pl;
  pipes::library::bswap16(pl);
  int swap = h.add_pipes(std::move(pl));
  h.reply_begin();
  h.reply_put(int64_t(0x0102), 2, Endian::Big);
  h.reply_put(int64_t(0x0304), 2, Endian::Little);
  h.reply_copy(int64_t(1), int64_t(4));
  h.reply_app(int64_t(Machine::kApp), int64_t(4), swap);
  h.reply_put(int64_t(0), 2);
  h.reply_poke(int64_t(0), int64_t(0xaa), 1);
  h.reply_cksum(sum, int64_t(0), int64_t(12));
  h.reply_poke(int64_t(12), sum, 2, Endian::Big);
  h.reply_put(int64_t(0), 2);  // 16 bytes: more than an Ethernet header
  h.reply_send();
  h.commit();
  h.finish();
  Handler handler(h, m.env, opts());
  m.write<uint32_t>(Machine::kApp, 0x44332211);
  std::vector<uint8_t> msg{9, 8, 7, 6, 5, 4};
  ASSERT_EQ(m.run(handler, msg), Outcome::Committed);
  std::vector<uint8_t> want{0xaa, 2, 4, 3, 8, 7, 6, 5, 0x22, 0x11, 0x44, 0x33, 0, 0, 0, 0};
  uint32_t c = 0;
  for (size_t i = 0; i < 12; i += 2) c += uint32_t(want[i]) << 8 | want[i + 1];
  while (c > 0xffff) c = (c & 0xffff) + (c >> 16);
  want[12] = uint8_t(c >> 8);
  want[13] = uint8_t(c);
  ASSERT_EQ(m.sent.size(), 1u);
  EXPECT_EQ(m.sent[0], want);
  EXPECT_EQ(handler.counters().replies_sent, 1u);
  // Without a capability for the NIC the reply is refused, counted, and the handler goes on.
  ASSERT_EQ(m.run(handler, msg, /*may_transmit=*/false), Outcome::Committed);
  EXPECT_EQ(m.sent.size(), 1u);
  EXPECT_EQ(handler.counters().replies_refused, 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Primitives,
                         ::testing::Values(Mode{Sandbox::Checked, Engine::Native},
                                           Mode{Sandbox::Checked, Engine::Interpreter},
                                           Mode{Sandbox::Trusted, Engine::Native},
                                           Mode{Sandbox::Trusted, Engine::Interpreter}),
                         [](const auto& p) {
                           return std::string(p.param.sandbox == Sandbox::Checked ? "checked"
                                                                                  : "trusted") +
                                  (p.param.engine == Engine::Native ? "_native" : "_interp");
                         });

}  // namespace
}  // namespace exojit::ash::testing
