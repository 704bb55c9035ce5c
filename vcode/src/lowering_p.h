// SPDX-License-Identifier: MIT
// The skeleton every back end shares (private header): the walk over a module's functions and
// each function's records, the mapping of register slots to machine registers, labels, and the
// capture of errors, which become an exojit::Error naming the function, the instruction and the
// target ("@f: instruction 12 `add %r1, %r2, 3`: x86-64: ...").
//
// A back end derives from Lowering<Self, Label> (CRTP: the calls below are resolved at compile
// time), Label being its assembler's label type, and provides:
//   static constexpr Target kTarget;           and the machine numbers of the register slots:
//   static constexpr uint8_t kIntTemp[kIntTemps], kIntVar[kIntVars], kFloatVarBase;
//   Label new_label();  void bind(Label);  size_t offset();  (bytes emitted so far)
//   void begin_record();                        before each record (and the prologue): room
//   void layout_frame();  void prologue();  void insn(const Insn&);  void end_function();
//   bool failed();  std::string error();       the assembler's sticky error, checked per record
// and, for constant blinding (blinding_p.h):
//   static constexpr uint8_t kBlindReg;        a register no lowering of a register form clobbers
//                                               before reading its operands
//   void load_blinded(uint64_t v, const BlindKey&);  kBlindReg = v, from v ^ key and one xor
//   void float_from_blinded(const Insn& set);  a float set from the bits in kBlindReg
// and optionally
//   bool blinded_equality(const Insn& branch, const BlindKey&);  a beq/bne on a blinded constant
//                                               in fewer instructions (false: not this one)
//   template <bool kBlind> void insn(const Insn&);  insn<true>: the blinded walk's dispatch, which
//                                               hides the common records' constants itself and
//                                               hands the rest to insn_blinded (one dispatch a
//                                               record instead of two)
//
// Everything a record lowers to is emitted inside the one loop of lower_function(): the place
// where a line table (machine offset -> record) or any other per-record bookkeeping belongs: with
// debug notes (debug/notes_p.h), the skeleton notes where each record's code starts, and the
// back ends note how their prologue and epilogue move the stack.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "backend_p.h"
#include "blinding_p.h"
#include "debug/notes_p.h"
#include "exojit/error.h"
#include "exojit/vcode/code.h"
#include "verify_p.h"

namespace exojit::vcode::detail {

template <typename Self, typename LabelT>
class Lowering {
 public:
  explicit Lowering(const Module& m, CodeNotes* notes = nullptr) : m_(m), notes_(notes) {}

  // Lowers every function (labels for every entry first, so calls can go forward). Throws
  // exojit::Error on the first error.
  void lower_module() {
    Self& self = static_cast<Self&>(*this);
    // Every label of the module at once, where the back end's assembler can take a count (its
    // table then grows once, not at each doubling).
    if constexpr (requires { self.reserve_labels(size_t{}); }) {
      size_t n = 2 * m_.functions().size();
      for (const auto& f : m_.functions()) n += f->num_labels;
      self.reserve_labels(n);
    }
    entries_.reserve(m_.functions().size());
    for (size_t i = 0; i < m_.functions().size(); ++i)
      entries_.push_back(Entry{self.new_label(), self.new_label()});
    for (size_t i = 0; i < m_.functions().size(); ++i) lower_function(*m_.functions()[i], i);
  }

  // Blinds the client's immediates with a fresh key (blinding_p.h). Before lower_module().
  void blind_constants(const BlindKey& key) {
    blind_ = true;
    key_ = key;
  }

 protected:
  struct Entry {
    LabelT begin, end;
  };

  void lower_function(const Function& f, size_t index) {
    Self& self = static_cast<Self&>(*this);
    f_ = &f;
    labels_.clear();
    labels_.reserve(f.num_labels);
    for (uint32_t i = 0; i < f.num_labels; ++i) labels_.push_back(self.new_label());
    map_registers();
    size_t at = kBeforeCode;  // where an error is reported
    try {
      self.layout_frame();
      self.bind(entries_[index].begin);
      self.begin_record();
      if (notes_) notes_->begin_function(self.offset());
      self.prologue();
      check(self, at);
      if (blind_)
        notes_ ? lower_records<true, true>(self, f, at) : lower_records<false, true>(self, f, at);
      else if (!notes_)
        lower_records<false, false>(self, f, at);
      else
        lower_records<true, false>(self, f, at);
      at = kAfterCode;
      self.bind(entries_[index].end);
      self.end_function();
      check(self, at);
    } catch (const Error& e) {
      if (e.what()[0] == '@') throw;  // already names the function
      report(at, e.what());
    }
  }

