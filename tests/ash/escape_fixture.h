// SPDX-License-Identifier: MIT
// The gtest fixture of the escape and attack tests (not of the fuzz target, which has no gtest).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "escape_machine.h"
#include "exojit/error.h"

namespace exojit::ash::testing {

// A test on the escape machine, natively or interpreted (the parameter): runs and refusals check
// that memory outside the attacker's writable pages is unchanged.
class EscapeTest : public ::testing::TestWithParam<Engine> {
 public:
  EscapeMachine m;
  std::vector<uint8_t> msg = std::vector<uint8_t>(64, 0x11);

  HandlerOptions options() const { return m.options(GetParam()); }

  // Installs `h` on the attacker, runs it, checks that memory outside its writable pages is
  // unchanged, and returns the outcome.
  Outcome run(const HandlerBuilder& h, HandlerOptions o) {
    Handler handler(h, m.attacker, o);
    Outcome out = m.run(handler, msg);
    EXPECT_EQ(m.intact(), "");
    return out;
  }
  Outcome run(const HandlerBuilder& h) { return run(h, options()); }

  // The program must be refused at install, with an exojit::Error (never a crash).
  void expect_refused(const HandlerBuilder& h, HandlerOptions o) {
    EXPECT_THROW(Handler(h, m.attacker, o), Error);
    EXPECT_EQ(m.intact(), "");
  }
  void expect_refused(const HandlerBuilder& h) { expect_refused(h, options()); }

  uint8_t app(uint64_t va) { return EscapeMachine::host(m.attacker, va)[0]; }
};

}  // namespace exojit::ash::testing
