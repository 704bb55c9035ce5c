// SPDX-License-Identifier: MIT
// Names of types and opcodes (from the instruction table), immediate normalization, and the Module
// container.
#include "exojit/vcode/ir.h"

#include <fmt/format.h>

#include <array>

#include "exojit/error.h"

namespace exojit::vcode {

namespace {
constexpr std::array<std::string_view, kNumTypes> kTypeNames = {
    "i8",  "u8",   "i16",   "u16",   "i32",   "u32",   "i64",   "u64",    "p",     "f32",
    "f64", "void", "v16u8", "v8u16", "v4u32", "v2u64", "v32u8", "v16u16", "v8u32", "v4u64"};
}  // namespace

std::string_view type_name(Type t) {
  // Edited or corrupt records reach error messages: never index past the table.
  return size_t(t) < kTypeNames.size() ? kTypeNames[size_t(t)] : "?";
}

bool parse_type(std::string_view s, Type* out) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == s) {
      *out = Type(i);
      return true;
    }
  }
  return false;
}

std::string_view op_name(Op op) {
  // Edited or corrupt records reach error messages: never index past the table.
  return unsigned(op) < unsigned(kNumOps) ? op_info(op).name : "?";
}

bool parse_op(std::string_view s, Op* out) {
  for (int i = 0; i < kNumOps; ++i) {
    if (kOpTable[i].name == s) {
      *out = Op(i);
      return true;
    }
  }
  return false;
}

std::string_view form_syntax(Form f) {
  switch (f) {
    case Form::Binary:
      return "op %d, %a, %b|imm";
    case Form::Unary:
      return "op %d, %a";
    case Form::UnaryImm:
      return "op %d, %a, imm";
    case Form::SetImm:
      return "op %d, imm";
    case Form::Load:
      return "op %d, [mem]";
    case Form::Store:
      return "op [mem], %v";
    case Form::LocalAddr:
      return "op %d, $n";
    case Form::Branch:
      return "op %a, %b|imm, L";
    case Form::Jump:
      return "op L";
    case Form::JumpReg:
      return "op %a";
    case Form::LabelAddr:
      return "op %a, L";
    case Form::Place:
      return "L:";
    case Form::Call:
      return "op [%d,] @f(%x, ...)";
    case Form::Return:
      return "op [%a|imm]";
  }
  return "?";
}

std::string Function::reg_label(uint32_t id) const {
  if (id < reg_names.size() && !reg_names[id].empty()) return "%" + reg_names[id];
  return fmt::format("%r{}", id);
}

std::string Function::label_label(uint32_t id) const {
  if (id < label_names.size() && !label_names[id].empty()) return label_names[id];
  return fmt::format("L{}", id);
}

Module::Module() = default;
Module::~Module() = default;
Module::Module(Module&&) noexcept = default;
Module& Module::operator=(Module&&) noexcept = default;

uint32_t Module::add_extern(std::string name, Signature sig, void* address) {
  if (find_extern(name) >= 0) fail("extern @{} is declared twice", name);
  if (!address) fail("extern @{} has a null address", name);
  int ints = 0, floats = 0;
  for (Type t : sig.params) (is_float(t) ? floats : ints)++;
  if (ints > kMaxIntArgs || floats > kMaxFloatArgs)
    fail("extern @{}: at most {} integer and {} float arguments are supported", name, kMaxIntArgs,
         kMaxFloatArgs);
  externs_.push_back(Extern{std::move(name), std::move(sig), address});
  return uint32_t(externs_.size() - 1);
}

Function& Module::add_function(std::string name, Signature sig) {
  if (find_function(name) >= 0) fail("function @{} is defined twice", name);
  auto f = std::make_unique<Function>();
  f->name = std::move(name);
  f->sig = std::move(sig);
  functions_.push_back(std::move(f));
  return *functions_.back();
}

int Module::find_function(std::string_view name) const {
  for (size_t i = 0; i < functions_.size(); ++i)
    if (functions_[i]->name == name) return int(i);
  return -1;
}

int Module::find_extern(std::string_view name) const {
  for (size_t i = 0; i < externs_.size(); ++i)
    if (externs_[i].name == name) return int(i);
  return -1;
}

}  // namespace exojit::vcode
