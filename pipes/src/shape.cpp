// SPDX-License-Identifier: MIT
// Classifying pipe bodies (see shape.h).
#include <vector>

#include "shape_p.h"

namespace exojit::pipes::detail {

using vcode::Insn;
using vcode::kImm;
using vcode::Op;

namespace {

bool is_persistent(const Pipe& p, uint32_t reg) {
  for (const PersistentInfo& info : p.persistent)
    if (info.reg == reg) return true;
  return false;
}

bool lane_wise(const Pipe& p, const std::vector<Insn>& code) {
  const vcode::Function& f = p.body();
  const Type lane = f.regs[f.params[0].id].type;
  for (const Insn& in : code) {
    if (in.type != lane) return false;           // one lane type throughout
    if (is_persistent(p, in.dst)) return false;  // state carried from word to word
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::And:
      case Op::Or:
      case Op::Xor:
        if (!(in.flags & kImm) && f.regs[in.b].type != lane) return false;
        break;
      case Op::Lsh:
      case Op::Rsh:
        if (!(in.flags & kImm)) return false;  // vector shifts take constant counts
        break;
      case Op::Neg:
      case Op::Com:
      case Op::Mov:
      case Op::Bswap:
      case Op::Set:
        break;
      default:
        return false;
    }
    if (in.op != Op::Set && f.regs[in.a].type != lane) return false;
  }
  return true;
}

}  // namespace

Shape analyze(const Pipe& p) {
  Shape s;
  const std::vector<Insn>& code = p.code;
  const vcode::Function& f = p.body();
  const uint32_t input = f.params[0].id;
  if (code.empty()) {
    s.kind = Shape::Copy;
    s.vector_ok = p.commutative();
    return s;
  }
  if (code.size() == 1) {
    const Insn& in = code[0];
    bool accumulates = (in.op == Op::Cksum || in.op == Op::Add || in.op == Op::Crc32c) &&
                       !(in.flags & kImm) && in.b == input && in.dst == in.a &&
                       is_persistent(p, in.dst);
    if (accumulates) {
      s.kind = Shape::Reduction;
      s.op = in.op;
      s.acc = in.dst;
      s.acc_type = f.regs[in.dst].type;
      // Vector lanes sum the words exactly in 64 bits, then fold: cksum and add, for words of
      // up to 32 bits. crc32c depends on the order of the words.
      s.vector_ok = p.commutative() && in.op != Op::Crc32c && p.gauge <= 32 &&
                    (in.op == Op::Cksum || !vcode::is_signed(s.acc_type));
      s.chunk_ok =
          in.op == Op::Crc32c || (in.op == Op::Cksum && vcode::type_bits(s.acc_type) == p.gauge);
      return s;
    }
  }
  if (lane_wise(p, code)) {
    s.kind = Shape::Map;
    s.vector_ok = p.commutative();
  }
  return s;
}

}  // namespace exojit::pipes::detail
