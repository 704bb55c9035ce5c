// SPDX-License-Identifier: MIT
// The attack classes of the sandbox's hardening issue, each with the reproducer it was filed
// with and variants of our own, run natively and in the interpreter on a machine whose whole
// physical memory and host canaries are compared after every run (escape_machine.h).
#include <gtest/gtest.h>

#include <climits>

#include "escape_fixture.h"
#include "exojit/error.h"

namespace exojit::ash::testing {
namespace {

using vcode::Insn;
using vcode::Op;
using vcode::Type;

class Escape : public EscapeTest {};

constexpr uint64_t kApp = EscapeMachine::kApp;
constexpr int64_t kBig = int64_t(1) << 62;

// Class 1. A loop whose back edge is taken before its first access, moving the base by a huge
// constant: the hoisted check missed at entry, and the steps moved the "no translation" marker
// back into a page (host page 0).
void loop_with_early_back_edge(HandlerBuilder& b, int64_t start, int64_t step, int64_t count) {
  Reg p = b.getreg(Type::P, RegClass::Var), n = b.getreg(Type::I64, RegClass::Var),
      v = b.getreg(Type::U64, RegClass::Var), k = b.getreg(Type::I64, RegClass::Var);
  b.set(p, start);
  b.set(n, count);
  b.set(k, 2);
  b.set(v, 0x4242424242424242);
  Label head = b.label();
  b.place(head);
  b.add(p, p, step);
  b.sub(n, n, 1);
  b.bgt(n, 0, head);  // back edge before the access
  b.st(v, p, 0);
  b.sub(k, k, 1);
  b.set(n, count);
  b.bgt(k, 0, head);
  b.commit();
  b.finish();
}

TEST_P(Escape, Class1HoistedLoopMissNeverReachesHostPage0) {
  HandlerBuilder h("issue_class1");
  loop_with_early_back_edge(h, int64_t(kApp), -kBig + 8, 2);
  EXPECT_EQ(run(h), Outcome::Fault);
}

TEST_P(Escape, Class1LegalLoopThatWrapsAroundStores) {
  // Four steps of 2^62 bring the base back to where it started (mod 2^64): a legal handler that
  // crashed. It must store at kApp + 64, twice, and commit.
  HandlerBuilder h("issue_class1_legal");
  loop_with_early_back_edge(h, int64_t(kApp + 64), kBig, 4);
  EXPECT_EQ(run(h), Outcome::Committed);
  EXPECT_EQ(app(kApp + 64), 0x42);
  EXPECT_EQ(app(kApp + 72), 0x5a);
}

TEST_P(Escape, Class1HoistedArrayWalksFromOutsideTheRegion) {
  // Hoisted loops (the access first) entered with the base outside the region, in the hole,
  // on the read-only page, or one step before the region: every one faults before writing
  // anywhere but the writable pages, whatever the step (including INT64_MIN and INT64_MAX).
  for (uint64_t start : m.targets())
    for (int64_t step : {int64_t(8), int64_t(-8), int64_t(4096), kBig, INT64_MIN, INT64_MAX}) {
      HandlerBuilder h("walk");
      Reg p = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::I64, RegClass::Var),
          v = h.getreg(Type::U32, RegClass::Var);
      h.set(p, int64_t(start));
      h.set(n, 600);
      h.set(v, 0x01010101);
      Label head = h.label();
      h.place(head);
      h.st(v, p, 0);
      h.add(p, p, step);
      h.sub(n, n, 1);
      h.bgt(n, 0, head);
      h.commit();
      h.finish();
      bool inside = true;  // every store within the writable pages (arithmetic mod 2^64)
      for (uint64_t k = 0; k < 600 && inside; ++k)
        inside = start + k * uint64_t(step) - kApp <= 2 * kPageSize - 4;
      EXPECT_EQ(run(h) == Outcome::Committed, inside) << std::hex << start << " step " << step;
    }
}

// Class 2. A region of length 0: nothing of the application is reachable, array walks are not
// hoisted (the entry check compared with len - 1), and a trusted handler has no block.
TEST_P(Escape, Class2ZeroLengthRegion) {
  HandlerOptions o = options();
  o.region = Region{kApp, 0};
  HandlerBuilder h("issue_class2");
  Reg p = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::I64, RegClass::Var),
      v = h.getreg(Type::U64, RegClass::Var);
  h.set(p, int64_t(kApp));
  h.set(n, 16);
  h.set(v, -1);
  Label head = h.label();
  h.place(head);
  h.st(v, p, 0);
  h.ld(v, p, 8);
  h.add(p, p, 8);
  h.sub(n, n, 1);
  h.bgt(n, 0, head);
  h.commit();
  h.finish();
  EXPECT_EQ(run(h, o), Outcome::Fault);
  EXPECT_EQ(app(kApp), 0x5a);
  // Primitives reaching application memory through an empty region refuse too.
  HandlerBuilder c("consume_empty");
  c.consume(int64_t(kApp), int64_t(8));
  c.commit();
  c.finish();
  EXPECT_EQ(run(c, o), Outcome::Fault);
  // No memory, no problem: a handler that only computes commits.
  HandlerBuilder k("no_memory");
  Reg x = k.getreg(Type::U64);
  k.msg_length(x);
  k.commit();
  k.finish();
  EXPECT_EQ(run(k, o), Outcome::Committed);
  o.sandbox = Sandbox::Trusted;
  expect_refused(k, o);
}

