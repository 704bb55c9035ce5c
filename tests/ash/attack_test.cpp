// SPDX-License-Identifier: MIT
// Attacks on the sandbox by an outside reviewer (each one a handler an attacker could install),
// run natively and in the interpreter on the escape machine (escape_machine.h): memory outside
// the attacker's writable region pages and the host canaries must be unchanged after every run,
// and a bad handler must be refused with an exojit::Error or aborted with exact counters.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>

#include <climits>
#include <cstring>

#include "escape_machine.h"
#include "exojit/error.h"

namespace exojit::ash::testing {
namespace {

using vcode::Insn;
using vcode::Op;
using vcode::Type;

constexpr uint64_t kApp = EscapeMachine::kApp;

class Attack : public ::testing::TestWithParam<Engine> {
 public:
  EscapeMachine m;
  std::vector<uint8_t> msg = std::vector<uint8_t>(64, 0x11);

  HandlerOptions options() const { return m.options(GetParam()); }

  Outcome run(const HandlerBuilder& h, HandlerOptions o) {
    Handler handler(h, m.attacker, o);
    Outcome out = m.run(handler, msg);
    EXPECT_EQ(m.intact(), "");
    return out;
  }
  Outcome run(const HandlerBuilder& h) { return run(h, options()); }
  uint8_t app(uint64_t va) { return EscapeMachine::host(m.attacker, va)[0]; }
};

// -- Stack clash ------------------------------------------------------------------------------
// The handler's locals live in the kernel's stack frame, and the attacker chooses the
// HandlerOptions (README, "Threat model"), max_locals included. A frame larger than the stack's
// guard page moves the stack pointer past the guard and into whatever is mapped below: the
// zeroing of the locals at entry, then the handler's own stores, land there. Here the stack is
// the top of a buffer whose lower part is a canary: it must stay untouched (or the handler be
// refused at install).
struct StackRun {
  Handler* handler;
  EscapeMachine* m;
  std::vector<uint8_t>* msg;
};

void* run_on_stack(void* p) {
  auto* r = static_cast<StackRun*>(p);
  r->m->run(*r->handler, *r->msg);
  return nullptr;
}

TEST_P(Attack, HugeLocalsDoNotReachBelowTheStack) {
  constexpr size_t kStack = 1 << 20, kBelow = 3 << 20, kLocal = 3 << 19;  // 1.5 MiB local
  HandlerBuilder h("stack_clash");
  vcode::Local big = h.local(kLocal, 8);
  Reg v = h.getreg(Type::U64, RegClass::Var);
  h.set(v, 0x4141414141414141);
  h.st(v, big, 0);
  h.st(v, big, kLocal / 2);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.max_locals = 4u << 20;
  o.budget = int64_t(1) << 24;
  std::unique_ptr<Handler> handler;
  try {
    handler = std::make_unique<Handler>(h, m.attacker, o);
  } catch (const Error&) {
    EXPECT_GT(o.max_locals, kMaxLocalsLimit);  // refused at install: the sandbox holds
    return;
  }
  void* block =
      mmap(nullptr, kStack + kBelow, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  auto* below = static_cast<uint8_t*>(block);
  std::memset(below, 0xcc, kBelow);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, below + kBelow, kStack);
  StackRun r{handler.get(), &m, &msg};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, run_on_stack, &r), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  size_t changed = 0;
  for (size_t i = 0; i < kBelow; ++i) changed += below[i] != 0xcc;
  munmap(block, kStack + kBelow);
  EXPECT_EQ(changed, 0u) << "the handler's frame reached below its stack";
  EXPECT_EQ(m.intact(), "");
}

TEST_P(Attack, MaxLocalsAboveTheLimitIsRefusedEvenForSmallLocals) {
  HandlerBuilder h("small");
  vcode::Local l = h.local(8, 8);
  Reg v = h.getreg(Type::U64, RegClass::Var);
  h.ld(v, l, 0);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.max_locals = kMaxLocalsLimit;
  EXPECT_EQ(run(h, o), Outcome::Committed);
  o.max_locals = kMaxLocalsLimit + 1;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
  o.max_locals = UINT32_MAX;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
}

INSTANTIATE_TEST_SUITE_P(Engines, Attack, ::testing::Values(Engine::Native, Engine::Interpreter),
                         [](const auto& p) {
                           return p.param == Engine::Native ? "native" : "interp";
                         });

}  // namespace
}  // namespace exojit::ash::testing
