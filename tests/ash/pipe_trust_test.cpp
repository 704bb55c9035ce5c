// SPDX-License-Identifier: MIT
// A handler's pipe lists cross the trust boundary as data (README "Threat model"): their bodies
// are the attacker's vcode functions, checked once when a pipe is added to a list. An attacker
// who kept a pointer to a body's records (the PipeBody's function(), legitimately its own while
// it defines the pipe) may edit them afterwards -- before the handler is installed, or after,
// before a lane's first run compiles the lists again. The sandbox must install what it checked,
// from the records alone: an edited body is refused with an exojit::Error, never a crash of the
// kernel, and nothing edited after install reaches a lane.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "escape_fixture.h"
#include "exojit/error.h"
#include "exojit/pipes/library.h"

namespace exojit::ash::testing {
namespace {

using vcode::Type;

class PipeTrust : public EscapeTest {};

// A handler that consumes its message to the region through one pipe list whose body (a 32-bit
// pipe with a temporary and a persistent register) is returned for editing.
struct EditableHandler {
  HandlerBuilder h{"pipe_trust"};
  vcode::Function* body = nullptr;

  EditableHandler() {
    pipes::PipeList pl;
    pl.add("p", 32, pipes::kPlain, [&](pipes::PipeBody& p) {
      body = &p.function();  // kept past add(): the attacker's own records
      Reg acc = p.persistent(Type::U32, "acc", 7);
      Reg t = p.getreg(Type::U32, RegClass::Temp);
      p.add(t, p.input(), acc);
      p.xor_(p.input(), t, int64_t(0x5a5a5a5a));
      p.add(acc, acc, 1);
    });
    int list = h.add_pipes(std::move(pl));
    int ref = h.pipe_ref(list, 0, "acc");
    Reg n = h.getreg(Type::U64, RegClass::Var), acc = h.getreg(Type::U64, RegClass::Var);
    h.remaining(n);
    h.consume(int64_t(EscapeMachine::kApp), n, list);
    h.pipe_get(acc, ref);
    h.commit();
    h.finish();
  }
};

// The edits: each breaks an assumption the pipe compiler makes of a checked body.
const std::vector<std::pair<std::string, std::function<void(vcode::Function&)>>>& edits() {
  static const std::vector<std::pair<std::string, std::function<void(vcode::Function&)>>> e = {
      {"no_parameters", [](vcode::Function& f) { f.params.clear(); }},
      {"parameter_out_of_range", [](vcode::Function& f) { f.params[0].id = 1u << 30; }},
      {"no_registers", [](vcode::Function& f) { f.regs.clear(); }},
      {"registers_truncated", [](vcode::Function& f) { f.regs.resize(1); }},
      {"temporary_made_a_vector", [](vcode::Function& f) { f.regs.back().type = Type::V4U32; }},
      {"temporary_made_a_float", [](vcode::Function& f) { f.regs.back().type = Type::F64; }},
      {"input_made_a_vector",
       [](vcode::Function& f) { f.regs[f.params[0].id].type = Type::V8U32; }},
      {"input_widened", [](vcode::Function& f) { f.regs[f.params[0].id].type = Type::U64; }},
      {"persistent_made_a_float", [](vcode::Function& f) { f.regs[1].type = Type::F32; }},
  };
  return e;
}

// Each edit used to crash the kernel at install (the pipe compiler indexed the body's registers
// by the edited records): now refused, and the unedited handler still installs and runs.
TEST_P(PipeTrust, BodyEditedAfterAddIsRefused) {
  for (const auto& [name, edit] : edits()) {
    SCOPED_TRACE(name);
    EditableHandler e;
    ASSERT_NE(e.body, nullptr);
    edit(*e.body);
    expect_refused(e.h);
  }
  EditableHandler e;
  EXPECT_EQ(run(e.h), Outcome::Committed);
}

// Installed, then edited: a lane's first run compiles the lists again (every lane has its own
// persistent registers), and must compile what was checked at install, not the edited body.
TEST_P(PipeTrust, BodyEditedAfterInstallDoesNotReachANewLane) {
  for (const auto& [name, edit] : edits()) {
    SCOPED_TRACE(name);
    EditableHandler e;
    Handler handler(e.h, m.attacker, options());
    EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
    std::vector<uint8_t> lane0(EscapeMachine::host(m.attacker, EscapeMachine::kApp),
                               EscapeMachine::host(m.attacker, EscapeMachine::kApp) + msg.size());
    edit(*e.body);
    std::memset(EscapeMachine::host(m.attacker, EscapeMachine::kApp), 0, msg.size());
    HandlerContext ctx(m.kernel, m.attacker, m.nic, true, 1);
    handler.handle(ctx, Message{msg.data(), uint32_t(msg.size()), 1});
    EXPECT_EQ(handler.last_outcome(1), Outcome::Committed);
    const uint8_t* app = EscapeMachine::host(m.attacker, EscapeMachine::kApp);
    EXPECT_EQ(std::vector<uint8_t>(app, app + msg.size()), lane0)
        << "lane 1 ran another pipe body than lane 0";
    EXPECT_EQ(m.intact(), "");
  }
}

// The installed handler owns what it runs: its builder (records, sites, pipe lists, their
// bodies) edited or destroyed after install reaches neither lane 0 nor a lane made later.
TEST_P(PipeTrust, HandlerOutlivesItsBuilder) {
  auto e = std::make_unique<EditableHandler>();
  Handler handler(e->h, m.attacker, options());
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  const uint8_t* app = EscapeMachine::host(m.attacker, EscapeMachine::kApp);
  const std::vector<uint8_t> lane0(app, app + msg.size());
  // The records edited into a handler that aborts at once, then everything freed.
  for (vcode::Insn& x : e->h.function().code) {
    x.op = vcode::Op::Ret;
    x.flags = vcode::kImm;
    x.imm = 0;
  }
  e.reset();
  for (uint32_t lane : {0u, 1u, 2u}) {
    SCOPED_TRACE(lane);
    std::memset(EscapeMachine::host(m.attacker, EscapeMachine::kApp), 0, msg.size());
    HandlerContext ctx(m.kernel, m.attacker, m.nic, true, lane);
    handler.handle(ctx, Message{msg.data(), uint32_t(msg.size()), 1});
    EXPECT_EQ(handler.last_outcome(lane), Outcome::Committed);
    EXPECT_EQ(std::vector<uint8_t>(app, app + msg.size()), lane0);
  }
  EXPECT_EQ(m.intact(), "");
}

INSTANTIATE_TEST_SUITE_P(Engines, PipeTrust, ::testing::Values(Engine::Native, Engine::Interpreter),
                         [](const ::testing::TestParamInfo<Engine>& i) {
                           return i.param == Engine::Native ? "Native" : "Interpreter";
                         });

}  // namespace
}  // namespace exojit::ash::testing