// Class 3 (unmapping during a run) is the concurrency suite's (concurrency_test.cpp). Here, the
// single-threaded part: a handler that ran before an unmap, free and someone else's allocation
// never reaches the frame again.
TEST_P(Escape, Class3UnmappedFrameGivenToAnotherEnvironmentIsNotReached) {
  HandlerBuilder h("store_page0");
  Reg p = h.getreg(Type::P), v = h.getreg(Type::U8);
  h.set(p, int64_t(kApp + 100));
  h.set(v, 0xee);
  h.st(v, p, 0);
  h.commit();
  h.finish();
  Handler handler(h, m.attacker, options());
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  uint32_t frame = m.attacker.mmu().lookup(kApp)->frame;
  m.kernel.unmap_page(m.attacker, 0, kApp);
  m.kernel.free_frame(m.attacker, 0, frame);
  uint32_t reused = m.kernel.alloc_frame(m.victim, 0, Capability::make({2}, kPermAll));
  EXPECT_EQ(reused, frame);  // the free list hands out the most recent frame first
  m.kernel.map_page(m.victim, 0, EscapeMachine::kVictim + 2 * kPageSize, reused,
                    kPteRead | kPteWrite);
  m.snapshot();
  EXPECT_EQ(m.run(handler, msg), Outcome::Fault);
  EXPECT_EQ(m.intact(), "");
  EXPECT_EQ(m.kernel.memory().frame_data(reused)[100], 0);
}

// Class 4. A handler made for another environment: refused at install, and never run there.
TEST_P(Escape, Class4HandlerBoundToAnotherEnvironmentIsRefused) {
  HandlerBuilder h("issue_class4");
  Reg p = h.getreg(Type::P), v = h.getreg(Type::U64);
  h.set(p, int64_t(EscapeMachine::kVictim));
  h.set(v, -1);
  h.st(v, p, 0);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.region = Region{EscapeMachine::kVictim, 2 * kPageSize};
  Handler foreign(h, m.victim, o);  // anyone can make one: it is only data until installed
  m.kernel.claim_filter(m.attacker, 0, 7);
  EXPECT_THROW(m.kernel.install_handler(m.attacker, 0, 7, &foreign), Error);
  EXPECT_EQ(m.kernel.filter(7)->handler, nullptr);
  // Run in the attacker's context anyway (a kernel that forgot the check): it faults.
  EXPECT_EQ(m.run(foreign, msg), Outcome::Fault);
  EXPECT_EQ(m.intact(), "");
  // The victim may install its own.
  m.kernel.claim_filter(m.victim, 0, 8);
  m.kernel.install_handler(m.victim, 0, 8, &foreign);
  // A trusted (unchecked) handler needs the root capability, which the attacker lacks.
  HandlerBuilder t("trusted");
  t.commit();
  t.finish();
  HandlerOptions to = options();
  to.region = Region{kApp, 2 * kPageSize};
  to.sandbox = Sandbox::Trusted;
  Handler trusted(t, m.attacker, to);
  EXPECT_THROW(m.kernel.install_handler(m.attacker, 0, 7, &trusted), Error);
}

