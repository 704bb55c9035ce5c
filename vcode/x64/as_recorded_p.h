// SPDX-License-Identifier: MIT
// Lowering as the builder records, on x86-64 (private to x64/; the interface is
// ../src/as_recorded_p.h): the X64Emitter fed the records as the builder makes them, each by
// the builder's call that made it (lower_last, one function per opcode: no dispatch on the
// opcode), started over when the frame the records lay out changes.
#pragma once

#include <atomic>
#include <optional>
#include <vector>

#include "../src/as_recorded_p.h"
#include "emitter_p.h"

namespace exojit::vcode::detail {

// What Function::recorded holds: the code, and copies of everything its bytes depend on.
struct RecordedCode {
  X64Features features;
  bool blinded = false;
  std::vector<Insn> records;
  std::vector<RegInfo> regs;
  std::vector<LocalInfo> locals;
  std::vector<Reg> params;
  Signature sig;
  std::vector<Extern> externs;  // the module's C functions (calls load their addresses)
  x64::Frame frame;
  MachineCode code;
  std::atomic<bool> taken{false};  // installed once: a blinded key serves one compilation
};

class RecordLowering {
 public:
  RecordLowering(const Module& m, const X64Features& features, std::optional<BlindKey> key)
      : m_(m), features_(features), key_(key) {}

  // Lowers the records not lowered yet (each builder call that records does, see lower_last).
  void lower(const Function& f) {
    const size_t n = f.code.size();
    if (lowered_ > n) fail("records were taken away");  // (not through the builder)
    if (f.regs.size() != regs_ || f.locals.size() != locals_ ||
        (f.op_mask & kFrameOps) != frame_ops_) [[unlikely]]
      frame_may_change(f);
    e_->lower_recorded_range(f, lowered_, n);
    lowered_ = n;
  }

  std::shared_ptr<RecordedCode> finish(const Function& f) {
    lower(f);
    if (!(x64::frame_layout(f, x64::ops_of(f), features_.avx2) == e_->frame())) {
      start_over();  // (a frame fact the change test does not see, e.g. records edited)
      lower(f);
    }
    auto rc = std::make_shared<RecordedCode>();
    rc->features = features_;
    rc->blinded = key_.has_value();
    rc->records = f.code;
    rc->regs = f.regs;
    rc->locals = f.locals;
    rc->params = f.params;
    rc->sig = f.sig;
    rc->externs = m_.externs();
    rc->frame = e_->frame();
    rc->code = e_->recorded_function(f);
    return rc;
  }

  // The emitter, when everything but f's last record is lowered and nothing that lays out the
  // frame changed since (else null: lower() then sees to it).
  [[gnu::always_inline]] x64::X64Emitter* ready_for_last(const Function& f) {
    if (lowered_ + 1 == f.code.size() && f.regs.size() == regs_ && f.locals.size() == locals_ &&
        (f.op_mask & kFrameOps) == frame_ops_ && e_) [[likely]]
      return &*e_;
    return nullptr;
  }
  void lowered_last(const Function& f) { lowered_ = f.code.size(); }
  bool blinds() const { return key_.has_value(); }

 private:
  // The opcodes whose presence changes the frame (x64::frame_layout).
  static constexpr uint64_t kFrameOps =
      uint64_t(1) << unsigned(Op::Call) | uint64_t(1) << unsigned(Op::Div) |
      uint64_t(1) << unsigned(Op::Mod) | uint64_t(1) << unsigned(Op::Hsum);

  // A register, a local or a frame opcode appeared: if the frame is not the one the code so far
  // was lowered with, lower every record again with the new one.
  void frame_may_change(const Function& f) {
    regs_ = f.regs.size();
    locals_ = f.locals.size();
    frame_ops_ = f.op_mask & kFrameOps;
    if (e_ && x64::frame_layout(f, x64::ops_of(f), features_.avx2) == e_->frame()) return;
    start_over();
  }
  void start_over() {
    e_.emplace(m_, features_);
    if (key_) e_->blind_constants(*key_);
    lowered_ = 0;
  }

  const Module& m_;
  X64Features features_;
  std::optional<BlindKey> key_;
  std::optional<x64::X64Emitter> e_;
  size_t lowered_ = 0;
  // What the frame was last laid out from.
  size_t regs_ = ~size_t(0), locals_ = 0;
  uint64_t frame_ops_ = 0;
};

}  // namespace exojit::vcode::detail
