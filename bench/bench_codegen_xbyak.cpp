// SPDX-License-Identifier: MIT
// codegen/xbyak_raw: the program of codegen_program.h emitted by hand through xbyak's
// CodeGenerator (Debian libxbyak-dev), the same instruction choices as asmjit_raw and vcode.
//
// One CodeGenerator serves every iteration, as a client generating code repeatedly would use it:
// reset() empties its buffer, which xbyak maps read+write+execute (no W^X, nothing to copy:
// the code runs where it is written). Forward branches are near (rel32), as vcode's and asmjit's
// are; everything else takes xbyak's own encoding choices.
#include <xbyak/xbyak.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "codegen_program.h"
#include "exojit/vcode/disasm.h"

namespace exojit::bench {

namespace {

using Xbyak::Reg64;

class Generator : public Xbyak::CodeGenerator {
 public:
  Generator() : Xbyak::CodeGenerator(64 * 1024) { setDefaultJmpNEAR(true); }

  // Emits the program; returns the code size.
  size_t emit(const Program& p) {
    reset();
    labels_.clear();
    labels_.resize(p.num_labels);
    const Reg64 mem = rdi;
    const Reg64 regs[kRegs] = {rsi, rdx, rcx, r8, r9, r10};
    for (const Step& s : p.steps) {
      const Reg64 &d = regs[s.d], &ra = regs[s.a], &rb = regs[s.b];
      const Alu op = Alu(s.op);
      switch (s.kind) {
        case Kind::Bin:
          if (s.d == s.a) {
            alu(op, d, rb);
          } else if (s.d == s.b && op != Alu::Sub) {
            alu(op, d, ra);
          } else if (s.d == s.b) {
            neg(d);
            add(d, ra);
          } else if (op == Alu::Add) {
            lea(d, ptr[ra + rb]);
          } else {
            mov(d, ra);
            alu(op, d, rb);
          }
          break;
        case Kind::BinI:
          if (op == Alu::Mul) {
            imul(d, ra, s.imm);
          } else if (op == Alu::Add && s.d != s.a) {
            lea(d, ptr[ra + s.imm]);
          } else {
            if (s.d != s.a) mov(d, ra);
            alu_imm(op, d, s.imm);
          }
          break;
        case Kind::Load:
          mov(d, qword[mem + s.imm]);
          break;
        case Kind::Store:
          mov(qword[mem + s.imm], ra);
          break;
        case Kind::BrR:
        case Kind::BrI: {
          if (s.kind == Kind::BrI)
            cmp(ra, s.imm);
          else
            cmp(ra, rb);
          const Xbyak::Label& l = labels_[s.label];
          switch (Cond(s.op)) {
            case Cond::Lt:
              jb(l);
              break;
            case Cond::Le:
              jbe(l);
              break;
            case Cond::Gt:
              ja(l);
              break;
            case Cond::Ge:
              jae(l);
              break;
            case Cond::Eq:
              je(l);
              break;
            case Cond::Ne:
              jne(l);
              break;
          }
          break;
        }
        case Kind::Place:
          L(labels_[s.label]);
          break;
        case Kind::Ret:
          mov(rax, ra);
          ret();
          break;
      }
    }
    return getSize();
  }

 private:
  void alu(Alu op, const Reg64& d, const Reg64& s) {
    switch (op) {
      case Alu::Add:
        add(d, s);
        break;
      case Alu::Sub:
        sub(d, s);
        break;
      case Alu::Mul:
        imul(d, s);
        break;
      case Alu::And:
        and_(d, s);
        break;
      case Alu::Or:
        or_(d, s);
        break;
      default:
        xor_(d, s);
        break;
    }
  }
  void alu_imm(Alu op, const Reg64& d, int32_t imm) {
    switch (op) {
      case Alu::Add:
        add(d, imm);
        break;
      case Alu::Sub:
        sub(d, imm);
        break;
      case Alu::And:
        and_(d, imm);
        break;
      case Alu::Or:
        or_(d, imm);
        break;
      case Alu::Xor:
        xor_(d, imm);
        break;
      case Alu::Shl:
        shl(d, imm & 63);
        break;
      default:
        shr(d, imm & 63);
        break;
    }
  }

  std::vector<Xbyak::Label> labels_;
};

Generator& generator() {
  static Generator* g = new Generator;  // never freed: its code is in use by the check in main
  return *g;
}

}  // namespace

XbyakCode xbyak_compile_once() {
  Generator& g = generator();
  size_t size = g.emit(program());
  return XbyakCode{g.getCode<uint64_t (*)(uint64_t*, uint64_t)>(), g.getCode(), size};
}

void bm_xbyak_raw(benchmark::State& state) {
  const Program& p = program();
  Generator& g = generator();
  const size_t insns = vcode::count_instructions(g.getCode(), g.emit(p));  // outside the timing
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(g.emit(p));
  }
  set_counters(state, start, insns);
}

}  // namespace exojit::bench
