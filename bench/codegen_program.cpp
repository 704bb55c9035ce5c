// SPDX-License-Identifier: MIT
// The 1,000-instruction benchmark program (codegen_program.h): made once, deterministically,
// and its vcode form.
#include "codegen_program.h"

namespace exojit::bench {

namespace {

// --- the program ---------------------------------------------------------------------------

Program make_program() {
  Program p;
  Rng rng(0x5eed'c0de'2024ull);
  auto reg = [&] { return uint8_t(rng.below(kRegs)); };
  auto other = [&](uint8_t r) { return uint8_t((r + 1 + rng.below(kRegs - 1)) % kRegs); };
  auto imm32 = [&] {
    int32_t v = int32_t(rng.next() >> 32);
    if (rng.chance(60)) v %= 4096;  // small constants, as real code has
    return v == 0 ? 1 : v;
  };
  auto& s = p.steps;
  // Prologue: r1..r5 = x ^ constant.
  for (uint8_t r = 1; r < kRegs; ++r)
    s.push_back(Step{Kind::BinI, uint8_t(Alu::Xor), r, 0, 0, imm32(), 0});

  struct Pending {
    uint32_t label;
    size_t at;  // step index where it is placed
  };
  std::vector<Pending> pending;
  const size_t body_end = kIrInsns - kRegs;  // then kRegs - 1 adds and the return
  while (s.size() < body_end) {
    // Place the labels that are due (or all of them, at the end of the body).
    bool placed = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].at <= s.size() || s.size() + 1 == body_end) {
        s.push_back(Step{Kind::Place, 0, 0, 0, 0, 0, pending[i].label});
        pending.erase(pending.begin() + long(i));
        placed = true;
        break;
      }
    }
    if (placed) continue;
    uint32_t pick = rng.below(100);
    bool room = s.size() + 48 < body_end && pending.size() < 3;
    if (pick < 38) {  // register-register ALU
      static const Alu ops[] = {Alu::Add, Alu::Add, Alu::Add, Alu::Sub, Alu::Sub,
                                Alu::Xor, Alu::Xor, Alu::And, Alu::Or,  Alu::Mul};
      uint8_t a = reg(), d = rng.chance(75) ? a : other(a), b = reg();
      s.push_back(Step{Kind::Bin, uint8_t(ops[rng.below(10)]), d, a, b, 0, 0});
    } else if (pick < 70) {  // register-immediate ALU and shifts
      static const Alu ops[] = {Alu::Add, Alu::Add, Alu::Sub, Alu::Xor, Alu::And,
                                Alu::Or,  Alu::Mul, Alu::Shl, Alu::Shr, Alu::Shr};
      Alu op = ops[rng.below(10)];
      uint8_t a = reg(), d = rng.chance(80) ? a : other(a);
      int32_t imm = op == Alu::Shl || op == Alu::Shr ? int32_t(1 + rng.below(63)) : imm32();
      s.push_back(Step{Kind::BinI, uint8_t(op), d, a, 0, imm, 0});
    } else if (pick < 84) {
      s.push_back(Step{Kind::Load, 0, reg(), 0, 0, int32_t(8 * rng.below(kMemWords)), 0});
    } else if (pick < 97 || !room) {
      s.push_back(Step{Kind::Store, 0, 0, reg(), 0, int32_t(8 * rng.below(kMemWords)), 0});
    } else {  // compare and branch forward, 4-40 steps
      uint32_t label = p.num_labels++;
      pending.push_back(Pending{label, s.size() + 4 + rng.below(37)});
      uint8_t cond = uint8_t(rng.below(6)), a = reg();
      if (rng.chance(50))
        s.push_back(Step{Kind::BrR, cond, 0, a, other(a), 0, label});
      else
        s.push_back(Step{Kind::BrI, cond, 0, a, 0, imm32(), label});
    }
  }
  for (uint8_t r = 1; r < kRegs; ++r)
    s.push_back(Step{Kind::Bin, uint8_t(Alu::Add), 0, 0, r, 0, 0});
  s.push_back(Step{Kind::Ret, 0, 0, 0, 0, 0, 0});
  return p;
}

// --- vcode -----------------------------------------------------------------------------------

}  // namespace

void build_vcode(vcode::Module& m, const Program& p) {
  using namespace vcode;
  Builder b(m, "fn", Type::U64, {Type::P, Type::U64});
  Reg mem = b.arg(0);
  Reg r[kRegs];
  r[0] = b.arg(1);
  for (int i = 1; i < kRegs; ++i) r[i] = b.getreg(Type::U64);
  std::vector<Label> labels(p.num_labels);
  for (Label& l : labels) l = b.label();
  for (const Step& s : p.steps) {
    switch (s.kind) {
      case Kind::Bin:
        switch (Alu(s.op)) {
          case Alu::Add:
            b.add(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Sub:
            b.sub(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Xor:
            b.xor_(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::And:
            b.and_(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Or:
            b.or_(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Mul:
            b.mul(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Shl:
            b.lsh(r[s.d], r[s.a], r[s.b]);
            break;
          case Alu::Shr:
            b.rsh(r[s.d], r[s.a], r[s.b]);
            break;
        }
        break;
      case Kind::BinI:
        switch (Alu(s.op)) {
          case Alu::Add:
            b.add(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Sub:
            b.sub(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Xor:
            b.xor_(r[s.d], r[s.a], s.imm);
            break;
          case Alu::And:
            b.and_(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Or:
            b.or_(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Mul:
            b.mul(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Shl:
            b.lsh(r[s.d], r[s.a], s.imm);
            break;
          case Alu::Shr:
            b.rsh(r[s.d], r[s.a], s.imm);
            break;
        }
        break;
      case Kind::Load:
        b.ld(r[s.d], mem, s.imm);
        break;
      case Kind::Store:
        b.st(r[s.a], mem, s.imm);
        break;
      case Kind::BrR:
      case Kind::BrI: {
        Label l = labels[s.label];
        bool imm = s.kind == Kind::BrI;
        switch (Cond(s.op)) {
          case Cond::Lt:
            imm ? b.blt(r[s.a], s.imm, l) : b.blt(r[s.a], r[s.b], l);
            break;
          case Cond::Le:
            imm ? b.ble(r[s.a], s.imm, l) : b.ble(r[s.a], r[s.b], l);
            break;
          case Cond::Gt:
            imm ? b.bgt(r[s.a], s.imm, l) : b.bgt(r[s.a], r[s.b], l);
            break;
          case Cond::Ge:
            imm ? b.bge(r[s.a], s.imm, l) : b.bge(r[s.a], r[s.b], l);
            break;
          case Cond::Eq:
            imm ? b.beq(r[s.a], s.imm, l) : b.beq(r[s.a], r[s.b], l);
            break;
          case Cond::Ne:
            imm ? b.bne(r[s.a], s.imm, l) : b.bne(r[s.a], r[s.b], l);
            break;
        }
        break;
      }
      case Kind::Place:
        b.place(labels[s.label]);
        break;
      case Kind::Ret:
        b.ret(r[s.a]);
        break;
    }
  }
  b.finish();
}

const Program& program() {
  static const Program p = make_program();
  return p;
}

}  // namespace exojit::bench
