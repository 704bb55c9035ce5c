// SPDX-License-Identifier: MIT
// An installed ASH: a handler program verified, sandboxed (ash/README.md) and compiled for one
// environment, run by the kernel on every message its filter accepts (runtime::MessageHandler).
//
//   ash::Handler h(builder, env, {.region = {0x20000000, 1 << 20}});   // refused: exojit::Error
//   kernel.install_handler(env, cap, filter, &h, &nic);                // replies go out on nic
//
// The region is the part of the environment's address space the handler may touch; within it
// only mapped pages with the right access succeed. Translations are cached in a software TLB
// (page -> host frame) rebuilt whenever the environment's page table changes.
//
// The kernel may run the handler on several receive queues' threads at once (concurrent()):
// every lane (runtime/plugins.h) has its own run state -- software TLB, budget, reply buffer,
// pipe registers, counters -- and counters() sums them.
//
// Outcomes: commit (the message is consumed) or abort — voluntary (abort()), budget (the
// instruction budget ran out), fault (a memory or message access out of bounds, an unmapped or
// forbidden page, a division by zero) — after which the kernel delivers the message to the
// environment's ring as if there were no handler. The counters tell which.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "exojit/ash/builder.h"
#include "exojit/runtime/environment.h"
#include "exojit/runtime/plugins.h"
#include "exojit/vcode/code.h"

namespace exojit::ash {

enum class Sandbox : uint8_t {
  Checked,  // every application access translated and checked (the default)
  Trusted,  // no memory checks ([ASH96], 5.2's comparison): the region must be one host block
};

enum class Engine : uint8_t { Native, Interpreter };

struct Region {
  uint64_t va = 0;   // page aligned
  uint64_t len = 0;  // bytes, at most kMaxRegion
};
inline constexpr uint64_t kMaxRegion = uint64_t(64) << 20;
// The most HandlerOptions::max_locals may allow. Locals live in the kernel's stack frame, and
// a frame must not be able to step over the stack's guard page (one 4 KiB page: a larger one
// moves the stack pointer past it, into whatever is mapped below, with no fault).
inline constexpr uint32_t kMaxLocalsLimit = 2048;
// The most HandlerOptions::max_insns may allow: the sandbox bounds a handler's side tables
// (labels, registers, call arguments) by it before anything is allocated by their counts.
inline constexpr uint32_t kMaxInsnsLimit = 1u << 16;
// The most HandlerOptions::budget an environment may choose without the root capability. Every
// environment's unmap, protect and revoke waits for the handler runs in progress (a grace
// period), so the length of one environment's run bounds how long it can hold up another's
// kernel calls: 2^24 vcode instructions, milliseconds of a core. Beyond it, installing the
// handler needs root (Handler::binding).
inline constexpr int64_t kMaxUnprivilegedBudget = int64_t(1) << 24;

struct HandlerOptions {
  Region region;
  int64_t budget = 1 << 16;  // vcode instructions per message (pipe loops by iteration); past
                             // kMaxUnprivilegedBudget, installing needs the root capability
  Sandbox sandbox = Sandbox::Checked;
  Engine engine = Engine::Native;
  uint32_t max_replies = 4;   // per message; more are refused (reply floods)
  uint32_t max_locals = 256;  // bytes of stack locals (stack abuse is refused at install),
                              // at most kMaxLocalsLimit
  uint32_t max_insns = 4096;  // handler size (its straight-line cost bound), at most
                              // kMaxInsnsLimit
  // Hardening (README "Threat model"): constants blinded (JIT spraying) and every checked
  // access's offset masked after its check (Spectre v1). Off only for measurement: like
  // Sandbox::Trusted, an unhardened handler needs the root capability to install.
  bool harden = true;
};

struct HandlerCounters {
  uint64_t runs = 0;
  uint64_t committed = 0;
  uint64_t aborted_voluntary = 0;
  uint64_t aborted_budget = 0;
  uint64_t aborted_fault = 0;
  uint64_t replies_sent = 0;
  uint64_t replies_refused = 0;
  uint64_t tlb_rebuilds = 0;
};

// How a lane's last run ended (Handler::last_outcome()).
enum class Outcome : uint8_t { Committed, Aborted, Budget, Fault };

class Handler : public runtime::MessageHandler {
 public:
  // Verifies, lowers and compiles `program` for `env`. A refused program (indirect jumps,
  // floats, calls other than primitives, too many locals, a bad region) is an exojit::Error.
  Handler(const HandlerBuilder& program, runtime::Environment& env, const HandlerOptions& options);
  ~Handler() override;
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  runtime::HandlerVerdict handle(runtime::HandlerContext& context,
                                 const runtime::Message& message) override;
  // The environment given at construction, unchecked for Sandbox::Trusted: the kernel installs
  // the handler for that environment only (Kernel::install_handler).
  Binding binding() const override;

  // Runs on every lane at once (runtime/plugins.h): its run state (software TLB, pipe
  // registers, counters) is per lane, made on the lane's first run (lane 0 at construction).
  bool concurrent() const override { return true; }

  // The lanes' counters summed: exact once the runs counted have returned (each lane's own are
  // written by its delivering thread alone; a sum taken while runs go on is a snapshot).
  HandlerCounters counters() const;
  // How the last run on `lane` ended (HandlerContext::lane(); 0 for a kernel with one
  // single-queue NIC and for a HandlerContext made without one); Committed before any run.
  Outcome last_outcome(uint32_t lane = 0) const;
  // The straight-line cost charged at entry (instructions of the lowered handler).
  uint32_t static_cost() const;
  // What was generated: the sandboxed vcode (function "<name>") and its machine code (empty with
  // Engine::Interpreter), and the compiled pipe lists.
  const vcode::Module& lowered() const;
  const vcode::Code& code() const;
  std::string listing() const;  // the lowered vcode as text

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace exojit::ash