// A run's length is everyone's: every environment's unmap and protect wait for the runs in
// progress. An environment may give its handler a budget up to kMaxUnprivilegedBudget; past it,
// installing needs the root capability (a refusal installs nothing).
TEST_P(Escape, BudgetsPastTheUnprivilegedLimitNeedRoot) {
  HandlerBuilder h("long");
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.budget = kMaxUnprivilegedBudget + 1;
  Handler too_long(h, m.attacker, o);
  m.kernel.claim_filter(m.attacker, 0, 7);
  EXPECT_THROW(m.kernel.install_handler(m.attacker, 0, 7, &too_long), Error);
  EXPECT_EQ(m.kernel.filter(7)->handler, nullptr);
  o.budget = kMaxUnprivilegedBudget;
  Handler longest(h, m.attacker, o);
  m.kernel.install_handler(m.attacker, 0, 7, &longest);
  EXPECT_EQ(m.kernel.filter(7)->handler, &longest);
  runtime::Environment& root = m.kernel.create_environment("root", Capability::root());
  HandlerOptions ro = o;
  ro.region = Region{};
  ro.budget = int64_t(1) << 40;
  Handler rooted(h, root, ro);
  m.kernel.claim_filter(root, 0, 9);
  m.kernel.install_handler(root, 0, 9, &rooted);
  EXPECT_EQ(m.kernel.filter(9)->handler, &rooted);
  EXPECT_EQ(m.intact(), "");
}

// A trusted handler (no checks, root only) stops running once its block is no longer mapped as
// it was compiled for: unmapping a page of it makes every later run fault, not write.
TEST_P(Escape, TrustedHandlerStopsWhenItsBlockChanges) {
  HandlerBuilder h("trusted_store");
  Reg p = h.getreg(Type::P), v = h.getreg(Type::U8);
  h.set(p, int64_t(kApp + kPageSize + 1));
  h.set(v, 0x99);
  h.st(v, p, 0);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.region = Region{kApp, 2 * kPageSize};
  o.sandbox = Sandbox::Trusted;
  Handler handler(h, m.attacker, o);
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  EXPECT_EQ(app(kApp + kPageSize + 1), 0x99);
  uint32_t frame = m.attacker.mmu().lookup(kApp + kPageSize)->frame;
  m.kernel.unmap_page(m.attacker, 0, kApp + kPageSize);
  m.kernel.free_frame(m.attacker, 0, frame);
  m.snapshot();
  for (int round = 0; round < 2; ++round) EXPECT_EQ(m.run(handler, msg), Outcome::Fault);
  EXPECT_EQ(m.intact(), "");
}