  // The walk over the records (a loop of its own with debug notes or blinding: the usual one
  // stays as tight).
  template <bool kNotes, bool kBlind>
  void lower_records(Self& self, const Function& f, size_t& at) {
    for (size_t i = 0, n = f.code.size(); i < n; ++i) {
      at = i;
      self.begin_record();
      if constexpr (kNotes) notes_->record(self.offset(), i);
      if constexpr (!kBlind)
        self.insn(f.code[i]);
      else if constexpr (requires { self.template insn<true>(f.code[i]); })
        self.template insn<true>(f.code[i]);  // the back end's own blinded dispatch
      else
        insn_blinded(self, f.code[i]);
      if (self.failed()) [[unlikely]]
        check(self, i);
    }
  }

  // Constant blinding (blinding_p.h): a record with an immediate to blind becomes its register
  // form, the register being the hidden one (the back end's kBlindReg), which the back end loads
  // first with `imm ^ key` and one xor (load_blinded). Memory displacements become an index
  // (added to the record's own index, if any); a set becomes a mov (a splat for vectors; floats
  // through the back end's float_from_blinded). A constant marked kOwnedImm stays as it is.
  void insn_blinded(Self& self, const Insn& in) {
    // Nothing to hide when the immediate field holds 0..127 (register forms hold 0; such a
    // constant or displacement is one byte in every type, a float's bits at most one nonzero
    // byte), or the constant is the client's own (kOwnedImm, ir.h): the record goes straight to
    // the back end, one dispatch as without blinding.
    if (uint64_t(in.imm) < 128 || (in.flags & kOwnedImm)) [[likely]]
      return self.insn(in);
    Insn x = in;
    // An integer operation's immediate (kImm) is hidden as its type holds it.
    const bool int_operand = (in.flags & kImm) && is_int(in.type) && hides_operand(in);
    if constexpr (requires { self.blinded_equality(in, key_); }) {
      if ((in.op == Op::Beq || in.op == Op::Bne) && int_operand && self.blinded_equality(in, key_))
        return;
    }
    switch (form_of(in.op)) {
      case Form::Binary:
      case Form::Branch:
        // Shift counts are taken modulo the width: their encoding is one byte.
        if (in.op != Op::Lsh && in.op != Op::Rsh && int_operand) x = with_hidden_operand(self, in);
        break;
      case Form::Return:
        if (int_operand) x = with_hidden_operand(self, in, &Insn::a);
        break;
      case Form::SetImm:
        if (is_float(in.type)) {
          uint64_t bits = uint64_t(in.imm);
          if (in.type == Type::F32)
            bits = std::bit_cast<uint32_t>(float(std::bit_cast<double>(bits)));
          if (bits == 0) break;  // xorps: no immediate
          hide(self, Type::U64, bits);
          return self.float_from_blinded(in);
        }
        if (!needs_blinding(in.imm)) break;
        if (is_vector(in.type)) {
          x.a = hide(self, Type::U64, uint64_t(in.imm));
          x.op = Op::Splat;
        } else {
          x.a = hide(self, in.type, register_value(in.type, in.imm));
          x.op = Op::Mov;
        }
        x.flags = 0;
        x.imm = 0;
        break;
      case Form::Load:
      case Form::Store:
        if (hides_displacement(in)) x = with_hidden_displacement(self, in);
        break;
      default:
        break;
    }
    self.insn(x);
  }

  // Loads the hidden register with v (of type t) from v ^ key; returns the hidden register.
  [[gnu::always_inline]] uint32_t hide(Self& self, Type t, uint64_t v) {
    blind_info_.type = t;
    self.load_blinded(v, key_);
    return blind_reg_;
  }

