// SPDX-License-Identifier: MIT
// Hardening of ASH handlers (issue 20): every checked access of the sandboxed code (application
// memory through the software TLB, the TLB itself, the message) uses an offset masked since its
// check (testsupport/masked_accesses.h), and the code is blinded; the unhardened code (for
// measurement) is not masked and needs the root capability.
#include <gtest/gtest.h>

#include <cstring>

#include "example_set.h"
#include "handlers.h"
#include "masked_accesses.h"
#include "testbed.h"

namespace exojit::ash::examples {
namespace {

using runtime::Mode;

std::vector<size_t> unmasked(const Handler& h, size_t* checked) {
  exojit::testing::MaskedAccesses m(*h.lowered().functions().front(), {});
  std::vector<size_t> bad = m.unmasked();
  *checked = m.checked();
  return bad;
}

TEST(AshHardening, EveryCheckedAccessOfTheExamplesIsMasked) {
  size_t total = 0;
  for (std::string_view name : example_names()) {
    Testbed t(Mode::Threads, kIncrementPort);
    std::unique_ptr<Handler> h = make_example(name, t);
    size_t checked = 0;
    std::vector<size_t> bad = unmasked(*h, &checked);
    total += checked;
    EXPECT_TRUE(bad.empty()) << name << ": instruction " << (bad.empty() ? 0 : bad[0])
                             << " is not masked\n"
                             << h->listing();
  }
  EXPECT_GT(total, 0u);
}

// Every kind of checked access: a loop whose translation is hoisted (the in-page rechecks),
// indexed and displaced accesses, message peeks by constant and by register, consume_field.
TEST(AshHardening, EveryKindOfCheckedAccessIsMasked) {
  Testbed t(Mode::Threads, kIncrementPort);
  HandlerBuilder h("walk");
  vcode::Reg base = h.getreg(vcode::Type::P, vcode::RegClass::Var);
  vcode::Reg v = h.getreg(vcode::Type::U64, vcode::RegClass::Var);
  vcode::Reg n = h.getreg(vcode::Type::U32, vcode::RegClass::Var);
  vcode::Reg i = h.getreg(vcode::Type::U64, vcode::RegClass::Var);
  h.peek(n, int64_t(0));
  h.peek(i, int64_t(4));
  h.peek_at(v, vcode::Reg(i));
  h.consume_field(i);
  h.and_(n, n, 15);
  h.set(base, int64_t(Testbed::kApp));
  h.ld(v, base, i, 8);
  vcode::Label top = h.label();
  h.place(top);
  h.st(v, base, 0);
  h.st(v, base, 8);
  h.add(base, base, 16);
  h.sub(n, n, 1);
  h.bgt(n, 0, top);
  h.ld(v, base, 0x1234);
  h.commit();
  h.finish();
  Handler handler(h, t.server(), t.options());
  // The loop's translation is hoisted (its accesses recheck the page only).
  ASSERT_NE(handler.listing().find("loop_head"), std::string::npos) << handler.listing();
  ASSERT_NE(handler.listing().find("recheck"), std::string::npos) << handler.listing();
  size_t checked = 0;
  std::vector<size_t> bad = unmasked(handler, &checked);
  EXPECT_GE(checked, 8u);
  EXPECT_TRUE(bad.empty()) << "instruction " << (bad.empty() ? 0 : bad[0]) << " is not masked\n"
                           << handler.listing();
}

TEST(AshHardening, TheCheckSeesUnmaskedCode) {
  Testbed t(Mode::Threads, kIncrementPort);
  HandlerBuilder b("remote_write");
  remote_write(b);
  HandlerOptions o = t.options();
  o.harden = false;
  Handler h(b, t.server(), o);
  size_t checked = 0;
  EXPECT_FALSE(unmasked(h, &checked).empty());
  // Unhardened is like Trusted: installing it needs the root capability.
  EXPECT_TRUE(h.binding().needs_root);
  Handler hardened(b, t.server(), t.options());
  EXPECT_FALSE(hardened.binding().needs_root);
}

// A handler's constants are its environment's, which the kernel does not trust: the installed
// code carries none of them (blinded), and a handler cannot exempt one. A constant marked owned
// (vcode kOwnedImm, which blinding leaves as it is) is refused at install, whether the handler's
// builder marked it or its records were edited afterwards: the sandbox decides from the records.
TEST(AshHardening, HandlerConstantsAreBlindedAndCannotBeMarkedOwned) {
  // The control below looks for the constant's 4 bytes as one x86-64 immediate; AArch64 builds
  // constants 16 bits at a time (movz/movk), so the unhardened code does not hold them whole.
  if (vcode::kHostTarget != vcode::Target::X86_64) GTEST_SKIP() << "x86-64 immediates";
  Testbed t(Mode::Threads, kIncrementPort);
  const uint32_t spray = 0x13579bdf;  // 4 distinctive bytes
  auto build = [&](HandlerBuilder& h, bool own) {
    vcode::Reg v = h.getreg(vcode::Type::U32, vcode::RegClass::Var);
    vcode::Reg base = h.getreg(vcode::Type::P, vcode::RegClass::Var);
    h.peek(v, int64_t(0));
    h.xor_(v, v, int64_t(spray));
    if (own) h.own_constant();
    h.set(base, int64_t(Testbed::kApp));
    h.st(v, base, 0);
    h.commit();
    h.finish();
  };
  auto in_code = [&](const Handler& h) {
    const vcode::Code& c = h.code();
    for (size_t i = 0; i + 4 <= c.size(); ++i)
      if (std::memcmp(c.data() + i, &spray, 4) == 0) return true;
    return false;
  };
  HandlerBuilder plain_builder("spray");
  build(plain_builder, false);
  HandlerOptions unhardened = t.options();
  unhardened.harden = false;
  EXPECT_TRUE(in_code(Handler(plain_builder, t.server(), unhardened)));  // the control
  EXPECT_FALSE(in_code(Handler(plain_builder, t.server(), t.options())));

  HandlerBuilder marked("spray_owned");
  build(marked, true);
  try {
    Handler h(marked, t.server(), t.options());
    ADD_FAILURE() << "a handler's constant marked owned was installed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("owned"), std::string::npos) << e.what();
  }
  // The same mark put into the records after the builder's checks.
  HandlerBuilder edited("spray_edited");
  build(edited, false);
  size_t marks = 0;
  for (vcode::Insn& in : edited.function().code)
    if (in.op == vcode::Op::Xor && (in.flags & vcode::kImm)) in.flags |= vcode::kOwnedImm, ++marks;
  edited.function().verified = false;
  ASSERT_EQ(marks, 1u);
  EXPECT_THROW(Handler(edited, t.server(), t.options()), Error);
  EXPECT_THROW(Handler(edited, t.server(), unhardened), Error);  // not exempt unhardened either
}

}  // namespace
}  // namespace exojit::ash::examples
