// SPDX-License-Identifier: MIT
// Malicious handlers (issue item 4): each is refused at install or aborted at run time, and
// the application's memory, other environments' memory and the runtime stay intact (the next
// good message is handled normally).
#include <gtest/gtest.h>

#include <array>

#include "machine.h"

namespace exojit::ash::testing {
namespace {

using vcode::Type;

struct Victim : Machine {
  static constexpr uint64_t kOther = 0x30000000;
  Environment& other;
  std::array<uint8_t, 64> kernel_secret{};
  Victim() : other(kernel.create_environment("other", Capability::make({9}, kPermAll))) {
    kernel.alloc_pages(other, 0, kOther, 1, kPteRead | kPteWrite);
    uint64_t secret = 0x5ec2e7;
    other.user_copy_out(kOther, &secret, 8);
    for (size_t p = 0; p < kAppPages; ++p) std::memset(app(kApp + p * kPageSize), 0x5a, kPageSize);
    kernel_secret.fill(0x77);
  }
  bool intact() {
    uint64_t secret = 0;
    other.user_copy_in(&secret, kOther, 8);
    if (secret != 0x5ec2e7) return false;
    for (size_t p = 0; p < kAppPages; ++p)
      for (size_t i = 0; i < kPageSize; ++i)
        if (app(kApp + p * kPageSize)[i] != 0x5a) return false;
    for (uint8_t b : kernel_secret)
      if (b != 0x77) return false;
    return true;
  }
};

// Builds a handler whose body is `body`, then commits.
template <typename F>
void program(HandlerBuilder& h, F body) {
  body(h);
  h.commit();
  h.finish();
}

// Runs `h` on a message and expects an abort of kind `want`, then checks nothing changed.
void expect_abort(Victim& m, const HandlerBuilder& h, Outcome want, HandlerOptions o) {
  Handler handler(h, m.env, o);
  std::vector<uint8_t> msg(64, 0x11);
  EXPECT_EQ(m.run(handler, msg), want);
  EXPECT_EQ(handler.counters().committed, 0u);
  EXPECT_TRUE(m.intact());
}
void expect_abort(Victim& m, const HandlerBuilder& h, Outcome want) {
  expect_abort(m, h, want, m.options());
}

TEST(Malicious, WildWritesAbort) {
  Victim m;
  uint64_t targets[] = {0,
                        Machine::kApp - 8,  // just below the region
                        Machine::kApp + Machine::kAppPages * kPageSize - 4,  // straddles the end
                        Victim::kOther,                                      // another environment
                        reinterpret_cast<uint64_t>(m.kernel_secret.data()),  // host memory
                        ~uint64_t(0) - 3};
  for (uint64_t t : targets) {
    HandlerBuilder h("wild_write");
    program(h, [&](HandlerBuilder& b) {
      Reg p = b.getreg(Type::P), v = b.getreg(Type::U64);
      b.set(p, int64_t(t));
      b.set(v, -1);
      b.st(v, p, 0);
    });
    expect_abort(m, h, Outcome::Fault);
  }
  // A register index and a displacement that wrap around are caught the same way.
  HandlerBuilder h("wrap");
  program(h, [](HandlerBuilder& b) {
    Reg p = b.getreg(Type::P), i = b.getreg(Type::U64), v = b.getreg(Type::U32);
    b.set(p, int64_t(Machine::kApp));
    b.set(i, -int64_t(Machine::kApp) - 16);
    b.set(v, 1);
    b.st(v, p, i, 8);
  });
  expect_abort(m, h, Outcome::Fault);
}

TEST(Malicious, ReadsOfOtherEnvironmentsAndKernelMemoryAbort) {
  Victim m;
  // A region covering the other environment's address: not mapped in this one.
  HandlerOptions o = m.options();
  o.region = Region{Victim::kOther, kPageSize};
  HandlerBuilder h("peek_other");
  program(h, [](HandlerBuilder& b) {
    Reg p = b.getreg(Type::P, RegClass::Var), v = b.getreg(Type::U64, RegClass::Var);
    b.set(p, int64_t(Victim::kOther));
    b.ld(v, p);
    b.set(p, int64_t(Victim::kOther + 8));
    b.st(v, p, 0);  // would leak it
  });
  expect_abort(m, h, Outcome::Fault, o);
  HandlerBuilder k("peek_kernel");
  program(k, [&](HandlerBuilder& b) {
    Reg p = b.getreg(Type::P), v = b.getreg(Type::U64);
    b.set(p, int64_t(reinterpret_cast<uint64_t>(m.kernel_secret.data())));
    b.ld(v, p);
  });
  expect_abort(m, k, Outcome::Fault);
}

TEST(Malicious, UnmappedAndProtectedPagesAbort) {
  Victim m;
  HandlerBuilder h("store_page1");
  program(h, [](HandlerBuilder& b) {
    Reg p = b.getreg(Type::P), v = b.getreg(Type::U8);
    b.set(p, int64_t(Machine::kApp + kPageSize + 5));
    b.set(v, 0x5a);
    b.st(v, p, 0);
  });
  Handler handler(h, m.env, m.options());
  std::vector<uint8_t> msg(20);
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  // Read-only after install: the software TLB is rebuilt and the store refused.
  m.kernel.protect_page(m.env, 0, Machine::kApp + kPageSize, kPteRead);
  EXPECT_EQ(m.run(handler, msg), Outcome::Fault);
  m.kernel.unmap_page(m.env, 0, Machine::kApp + kPageSize);
  EXPECT_EQ(m.run(handler, msg), Outcome::Fault);
  EXPECT_GE(handler.counters().tlb_rebuilds, 2u);
  // Mapped again (a fresh frame): the handler works again.
  uint32_t f = m.kernel.alloc_frame(m.env, 0, Capability::root());
  m.kernel.map_page(m.env, 0, Machine::kApp + kPageSize, f, kPteRead | kPteWrite);
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  EXPECT_EQ(m.app(Machine::kApp + kPageSize)[5], 0x5a);
}

TEST(Malicious, EndlessLoopsRunOutOfBudget) {
  Victim m;
  HandlerBuilder h("spin");
  program(h, [](HandlerBuilder& b) {
    vcode::Label top = b.label();
    Reg i = b.getreg(Type::U64);
    b.set(i, 0);
    b.place(top);
    b.add(i, i, 1);
    b.bne(i, 0, top);  // 2^64 iterations
  });
  expect_abort(m, h, Outcome::Budget);
  HandlerBuilder k("tight");
  vcode::Label l = k.label();
  k.place(l);
  k.jmp(l);
  k.finish();
  expect_abort(m, k, Outcome::Budget);
}

TEST(Malicious, DivisionByZeroAborts) {
  Victim m;
  HandlerBuilder h("div0");
  program(h, [](HandlerBuilder& b) {
    Reg a = b.getreg(Type::U64), z = b.getreg(Type::U64);
    b.set(a, 10);
    b.peek(z, int64_t(0));
    b.xor_(z, z, z);  // a divisor known only at run time
    b.mod(a, a, z);
  });
  expect_abort(m, h, Outcome::Fault);
  HandlerBuilder c("div0_const");
  program(c, [](HandlerBuilder& b) {
    Reg a = b.getreg(Type::U64);
    b.set(a, 10);
    b.div(a, a, 0);
  });
  EXPECT_THROW(Handler(c, m.env, m.options()), Error);
}

TEST(Malicious, HugeConsumeLengthsAbortWithoutWriting) {
  Victim m;
  for (int64_t len : {int64_t(65), int64_t(0xffffffff), int64_t(1) << 47}) {
    HandlerBuilder h("huge_consume");
    program(h, [&](HandlerBuilder& b) {
      Reg d = b.getreg(Type::P, RegClass::Var), n = b.getreg(Type::U64, RegClass::Var);
      b.set(d, int64_t(Machine::kApp));
      b.set(n, len);
      b.consume(d, n);
    });
    expect_abort(m, h, Outcome::Fault);
  }
  // In bounds of the message but running off the region's end: nothing is written.
  HandlerBuilder h("off_the_end");
  program(h, [](HandlerBuilder& b) {
    Reg d = b.getreg(Type::P, RegClass::Var);
    b.set(d, int64_t(Machine::kApp + Machine::kAppPages * kPageSize - 10));
    b.consume(d, int64_t(20));
  });
  expect_abort(m, h, Outcome::Fault);
}

TEST(Malicious, ReplyFloodsAreCapped) {
  Victim m;
  HandlerBuilder h("flood");
  program(h, [](HandlerBuilder& b) {
    vcode::Label top = b.label();
    Reg i = b.getreg(Type::U32, RegClass::Var);
    b.set(i, 1000);
    b.place(top);
    b.reply_begin();
    b.reply_copy(int64_t(0), int64_t(60));
    b.reply_send();
    b.sub(i, i, 1);
    b.bne(i, 0, top);
  });
  Handler handler(h, m.env, m.options());
  std::vector<uint8_t> msg(60, 0x11);
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  EXPECT_EQ(m.sent.size(), 4u);  // max_replies
  EXPECT_EQ(handler.counters().replies_refused, 996u);
  EXPECT_TRUE(m.intact());
}

// Sending copies the reply into the transmit ring, so it is charged by the byte: one 2 KiB reply
// built once and sent in a loop runs out of budget after budget / (2048 / 8 + 1) sends.
TEST(Malicious, RepliesAreChargedByTheByte) {
  Victim m;
  HandlerBuilder h("resend");
  program(h, [](HandlerBuilder& b) {
    vcode::Label top = b.label();
    b.reply_begin();
    b.reply_copy(int64_t(0), int64_t(2048));
    b.place(top);
    b.reply_send();
    b.jmp(top);
  });
  HandlerOptions o = m.options();
  o.max_replies = 100000;
  o.budget = 20000;
  Handler handler(h, m.env, o);
  std::vector<uint8_t> msg(2048, 0x11);
  EXPECT_EQ(m.run(handler, msg), Outcome::Budget);
  const uint64_t per_send = 2048 / 8 + 1;
  EXPECT_GE(m.sent.size(), 1u);
  EXPECT_LE(m.sent.size(), size_t(o.budget / per_send));
  EXPECT_EQ(handler.counters().replies_sent, m.sent.size());
  EXPECT_TRUE(m.intact());
}

TEST(Malicious, RefusedAtInstall) {
  Victim m;
  auto refused = [&](const char* what, auto body) {
    HandlerBuilder h(what);
    body(h);
    h.finish();
    EXPECT_THROW(Handler(h, m.env, m.options()), Error) << what;
  };
  refused("indirect_jump", [](HandlerBuilder& b) {
    vcode::Label l = b.label();
    Reg t = b.getreg(Type::P);
    b.la(t, l);
    b.jmpr(t);
    b.place(l);
    b.commit();
  });
  refused("float", [](HandlerBuilder& b) {
    Reg f = b.getreg(Type::F64);
    b.setf(f, 1.5);
    b.commit();
  });
  refused("stack_abuse", [](HandlerBuilder& b) {
    vcode::Local l = b.local(1 << 20);
    Reg v = b.getreg(Type::U64);
    b.set(v, 1);
    b.st(v, l, 0);
    b.commit();
  });
  refused("local_address", [](HandlerBuilder& b) {
    vcode::Local l = b.local(8);
    Reg p = b.getreg(Type::P);
    b.addrl(p, l);
    b.commit();
  });
  refused("recursion", [](HandlerBuilder& b) {
    Reg r = b.getreg(Type::U32);
    b.call(r, 0, {b.state()});
    b.commit();
  });
  refused("state_register", [](HandlerBuilder& b) {
    Reg v = b.getreg(Type::U64);
    b.set(v, 0);
    b.st(v, b.state(), 8);  // would move the message cursor
    b.commit();
  });
  refused("state_arithmetic", [](HandlerBuilder& b) {
    Reg p = b.getreg(Type::P);
    b.add(p, b.state(), 64);
    b.commit();
  });
  refused("return_value", [](HandlerBuilder& b) { b.ret(7); });
  refused("too_big", [](HandlerBuilder& b) {
    Reg v = b.getreg(Type::U64);
    b.set(v, 0);
    for (int i = 0; i < 5000; ++i) b.add(v, v, 1);
    b.commit();
  });
  // A forged primitive: a load from the state with a call primitive's site tag.
  refused("forged_primitive", [](HandlerBuilder& b) {
    Reg v = b.getreg(Type::U64);
    b.reply_begin();
    b.ld(v, b.state(), HandlerBuilder::kSiteTag + 0);
    b.commit();
  });
  // The sandbox's scratch registers given back and taken again by the handler.
  refused("scratch_slot", [](HandlerBuilder& b) {
    for (Reg r : b.scratch()) b.putreg(r);
    Reg p = b.getreg(Type::P);
    b.set(p, 0);
    b.commit();
  });
  // A local out of its bounds is refused when recorded (stack abuse).
  HandlerBuilder h("local_oob");
  vcode::Local l = h.local(8);
  Reg v = h.getreg(Type::U64);
  h.set(v, 1);
  EXPECT_THROW(h.st(v, l, 64), Error);
  EXPECT_TRUE(m.intact());
}

}  // namespace
}  // namespace exojit::ash::testing