  // What blinding hides (unless the client owns the constant): an integer operand's immediate as
  // its type holds it, a load's or store's displacement.
  static bool hides_operand(const Insn& in) {
    return !(in.flags & kOwnedImm) && needs_blinding(normalize_imm(in.type, in.imm));
  }
  static bool hides_displacement(const Insn& in) {
    return !(in.flags & kOwnedImm) && needs_blinding(in.imm);
  }
  // The record with the hidden register, loaded first, in place of its constant: the operand
  // named by `field` (b of a binary or branch record, a of a return), or the displacement as an
  // index (added to the record's own index, if any).
  [[gnu::always_inline]] Insn with_hidden_operand(Self& self, const Insn& in,
                                                  uint32_t Insn::*field = &Insn::b) {
    Insn x = in;
    x.*field = hide(self, in.type, register_value(in.type, in.imm));
    x.flags = uint8_t(x.flags & ~kImm);
    return x;
  }
  [[gnu::always_inline]] Insn with_hidden_displacement(Self& self, const Insn& in) {
    Insn x = in;
    x.b = hide(self, Type::P, uint64_t(in.imm));
    if (in.flags & kIndex) {  // hidden += index
      Insn add{};
      add.op = Op::Add;
      add.type = Type::P;
      add.dst = add.a = blind_reg_;
      add.b = in.b;
      self.insn(add);
    }
    x.flags = uint8_t(x.flags | kIndex);
    x.imm = 0;
    return x;
  }

  // The machine register of each vcode register, computed once per function.
  void map_registers() {
    phys_.resize(f_->regs.size() + (blind_ ? 1 : 0));
    blind_reg_ = uint32_t(f_->regs.size());
    if (blind_) phys_[blind_reg_] = Self::kBlindReg;
    for (size_t r = 0; r < f_->regs.size(); ++r) {
      const RegInfo& ri = f_->regs[r];
      if (in_float_file(ri.type))
        phys_[r] = uint8_t(ri.cls == RegClass::Temp ? ri.slot : Self::kFloatVarBase + ri.slot);
      else
        phys_[r] = ri.cls == RegClass::Temp ? Self::kIntTemp[ri.slot] : Self::kIntVar[ri.slot];
    }
  }

  // Whether the function has an instruction of opcode `op` (from the builder's op_mask, or a
  // scan when the function was made without one).
  bool uses(Op op) const {
    uint64_t ops = f_->op_mask;
    if (ops == 0)
      for (const Insn& in : f_->code) ops |= uint64_t(1) << unsigned(in.op);
    return (ops >> unsigned(op) & 1) != 0;
  }

  LabelT label(uint32_t vcode_label) const { return labels_[vcode_label]; }
  const LabelT& entry(size_t function) const { return entries_[function].begin; }
  const std::vector<Entry>& entries() const { return entries_; }
  const RegInfo& info(uint32_t r) const { return r < blind_reg_ ? f_->regs[r] : blind_info_; }

  const Module& m_;
  CodeNotes* notes_;  // debug notes, when asked for
  const Function* f_ = nullptr;
  std::vector<uint8_t> phys_;
  // Constant blinding: the key, and the hidden register (the number after the function's last).
  bool blind_ = false;
  BlindKey key_{};
  uint32_t blind_reg_ = 0;
  RegInfo blind_info_{Type::U64, RegClass::Temp, 0};

 private:
  static constexpr size_t kBeforeCode = ~size_t(0), kAfterCode = ~size_t(0) - 1;

  void check(Self& self, size_t at) {
    if (self.failed()) report(at, self.error());
  }
  [[noreturn]] void report(size_t at, const std::string& why) {
    const std::string what = fmt::format("{}: {}", target_name(Self::kTarget), why);
    if (at == kBeforeCode) fail("@{}: {}", f_->name, what);
    if (at == kAfterCode) fail("@{}: after the last instruction: {}", f_->name, what);
    throw Error(insn_error(m_, *f_, at, what));
  }

  std::vector<Entry> entries_;
  std::vector<LabelT> labels_;
};

}  // namespace exojit::vcode::detail