// Class 5. The records edited after finish(): every edit that breaks what the lowering relies
// on is refused at install, whatever the verified flag says.
HandlerBuilder& base_program(HandlerBuilder& h) {
  Reg p = h.getreg(Type::P, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  Label done = h.label();
  h.set(p, int64_t(kApp));
  h.msg_length(v);
  h.beq(v, 0, done);
  h.st(v, p, 8);
  h.reply_begin();
  h.reply_put(v, 4);
  h.reply_send();
  h.place(done);
  h.commit();
  h.finish();
  return h;
}

template <typename Edit>
void edited(Escape* t, const char* what, Edit edit, bool refused = true) {
  HandlerBuilder h(what);
  base_program(h);
  vcode::Function& f = h.function();
  edit(h, f);
  EXPECT_TRUE(f.verified);  // the flag survives edits: it must prove nothing
  SCOPED_TRACE(what);
  if (refused) {
    for (Engine e : {Engine::Native, Engine::Interpreter}) {
      HandlerOptions o = t->options();
      o.engine = e;
      EXPECT_THROW(Handler(h, t->m.attacker, o), Error);
    }
  }
}

size_t find(const vcode::Function& f, Op op) {
  for (size_t i = 0; i < f.code.size(); ++i)
    if (f.code[i].op == op) return i;
  ADD_FAILURE() << "no " << vcode::op_name(op);
  return 0;
}

TEST_P(Escape, Class5EditedRecordsAreRefused) {
  using F = vcode::Function;
  edited(this, "slot_out_of_pool", [](HandlerBuilder&, F& f) { f.regs.back().slot = 7; });
  edited(this, "slot_of_a_scratch", [](HandlerBuilder& h, F& f) {
    f.regs.back() = f.regs[h.scratch()[1].id];
    f.regs.back().type = Type::U64;
  });
  edited(this, "state_is_a_temp",
         [](HandlerBuilder& h, F& f) { f.regs[h.state().id].cls = RegClass::Temp; });
  edited(this, "bad_class", [](HandlerBuilder&, F& f) { f.regs.back().cls = RegClass(7); });
  edited(this, "bad_type", [](HandlerBuilder&, F& f) { f.regs.back().type = Type(200); });
  edited(this, "float_reg", [](HandlerBuilder&, F& f) { f.regs.back().type = Type::F64; });
  edited(this, "params", [](HandlerBuilder&, F& f) { f.params[0].id = uint32_t(f.regs.size()); });
  edited(this, "params_swapped", [](HandlerBuilder&, F& f) { f.params[0].id = 4; });
  edited(this, "sig", [](HandlerBuilder&, F& f) { f.sig.ret = Type::U64; });
  edited(this, "label_out_of_range",
         [](HandlerBuilder&, F& f) { f.code[find(f, Op::Beq)].dst = 1000; });
  edited(this, "label_count", [](HandlerBuilder&, F& f) { f.num_labels = 0xffffffffu; });
  edited(this, "call_args_index",
         [](HandlerBuilder&, F& f) { f.code[find(f, Op::Call) + 1].a = 1000; });
  edited(this, "call_args_count", [](HandlerBuilder&, F& f) {
    for (Insn& x : f.code)
      if (x.op == Op::Call) x.b = 5;
  });
  edited(this, "call_arg_register", [](HandlerBuilder& h, F& f) {
    for (uint32_t& a : f.call_args) a = h.scratch()[0].id;
  });
  edited(this, "call_other_extern", [](HandlerBuilder&, F& f) {
    for (Insn& x : f.code)
      if (x.op == Op::Call) x.imm = 1u << 20;
  });
  edited(this, "final_commit_removed", [](HandlerBuilder&, F& f) { f.code.pop_back(); });
  edited(this, "ret_value", [](HandlerBuilder&, F& f) { f.code.back().imm = 2; });
  edited(this, "ret_register", [](HandlerBuilder&, F& f) {
    f.code.back().flags = 0;
    f.code.back().a = 4;
  });
  edited(this, "unknown_opcode", [](HandlerBuilder&, F& f) { f.code[0].op = Op(200); });
  edited(this, "unknown_flags", [](HandlerBuilder&, F& f) { f.code[0].flags |= 0x80; });
  edited(this, "local_base_flag",
         [](HandlerBuilder&, F& f) { f.code[find(f, Op::St)].flags |= vcode::kLocalBase; });
  edited(this, "store_through_state",
         [](HandlerBuilder& h, F& f) { f.code[find(f, Op::St)].a = h.state().id; });
  edited(this, "store_through_scratch",
         [](HandlerBuilder& h, F& f) { f.code[find(f, Op::St)].a = h.scratch()[1].id; });
  edited(this, "forged_primitive", [](HandlerBuilder& h, F& f) {
    Insn& x = f.code[find(f, Op::St)];
    x.a = h.state().id;  // a store dressed as the msg_length primitive
    x.imm = HandlerBuilder::kSiteTag;
  });
  edited(this, "primitive_site_out_of_range", [](HandlerBuilder&, F& f) {
    Insn& x = f.code[find(f, Op::Ldu)];
    x.imm = INT64_MIN;  // no site (and no signed overflow finding out)
  });
  edited(this, "local_alignment", [](HandlerBuilder&, F& f) {
    f.locals.push_back(vcode::LocalInfo{8, 3});
  });
  edited(this, "locals_too_big", [](HandlerBuilder&, F& f) {
    f.locals.push_back(vcode::LocalInfo{1u << 20, 8});
  });
  edited(this, "value_register_out_of_range", [](HandlerBuilder&, F& f) {
    Insn& x = f.code[find(f, Op::St)];
    x.dst = uint32_t(f.regs.size() - 1) + 1;
  });
  edited(this, "register_id_out_of_range",
         [](HandlerBuilder&, F& f) { f.code[0].dst = 0xfffffff0u; });
}

TEST_P(Escape, Class5DivisionConstantsAreNormalizedBeforeTheCheck) {
  // u32 division by 2^32 is a division by 0 for a 32-bit register; i32 by 0xffffffff is -1.
  for (int64_t k : {int64_t(1) << 32, int64_t(0xffffffff)}) {
    for (Type t : {Type::U32, Type::I32}) {
      HandlerBuilder h("div");
      Reg a = h.getreg(t, RegClass::Var);
      h.set(a, INT32_MIN);
      h.div(a, a, 3);
      h.commit();
      h.finish();
      for (Insn& x : h.function().code)
        if (x.op == Op::Div) x.imm = k;
      if (vcode::normalize_imm(t, k) == 0) {
        expect_refused(h);
      } else {
        EXPECT_EQ(run(h), Outcome::Committed);  // INT_MIN / -1 is computed, not trapped
      }
    }
  }
}

// Class 6. Extreme constants: displacements and steps of INT64_MIN/INT64_MAX, subtraction of
// INT64_MIN, a zero-length reply copy from an empty message (no UB: the sanitizer build runs
// these), and wild accesses through every target with every extreme displacement.
TEST_P(Escape, Class6ExtremeDisplacementsAndSteps) {
  for (uint64_t target : m.targets())
    for (int64_t disp : {int64_t(0), INT64_MIN, INT64_MAX, int64_t(-1), int64_t(kPageSize) - 1}) {
      HandlerBuilder h("extreme");
      Reg p = h.getreg(Type::P, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
      h.set(p, int64_t(target));
      h.set(v, -1);
      h.ld(v, p, disp);
      h.st(v, p, disp);
      h.sub(p, p, INT64_MIN);
      h.st(v, p, disp);
      h.add(p, p, INT64_MAX);
      h.stu(v, p, disp);
      h.commit();
      h.finish();
      // The third access is 2^63 away from the first: never inside the region.
      EXPECT_NE(run(h), Outcome::Committed) << std::hex << target << " " << disp;
    }
}

TEST_P(Escape, Class6ZeroLengthReplyCopyOfAnEmptyMessage) {
  HandlerBuilder h("issue_class6_reply");
  Reg ok = h.getreg(Type::U32, RegClass::Var);
  h.reply_begin();
  h.reply_copy(int64_t(0), int64_t(0));
  h.reply_app(int64_t(kApp), int64_t(0));
  h.consume(int64_t(kApp), int64_t(0));
  h.reply_send(ok);
  h.commit();
  h.finish();
  msg.clear();  // data() may be null
  EXPECT_EQ(run(h), Outcome::Committed);
}

// Locals live in the kernel's stack: a handler reading one before writing it reads 0, never
// what an earlier run (here: another handler's, at the same depth) left there.
TEST_P(Escape, LocalsStartZeroed) {
  constexpr int kWords = 8;
  HandlerBuilder w("fill_local");
  Reg v = w.getreg(Type::U64);
  vcode::Local lw = w.local(kWords * 8);
  w.set(v, 0x6b6b6b6b6b6b6b6b);
  for (int k = 0; k < kWords; ++k) w.st(v, lw, k * 8);
  w.commit();
  w.finish();
  HandlerBuilder r("read_local");
  Reg p = r.getreg(Type::P), x = r.getreg(Type::U64);
  vcode::Local lr = r.local(kWords * 8);
  vcode::Local odd = r.local(3, 1);
  r.set(p, int64_t(kApp));
  for (int k = 0; k < kWords; ++k) {
    r.ld(x, lr, k * 8);
    r.st(x, p, k * 8);
  }
  Reg b = r.getreg(Type::U8);
  r.ld(b, odd, 2);
  r.st(b, p, kWords * 8);
  r.commit();
  r.finish();
  Handler fill(w, m.attacker, options()), read(r, m.attacker, options());
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(m.run(fill, msg), Outcome::Committed);
    EXPECT_EQ(m.run(read, msg), Outcome::Committed);
    for (int i = 0; i <= kWords * 8; ++i) EXPECT_EQ(app(kApp + uint64_t(i)), 0) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, Escape, ::testing::Values(Engine::Native, Engine::Interpreter),
                         [](const auto& p) {
                           return p.param == Engine::Native ? "native" : "interp";
                         });

}  // namespace
}  // namespace exojit::ash::testing
