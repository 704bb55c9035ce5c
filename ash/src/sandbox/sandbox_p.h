// SPDX-License-Identifier: MIT
// The sandbox: checks a handler program against the ASH rules and lowers it to a vcode function
// that can run in the kernel ([ASH96], 3.3). Private to ash/.
//
// Refused at install (exojit::Error): indirect jumps (jmpr, la), floating point and vectors,
// calls other than the primitives (extern calls to anything else, calls to functions),
// addresses of locals (addrl), locals larger than the limit (stack abuse), returns other than
// commit/abort, any use of the reserved registers, divisions by the constant 0, handlers larger
// than the instruction limit.
//
// Rewritten (every one is generated code, no call unless said):
//   loads/stores through a register  -> the application address is checked against the region,
//       translated through the software TLB (one entry per page, 0 when the page is not mapped
//       with the access) and performed unaligned; an access straddling two pages needs both
//       pages host-contiguous (else it aborts);  Trusted: base + a constant delta, no checks;
//   loads/stores of locals            -> unaligned forms (offsets were checked by the verifier);
//   div/mod by a register             -> a zero divisor aborts (fault); -1 is negation / 0 for
//       signed types (INT_MIN / -1 traps on x86);
//   labels that are targets of back edges -> the budget is charged the loop's size per pass;
//   inline primitives                 -> bounds-checked loads of the message (the run state
//       holds the message, its length and the cursor);
//   call primitives                   -> one call to ash_call (handler.cpp) with the site.
// Returns: 1 commit, 0 voluntary abort, 2 fault, 3 budget exhausted.
#pragma once

#include <cstddef>
#include <cstdint>

#include "exojit/ash/builder.h"
#include "exojit/vcode/ir.h"

namespace exojit::runtime {
class HandlerContext;
}

namespace exojit::ash {

inline constexpr uint32_t kRetAbort = 0, kRetCommit = 1, kRetFault = 2, kRetBudget = 3;
inline constexpr uint32_t kMaxReply = 2048;

struct Lane;

// The run-time state a lowered handler reads through its state register. Software TLBs
// follow it in the same block (offsets in LowerOptions).
struct RunState {
  const uint8_t* msg;
  uint64_t msg_len;
  uint64_t cursor;
  int64_t budget;
  const Site* site;  // the call primitive being run
  uint64_t result;   // a call primitive's value
  Lane* lane;        // the run state's owner (handler.cpp): one per delivery lane
  runtime::HandlerContext* ctx;
  uint32_t reply_len;
  uint32_t replies;
  uint8_t reply[kMaxReply];
};

// The single C entry point of call primitives: runs s->site with up to three operands.
// Returns 0 to go on, or kRetFault / kRetBudget to abort.
extern "C" uint32_t exojit_ash_call(RunState* s, uint64_t a, uint64_t b, uint64_t c);

struct LowerOptions {
  bool trusted = false;
  bool harden = true;  // mask every checked offset after its check (bound_mask)
  uint64_t region_va = 0, region_len = 0;
  int64_t trusted_delta = 0;            // host address - virtual address (Trusted)
  int64_t tlb_read = 0, tlb_write = 0;  // offsets of the software TLBs from the state
  const Site* sites = nullptr;          // the sites the call primitives point at (kept alive)
  uint32_t max_locals = 256;
  uint32_t max_insns = 4096;
};

struct Lowered {
  vcode::Module module;  // one function, the handler's name, u32(p state)
  uint32_t static_cost = 0;
};

Lowered lower(const HandlerBuilder& program, const LowerOptions& options);

}  // namespace exojit::ash
