// SPDX-License-Identifier: MIT
// The builder records instructions into a Function, checking each one as it is made.
#include "exojit/vcode/builder.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "exojit/vcode/text.h"
#include "exojit/vcode/verify.h"
#include "verify_p.h"

namespace exojit::vcode {

namespace {
int pool_size(bool is_float_file, RegClass c) {
  if (is_float_file) return c == RegClass::Temp ? kFloatTemps : kFloatVars;
  return c == RegClass::Temp ? kIntTemps : kIntVars;
}
}  // namespace

Builder::Builder(Module& m, std::string name, Type ret, std::vector<Type> params,
                 std::vector<RegClass> param_classes)
    : module_(m) {
  if (!param_classes.empty() && param_classes.size() != params.size())
    fail("function @{}: {} parameter classes given for {} parameters", name, param_classes.size(),
         params.size());
  fn_ = &m.add_function(std::move(name), Signature{params, ret});
  fn_->code.reserve(256);
  fn_->regs.reserve(16);  // (most functions have fewer registers: no growth one by one)
  meta_.reserve(16);
  int next[2] = {0, 0};  // next ABI position per register file
  for (size_t i = 0; i < params.size(); ++i) {
    Type t = params[i];
    if (t == Type::Void) fail("function @{}: parameter {} has type void", fn_->name, i);
    if (is_vector(t))
      fail("function @{}: parameter {} is a vector; pass a pointer to it", fn_->name, i);
    bool fl = is_float(t);
    int pos = next[fl]++;
    if (pos >= (fl ? 8 : kMaxIntArgs))
      fail("function @{}: too many {} parameters (at most {})", fn_->name, fl ? "float" : "integer",
           fl ? 8 : kMaxIntArgs);
    RegClass c = param_classes.empty() ? RegClass::Temp : param_classes[i];
    Reg r;
    if (c == RegClass::Temp) {
      // A temporary parameter lives where the ABI puts it: slot = its position.
      used_slots_[fl][0] |= 1u << pos;
      r = Reg{uint32_t(fn_->regs.size())};
      fn_->regs.push_back(RegInfo{t, c, uint8_t(pos)});
      meta_.push_back(RegMeta{t, uint8_t(detail::slot_key(fn_->regs.back())), 1});
    } else {
      r = getreg(t, c);
    }
    fn_->params.push_back(r);
  }
  flow_.start(*fn_);
}

Reg Builder::arg(size_t i) const {
  if (i >= fn_->params.size())
    fail("function @{} has {} parameters; there is no argument {}", fn_->name, fn_->params.size(),
         i);
  return fn_->params[i];
}

Reg Builder::getreg(Type t, RegClass c) {
  if (t == Type::Void) fail("function @{}: getreg of type void", fn_->name);
  bool fl = in_float_file(t);
  uint32_t& used = used_slots_[fl][size_t(c)];
  int n = pool_size(fl, c);
  uint32_t free_mask = ~used & ((1u << n) - 1);
  if (free_mask == 0)
    fail("function @{}: out of {} {} registers (all {} in use); putreg one or spill to a local",
         fn_->name, fl ? "float" : "integer", c == RegClass::Temp ? "temporary" : "variable", n);
  int slot = std::countr_zero(free_mask);
  used |= 1u << slot;
  fn_->regs.push_back(RegInfo{t, c, uint8_t(slot)});
  meta_.push_back(RegMeta{t, uint8_t(detail::slot_key(fn_->regs.back())), 1});
  return Reg{uint32_t(fn_->regs.size() - 1)};
}

void Builder::putreg(Reg r) {
  live(r);
  const RegInfo& info = fn_->regs[r.id];
  used_slots_[in_float_file(info.type)][size_t(info.cls)] &= ~(1u << info.slot);
  meta_[r.id].alive = 0;
}

void Builder::name(Reg r, std::string n) {
  live(r);
  // Names must read back from a listing: a word, and not another register's default name.
  bool word = !n.empty() && !std::isdigit(uint8_t(n[0]));
  for (char c : n) word = word && (std::isalnum(uint8_t(c)) || c == '_' || c == '.');
  bool default_like =
      n.size() > 1 && n[0] == 'r' &&
      std::all_of(n.begin() + 1, n.end(), [](char c) { return std::isdigit(uint8_t(c)); });
  if (!word || default_like)
    fail("function @{}: bad register name '{}': letters, digits, '_' and '.', not r<number>",
         fn_->name, n);
  for (size_t i = 0; i < fn_->reg_names.size(); ++i)
    if (fn_->reg_names[i] == n && i != r.id)
      fail("function @{}: register name '{}' is taken", fn_->name, n);
  if (fn_->reg_names.size() < fn_->regs.size()) fn_->reg_names.resize(fn_->regs.size());
  fn_->reg_names[r.id] = std::move(n);
}

void Builder::not_live(Reg r) const {
  if (r.id >= fn_->regs.size())
    fail("function @{}, instruction {}: register {} does not exist", fn_->name, fn_->code.size(),
         r.valid() ? fmt::format("%r{}", r.id) : std::string("(none)"));
  fail("function @{}, instruction {}: register {} is used after putreg", fn_->name,
       fn_->code.size(), fn_->reg_label(r.id));
}

Label Builder::label() {
  return Label{fn_->num_labels++};
}

Label Builder::check_label(Label l) const {
  if (l.id >= fn_->num_labels)
    fail("function @{}, instruction {}: label {} was not made by this builder", fn_->name,
         fn_->code.size(), l.id);
  return l;
}

void Builder::place(Label l) {
  emit(Op::Place, Type::Void, 0, check_label(l).id, 0, 0, 0, true);
  if (!flow_.place(l.id, last())) {
    fn_->code.pop_back();
    fail("@{}: label {} placed twice", fn_->name, fn_->label_label(l.id));
  }
}

Local Builder::local(uint32_t size, uint32_t align) {
  if (size == 0 || align == 0 || (align & (align - 1)) || align > 16 || size > (1u << 24))
    fail("function @{}: bad local (size {}, align {}): size 1..16M, align a power of two <= 16",
         fn_->name, size, align);
  fn_->locals.push_back(LocalInfo{size, align});
  return Local{uint32_t(fn_->locals.size() - 1)};
}

void Builder::record(uint32_t head, uint32_t dst, uint32_t a, uint32_t b, int64_t imm) {
  static_assert(offsetof(Insn, op) == 0 && offsetof(Insn, type) == 1 &&
                offsetof(Insn, flags) == 2 && offsetof(Insn, reserved) == 3 &&
                offsetof(Insn, dst) == 4);
  fn_->op_mask |= uint64_t(1) << (head & 0xff);
  std::vector<Insn>& code = fn_->code;
  if (code.size() == code.capacity()) [[unlikely]]
    grow_code();
  // The room is there: lets the compiler leave emplace_back's own growth path out of this hot,
  // small function (which then needs no stack frame).
  if (code.size() == code.capacity()) __builtin_unreachable();
  Insn& in = code.emplace_back();
  std::memcpy(static_cast<void*>(&in), &head, 4);
  in.dst = dst;
  in.a = a;
  in.b = b;
  in.imm = imm;
}

// Four times larger: long functions are copied once or twice while they are recorded.
void Builder::grow_code() {
  fn_->code.reserve(4 * fn_->code.capacity() + 64);
}

void Builder::check_last() {
  try {
    check_insn(module_, *fn_, fn_->code.size() - 1);
  } catch (...) {
    fn_->code.pop_back();  // the function stays as it was before the bad call
    throw;
  }
}

void Builder::own_constant() {
  if (fn_->code.empty() || !carries_constant(fn_->code.back()))
    fail("function @{}: own_constant after {} instructions: the last one carries no constant",
         fn_->name, fn_->code.size());
  fn_->code.back().flags |= kOwnedImm;
}

void Builder::binary_checked(Op op, Reg d, Reg a, Reg b) {
  const Type t = live(d).type;
  const bool trusted = live(a).type == t && live(b).type == t && uniform_ok(op, t);
  emit(op, t, 0, d.id, a.id, b.id, 0, trusted);
  use(a.id), use(b.id), def(d.id);
}

void Builder::binary_checked(Op op, Reg d, Reg a, int64_t imm) {
  const Type t = live(d).type;
  const bool trusted =
      live(a).type == t && uniform_ok(op, t) && has_flag(op, kOpImmForm) && !in_float_file(t);
  emit(op, t, kImm, d.id, a.id, 0, normalize_imm(t, imm), trusted);
  use(a.id), def(d.id);
}

void Builder::unary_checked(Op op, Reg d, Reg a) {
  const Type t = live(d).type;
  const bool trusted = op == Op::Cvt ? !is_vector(t) && !is_vector(live(a).type)
                                     : (live(a).type == t && uniform_ok(op, t));
  emit(op, t, 0, d.id, a.id, 0, 0, trusted);
  use(a.id), def(d.id);
}

void Builder::mem_checked(Op op, Reg v, Reg base, Reg index, int64_t off) {
  const Type t = live(v).type;
  bool trusted = live(base).type == Type::P && (is_int(t) || (op != Op::Ldbe && op != Op::Stbe));
  uint8_t flags = 0;
  if (index.valid()) {
    trusted = trusted && detail::pointer_like(live(index).type);
    flags |= kIndex;
  }
  emit(op, t, flags, v.id, base.id, index.valid() ? index.id : 0, off, trusted);
  use(base.id);
  if (index.valid()) use(index.id);
  if (is_store(op))
    use(v.id);
  else
    def(v.id);
}

void Builder::set(Reg d, int64_t imm) {
  Type t = live(d).type;
  if (is_float(t)) return setf(d, double(imm));
  if (is_vector(t) && lane_bits(t) < 64) imm &= (int64_t(1) << lane_bits(t)) - 1;
  emit(Op::Set, t, kImm, d.id, 0, 0, normalize_imm(t, imm), true);
  def(d.id);
}

void Builder::with_imm(Op op, Reg d, Reg a, int64_t imm) {
  Type t = live(d).type;
  live(a);
  emit(op, t, 0, d.id, a.id, 0, imm, false);
  use(a.id), def(d.id);
}

void Builder::setf(Reg d, double imm) {
  Type t = live(d).type;
  if (!is_float(t))
    fail("function @{}, instruction {}: setf needs a float register, {} is {}", fn_->name,
         fn_->code.size(), fn_->reg_label(d.id), type_name(t));
  if (t == Type::F32) {  // the register holds a float
    if (std::isfinite(imm) && std::abs(imm) > double(std::numeric_limits<float>::max()))
      fail("function @{}, instruction {}: {} does not fit in f32", fn_->name, fn_->code.size(),
           imm);
    imm = double(float(imm));
  }
  emit(Op::Set, t, kImm, d.id, 0, 0, std::bit_cast<int64_t>(imm), true);
  def(d.id);
}

void Builder::mem_local(Op op, Reg v, Local l, int64_t off) {
  Type t = live(v).type;
  emit(op, t, kLocalBase, v.id, l.id, 0, off, false);
  if (is_store(op))
    use(v.id);
  else
    def(v.id);
}

void Builder::addrl(Reg d, Local l) {
  Type t = live(d).type;
  emit(Op::AddrL, t, kLocalBase, d.id, l.id, 0, 0, false);
  def(d.id);
}

void Builder::jmp(Label l) {
  emit(Op::Jmp, Type::Void, 0, check_label(l).id, 0, 0, 0, true);
  edge(l.id);
  flow_.terminate();
}

void Builder::jmpr(Reg target) {
  Type t = live(target).type;
  emit(Op::Jmpr, t, 0, 0, target.id, 0, 0, false);
  use(target.id);
  flow_.indirect_jump();
}

void Builder::la(Reg d, Label l) {
  Type t = live(d).type;
  emit(Op::La, t, 0, check_label(l).id, d.id, 0, 0, false);
  flow_.reference(l.id, last());
  def(d.id);
}

void Builder::call_any(Reg result, uint32_t index, bool is_extern, const Reg* args, size_t n) {
  Type t = Type::Void;
  uint8_t flags = is_extern ? kExtern : 0;
  if (result.valid())
    t = live(result).type;
  else
    flags |= kVoid;
  uint32_t first = uint32_t(fn_->call_args.size());
  for (size_t i = 0; i < n; ++i) {
    live(args[i]);
    fn_->call_args.push_back(args[i].id);
  }
  call_args_mark_ = first;
  try {
    emit(Op::Call, t, flags, result.valid() ? result.id : 0, first, uint32_t(n), int64_t(index),
         false);
  } catch (...) {
    fn_->call_args.resize(first);
    throw;
  }
  for (size_t i = 0; i < n; ++i) use(args[i].id);
  flow_.call();
  if (result.valid()) def(result.id);
  call_args_mark_ = fn_->call_args.size();
}

void Builder::ccall(Reg result, uint32_t extern_index, std::initializer_list<Reg> args) {
  call_any(result, extern_index, true, args.begin(), args.size());
}
void Builder::call(Reg result, uint32_t function_index, std::initializer_list<Reg> args) {
  call_any(result, function_index, false, args.begin(), args.size());
}
void Builder::ccall(Reg result, uint32_t extern_index, const std::vector<Reg>& args) {
  call_any(result, extern_index, true, args.data(), args.size());
}
void Builder::call(Reg result, uint32_t function_index, const std::vector<Reg>& args) {
  call_any(result, function_index, false, args.data(), args.size());
}

void Builder::ret(Reg r) {
  Type t = live(r).type;
  emit(Op::Ret, t, 0, 0, r.id, 0, 0, false);
  use(r.id);
  flow_.terminate();
}

void Builder::ret(int64_t imm) {
  Type t = fn_->sig.ret;
  emit(Op::Ret, t, kImm, 0, 0, 0, is_float(t) ? imm : normalize_imm(t, imm), false);
  flow_.terminate();
}

void Builder::ret() {
  emit(Op::Ret, Type::Void, kVoid, 0, 0, 0, 0, false);
  flow_.terminate();
}

Function& Builder::finish() {
  detail::complete_verification(module_, *fn_, flow_);
  fn_->verified = true;
  return *fn_;
}

void Builder::reject_undefined(uint32_t r) {
  std::string message =
      detail::insn_error(module_, *fn_, last(), undefined_register_message(*fn_, r));
  fn_->code.pop_back();  // the function stays as it was before the bad call
  fn_->call_args.resize(call_args_mark_);
  throw Error(message);
}

}  // namespace exojit::vcode
