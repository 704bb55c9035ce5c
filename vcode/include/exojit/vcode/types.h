// SPDX-License-Identifier: MIT
// vcode's types (as in VCODE), and what the rest of the IR asks about them.
#pragma once

#include <cstdint>
#include <string_view>

namespace exojit::vcode {

// Types (as in VCODE). Integer registers of 8/16/32-bit types hold values of exactly that width;
// `p` is a 64-bit pointer that compares unsigned.
//
// Vector types (the extension the pipe compiler needs): 128- and 256-bit registers of unsigned
// lanes, named v<lanes>u<lane bits>. A vector register holds its bits; the type says how lane-wise
// operations split them. Vectors live in the float register file (xmm/ymm on x86-64).
// clang-format off
enum class Type : uint8_t {
  I8, U8, I16, U16, I32, U32, I64, U64, P, F32, F64, Void,
  V16U8, V8U16, V4U32, V2U64,   // 128-bit
  V32U8, V16U16, V8U32, V4U64,  // 256-bit
};
// clang-format on
inline constexpr int kNumTypes = 20;

std::string_view type_name(Type t);
bool parse_type(std::string_view s, Type* out);

constexpr bool is_float(Type t) {
  return t == Type::F32 || t == Type::F64;
}
constexpr bool is_vector(Type t) {
  return t >= Type::V16U8;
}
// Registers of these types live in the float register file.
constexpr bool in_float_file(Type t) {
  return is_float(t) || is_vector(t);
}
// Vector geometry: register width in bits, lane width in bits, lane count.
constexpr int vector_bits(Type t) {
  return t >= Type::V32U8 ? 256 : t >= Type::V16U8 ? 128 : 0;
}
constexpr int lane_bits(Type t) {
  return is_vector(t) ? 8 << ((unsigned(t) - unsigned(Type::V16U8)) & 3) : 0;
}
constexpr int lane_count(Type t) {
  return is_vector(t) ? vector_bits(t) / lane_bits(t) : 0;
}
// The vector type of `bits` width with lanes of `lane` bits (8, 16, 32, 64).
constexpr Type vector_type(int bits, int lane) {
  unsigned k = lane == 8 ? 0 : lane == 16 ? 1 : lane == 32 ? 2 : 3;
  return Type(unsigned(bits == 256 ? Type::V32U8 : Type::V16U8) + k);
}
constexpr bool is_int(Type t) {
  return t <= Type::P;
}  // pointers are integers here
constexpr bool is_signed(Type t) {
  return t == Type::I8 || t == Type::I16 || t == Type::I32 || t == Type::I64;
}
constexpr int type_bits(Type t) {
  switch (t) {
    case Type::I8:
    case Type::U8:
      return 8;
    case Type::I16:
    case Type::U16:
      return 16;
    case Type::I32:
    case Type::U32:
    case Type::F32:
      return 32;
    case Type::Void:
      return 0;
    case Type::I64:
    case Type::U64:
    case Type::P:
    case Type::F64:
      return 64;
    default:
      return vector_bits(t);
  }
}
constexpr int type_bytes(Type t) {
  return type_bits(t) / 8;
}

// Normalizes a 64-bit immediate to the value a register of type `t` would hold (truncated to the
// width, then sign- or zero-extended), so that every consumer sees the same canonical constant.
constexpr int64_t normalize_imm(Type t, int64_t v) {
  switch (t) {
    case Type::I8:
      return int8_t(v);
    case Type::U8:
      return uint8_t(v);
    case Type::I16:
      return int16_t(v);
    case Type::U16:
      return uint16_t(v);
    case Type::I32:
      return int32_t(v);
    case Type::U32:
      return uint32_t(v);
    default:
      return v;
  }
}

// One bit per type (1 << Type), for sets of types (the instruction table's type rules).
using TypeSet = uint32_t;
constexpr TypeSet type_bit(Type t) {
  return TypeSet(1) << unsigned(t);
}
inline constexpr TypeSet kIntTypes = 0x1ff;  // i8 .. p
inline constexpr TypeSet kFloatTypes =
    (TypeSet(1) << unsigned(Type::F32)) | (TypeSet(1) << unsigned(Type::F64));
inline constexpr TypeSet kVectorTypes = TypeSet(0xff) << unsigned(Type::V16U8);
inline constexpr TypeSet kScalarTypes = kIntTypes | kFloatTypes;
inline constexpr TypeSet kValueTypes = kScalarTypes | kVectorTypes;
constexpr bool in_set(TypeSet s, Type t) {
  return (s >> unsigned(t) & 1) != 0;
}

}  // namespace exojit::vcode
