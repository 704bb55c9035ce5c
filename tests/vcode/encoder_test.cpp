// SPDX-License-Identifier: MIT
// vcode's x86-64 encoder (vcode/x64/encoder_p.h) against asmjit's x86::Assembler, the oracle:
// every instruction form the fast tier emits, over every register in every operand position
// (r8-r15 included; rsp, rbp, r12 and r13 as bases, which have their own ModRM/SIB forms), and
// the edge immediates and displacements (0, +-1, +-127/128, +-2^31). Each case encodes one
// instruction with both and requires the same bytes.
#include <asmjit/x86.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "exojit/vcode.h"
#include "src/backend_p.h"
#include "x64/encoder_p.h"

namespace exojit::vcode::detail::x64 {
namespace {

namespace aj = asmjit;
namespace ax = asmjit::x86;
using Id = ax::Inst::Id;

// --- operands in both encoders' terms ------------------------------------------------------

ax::Gp their(Gp g) {
  switch (g.bits) {
    case 8:
      return ax::gpb(g.id);
    case 16:
      return ax::gpw(g.id);
    case 32:
      return ax::gpd(g.id);
    default:
      return ax::gpq(g.id);
  }
}
ax::Mem their(const Mem& m, const std::vector<aj::Label>& labels) {
  if (m.rip) return ax::ptr(labels[m.label], m.disp);
  if (m.index == Mem::kNoIndex) return ax::ptr(ax::gpq(m.base), m.disp);
  return ax::ptr(ax::gpq(m.base), ax::gpq(m.index), 0, m.disp);
}

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{}{:02x}", i ? " " : "", p[i]);
  return s;
}

// One case: the same instruction(s) through both encoders. `labels` are made in both (same
// numbering); the callbacks bind and use them as they like.
struct Case {
  std::function<void(Encoder&, const std::vector<Label>&)> ours;
  std::function<void(ax::Assembler&, const std::vector<aj::Label>&)> theirs;
};

// Encodes with both and compares; returns a failure message (empty when identical).
std::string differ(const Case& c, int num_labels = 0) {
  Encoder e;
  e.reserve(Encoder::kSlack);
  std::vector<Label> ours;
  for (int i = 0; i < num_labels; ++i) ours.push_back(e.new_label());
  c.ours(e, ours);
  if (!e.finish() || e.overrun()) return "our encoder failed: " + e.error();

  aj::CodeHolder code;
  code.init(aj::Environment(aj::Arch::kX64));
  ax::Assembler a(&code);
  std::vector<aj::Label> theirs;
  for (int i = 0; i < num_labels; ++i) theirs.push_back(a.newLabel());
  c.theirs(a, theirs);
  if (code.flatten() || code.resolveUnresolvedLinks()) return "asmjit failed";
  const aj::CodeBuffer& b = code.textSection()->buffer();
  if (b.size() == e.offset() && std::memcmp(b.data(), e.data(), b.size()) == 0) return "";
  return fmt::format("ours   {}\nasmjit {}", hex(e.data(), e.offset()), hex(b.data(), b.size()));
}

// Runs many cases; stops the test at the first few differences, each described by `what`.
class Cases {
 public:
  void add(std::string what, Case c, int labels = 0) {
    ++count_;
    std::string d = differ(c, labels);
    if (d.empty()) return;
    if (++failures_ <= 10) ADD_FAILURE() << what << "\n" << d;
  }
  ~Cases() { EXPECT_GT(count_, 0); }

 private:
  int count_ = 0, failures_ = 0;
};

// --- operand sets ---------------------------------------------------------------------------

const std::vector<int> kWidths = {16, 32, 64};
const int32_t kImm32[] = {0,     1,          -1,          127,       -127,     128,
                          -128,  129,        -129,        255,       32767,    -32768,
                          65535, 0x12345678, -0x12345678, INT32_MAX, INT32_MIN};
const int32_t kDisps[] = {0, 1, -1, 127, -127, 128, -128, 0x1234, INT32_MAX, INT32_MIN};

Gp reg(int id, int bits) {
  return Gp{uint8_t(id), uint8_t(bits)};
}

// Every memory operand shape: every base (rsp, rbp, r12, r13 included), with no index or with
// every index but rsp, and every displacement of kDisps.
std::vector<Mem> all_mems() {
  std::vector<Mem> out;
  for (int base = 0; base < 16; ++base)
    for (int index = -1; index < 16; ++index) {
      if (index == 4) continue;  // rsp is no index
      for (int32_t disp : kDisps) {
        // Every displacement with every base; with indexes, a few displacements suffice.
        if (index >= 0 && disp != 0 && disp != 1 && disp != 128 && disp != INT32_MIN) continue;
        out.push_back(index < 0 ? ptr(gpq(unsigned(base)), disp)
                                : ptr(gpq(unsigned(base)), gpq(unsigned(index)), disp));
      }
    }
  return out;
}

std::string mem_text(const Mem& m) {
  if (m.index == Mem::kNoIndex) return fmt::format("[r{} + {}]", m.base, m.disp);
  return fmt::format("[r{} + r{} + {}]", m.base, m.index, m.disp);
}

// A register form over every register as `reg` (with a fixed memory operand) and every memory
// operand (with two registers): every register and every address shape is seen.
template <typename F>
void for_reg_and_mem(F&& f) {
  const Mem fixed = ptr(rbx, 8);
  for (int r = 0; r < 16; ++r) f(r, fixed);
  for (const Mem& m : all_mems())
    for (int r : {0, 15}) f(r, m);
}

// --- general-purpose instructions -----------------------------------------------------------

const Alu kAlus[] = {Alu::Add, Alu::Or, Alu::Adc, Alu::Sbb, Alu::And, Alu::Sub, Alu::Xor, Alu::Cmp};
const Id kAluIds[] = {ax::Inst::kIdAdd, ax::Inst::kIdOr,  ax::Inst::kIdAdc, ax::Inst::kIdSbb,
                      ax::Inst::kIdAnd, ax::Inst::kIdSub, ax::Inst::kIdXor, ax::Inst::kIdCmp};

TEST(Encoder, AluRegisterRegister) {
  Cases cases;
  for (int k = 0; k < 8; ++k)
    for (int bits : kWidths)
      for (int d = 0; d < 16; ++d)
        for (int s = 0; s < 16; ++s) {
          Gp gd = reg(d, bits), gs = reg(s, bits);
          cases.add(fmt::format("alu{} r{}, r{} ({} bits)", k, d, s, bits),
                    {[&](Encoder& e, auto&) { e.alu(kAlus[k], gd, gs); },
                     [&](ax::Assembler& a, auto&) { a.emit(kAluIds[k], their(gd), their(gs)); }});
        }
}

TEST(Encoder, AluRegisterImmediate) {
  Cases cases;
  for (int k = 0; k < 8; ++k)
    for (int bits : kWidths)
      for (int d = 0; d < 16; ++d)
        for (int32_t imm : kImm32) {
          if (bits == 16 && (imm < -32768 || imm > 32767)) continue;
          Gp gd = reg(d, bits);
          cases.add(fmt::format("alu{} r{}, {} ({} bits)", k, d, imm, bits),
                    {[&](Encoder& e, auto&) { e.alu(kAlus[k], gd, imm); },
                     [&](ax::Assembler& a, auto&) { a.emit(kAluIds[k], their(gd), imm); }});
        }
}

TEST(Encoder, AluRegisterMemory) {
  Cases cases;
  for (int k = 0; k < 8; ++k)
    for (int bits : {32, 64})
      for_reg_and_mem([&](int r, const Mem& m) {
        Gp g = reg(r, bits);
        cases.add(fmt::format("alu{} r{}, {} ({} bits)", k, r, mem_text(m), bits),
                  {[&](Encoder& e, auto&) { e.alu(kAlus[k], g, m); },
                   [&](ax::Assembler& a, auto& l) { a.emit(kAluIds[k], their(g), their(m, l)); }});
      });
}

// op [m], imm8 (the stack probe `or qword [rsp], 0` is one of them).
TEST(Encoder, AluMemoryImmediate) {
  Cases cases;
  for (int k = 0; k < 8; ++k)
    for (int bits : {32, 64})
      for (const Mem& m : all_mems())
        for (int8_t imm : {int8_t(0), int8_t(1), int8_t(-1), int8_t(127), int8_t(-128)}) {
          cases.add(fmt::format("alu{} {}, {} ({} bits)", k, mem_text(m), imm, bits),
                    {[&](Encoder& e, auto&) { e.alu(kAlus[k], bits, m, imm); },
                     [&](ax::Assembler& a, auto& l) {
                       ax::Mem their_m = their(m, l);
                       their_m.setSize(uint32_t(bits / 8));
                       a.emit(kAluIds[k], their_m, imm);
                     }});
        }
}

TEST(Encoder, TestMovAndExtensions) {
  Cases cases;
  for (int d = 0; d < 16; ++d)
    for (int s = 0; s < 16; ++s) {
      for (int bits : {32, 64}) {
        Gp gd = reg(d, bits), gs = reg(s, bits);
        cases.add(fmt::format("test/mov r{}, r{} ({})", d, s, bits),
                  {[&](Encoder& e, auto&) { e.test(gd, gs), e.mov(gd, gs); },
                   [&](ax::Assembler& a, auto&) {
                     a.test(their(gd), their(gs)), a.mov(their(gd), their(gs));
                   }});
      }
      for (int from : {8, 16}) {
        Gp gd = reg(d, 32), gs = reg(s, from);
        cases.add(fmt::format("movzx/movsx r{}d, r{} ({} bits)", d, s, from),
                  {[&](Encoder& e, auto&) { e.movzx(gd, gs), e.movsx(gd, gs); },
                   [&](ax::Assembler& a, auto&) {
                     a.movzx(their(gd), their(gs)), a.movsx(their(gd), their(gs));
                   }});
      }
      Gp d64 = reg(d, 64), s32 = reg(s, 32);
      cases.add(fmt::format("movsxd r{}, r{}d", d, s),
                {[&](Encoder& e, auto&) { e.movsxd(d64, s32); },
                 [&](ax::Assembler& a, auto&) { a.movsxd(their(d64), their(s32)); }});
    }
}

TEST(Encoder, MovImmediate) {
  Cases cases;
  const int64_t imm64[] = {0,
                           1,
                           -1,
                           127,
                           128,
                           INT32_MAX,
                           INT32_MIN,
                           int64_t(0xffffffff),
                           int64_t(1) << 32,
                           INT64_MAX,
                           INT64_MIN,
                           0x123456789abcdef0};
  for (int d = 0; d < 16; ++d) {
    for (int32_t v : kImm32) {
      Gp g = reg(d, 32);
      cases.add(fmt::format("mov r{}d, {}", d, v),
                {[&](Encoder& e, auto&) { e.mov(g, int64_t(uint32_t(v))); },
                 [&](ax::Assembler& a, auto&) { a.mov(their(g), uint32_t(v)); }});
    }
    for (int64_t v : imm64) {
      Gp g = reg(d, 64);
      cases.add(fmt::format("mov r{}, {}", d, v),
                {[&](Encoder& e, auto&) { e.mov(g, v); },
                 [&](ax::Assembler& a, auto&) { a.mov(their(g), v); }});
    }
  }
}

TEST(Encoder, LoadsStoresAndLea) {
  Cases cases;
  for_reg_and_mem([&](int r, const Mem& m) {
    for (int bits : {8, 16, 32, 64}) {
      Gp g = reg(r, bits);
      cases.add(fmt::format("mov {}, r{} ({})", mem_text(m), r, bits),
                {[&](Encoder& e, auto&) { e.mov(m, g); },
                 [&](ax::Assembler& a, auto& l) { a.mov(their(m, l), their(g)); }});
    }
    for (int bits : {32, 64}) {
      Gp g = reg(r, bits);
      cases.add(fmt::format("mov/lea/movbe r{}, {} ({})", r, mem_text(m), bits),
                {[&](Encoder& e, auto&) { e.mov(g, m), e.lea(g, m), e.movbe(g, m), e.movbe(m, g); },
                 [&](ax::Assembler& a, auto& l) {
                   a.mov(their(g), their(m, l)), a.lea(their(g), their(m, l));
                   a.movbe(their(g), their(m, l)), a.movbe(their(m, l), their(g));
                 }});
    }
    Gp w = reg(r, 16);
    cases.add(fmt::format("movbe r{}w, {}", r, mem_text(m)),
              {[&](Encoder& e, auto&) { e.movbe(w, m), e.movbe(m, w); },
               [&](ax::Assembler& a, auto& l) {
                 a.movbe(their(w), their(m, l)), a.movbe(their(m, l), their(w));
               }});
    Gp d = reg(r, 32);
    cases.add(fmt::format("movzx/movsx r{}d, {}", r, mem_text(m)),
              {[&](Encoder& e, auto&) {
                 e.movzx(d, m, 8), e.movzx(d, m, 16), e.movsx(d, m, 8), e.movsx(d, m, 16);
               },
               [&](ax::Assembler& a, auto& l) {
                 ax::Mem b = their(m, l), h = b;
                 b.setSize(1), h.setSize(2);
                 a.movzx(their(d), b), a.movzx(their(d), h), a.movsx(their(d), b),
                     a.movsx(their(d), h);
               }});
  });
}

TEST(Encoder, MultiplyShiftAndUnary) {
  Cases cases;
  for (int bits : {32, 64})
    for (int d = 0; d < 16; ++d) {
      Gp gd = reg(d, bits);
      for (int s = 0; s < 16; ++s) {
        Gp gs = reg(s, bits);
        cases.add(fmt::format("imul r{}, r{} ({})", d, s, bits),
                  {[&](Encoder& e, auto&) { e.imul(gd, gs); },
                   [&](ax::Assembler& a, auto&) { a.imul(their(gd), their(gs)); }});
        for (int c = 0; c < 16; ++c)
          cases.add(fmt::format("cmov{} r{}, r{} ({})", c, d, s, bits),
                    {[&](Encoder& e, auto&) { e.cmov(Cond(c), gd, gs); },
                     [&](ax::Assembler& a, auto&) {
                       a.emit(ax::Inst::cmovccFromCond(ax::CondCode(c)), their(gd), their(gs));
                     }});
        for (int32_t imm : {0, 1, -1, 127, -128, 128, -129, INT32_MAX, INT32_MIN}) {
          cases.add(fmt::format("imul r{}, r{}, {} ({})", d, s, imm, bits),
                    {[&](Encoder& e, auto&) { e.imul(gd, gs, imm); },
                     [&](ax::Assembler& a, auto&) { a.imul(their(gd), their(gs), imm); }});
        }
      }
      for (uint8_t count : {0, 1, 2, 7, 31, 63}) {
        cases.add(fmt::format("shl/shr/sar/rol r{}, {} ({})", d, count, bits),
                  {[&](Encoder& e, auto&) {
                     e.shift(Shift::Shl, gd, count), e.shift(Shift::Shr, gd, count);
                     e.shift(Shift::Sar, gd, count), e.shift(Shift::Rol, gd, count);
                   },
                   [&](ax::Assembler& a, auto&) {
                     a.shl(their(gd), count), a.shr(their(gd), count), a.sar(their(gd), count);
                     a.rol(their(gd), count);
                   }});
      }
      cases.add(fmt::format("unary r{} ({})", d, bits),
                {[&](Encoder& e, auto&) {
                   e.shift_cl(Shift::Shl, gd), e.shift_cl(Shift::Shr, gd),
                       e.shift_cl(Shift::Sar, gd);
                   e.neg(gd), e.not_(gd), e.div(gd), e.idiv(gd), e.dec(gd), e.bswap(gd);
                   e.btc(gd, 0), e.btc(gd, 31), e.push(gpq(unsigned(d))), e.pop(gpq(unsigned(d)));
                   e.call(gpq(unsigned(d))), e.jmp(gpq(unsigned(d)));
                 },
                 [&](ax::Assembler& a, auto&) {
                   a.shl(their(gd), ax::cl), a.shr(their(gd), ax::cl), a.sar(their(gd), ax::cl);
                   a.neg(their(gd)), a.not_(their(gd)), a.div(their(gd)), a.idiv(their(gd));
                   a.dec(their(gd)), a.bswap(their(gd)), a.btc(their(gd), 0), a.btc(their(gd), 31);
                   a.push(ax::gpq(d)), a.pop(ax::gpq(d)), a.call(ax::gpq(d)), a.jmp(ax::gpq(d));
                 }});
      Gp w = reg(d, 16);
      cases.add(fmt::format("rol r{}w, 8", d),
                {[&](Encoder& e, auto&) { e.shift(Shift::Rol, w, 8); },
                 [&](ax::Assembler& a, auto&) { a.rol(their(w), 8); }});
      for (int s = 0; s < 16; ++s)
        for (int c = 0; c < 16; c += 5) {
          Gp gs = reg(s, bits), gc = reg((c + s) % 16, bits);
          cases.add(fmt::format("shlx/shrx/sarx r{}, r{}, r{} ({})", d, s, gc.id, bits),
                    {[&](Encoder& e, auto&) {
                       e.shiftx(Shift::Shl, gd, gs, gc), e.shiftx(Shift::Shr, gd, gs, gc);
                       e.shiftx(Shift::Sar, gd, gs, gc);
                     },
                     [&](ax::Assembler& a, auto&) {
                       a.shlx(their(gd), their(gs), their(gc)),
                           a.shrx(their(gd), their(gs), their(gc));
                       a.sarx(their(gd), their(gs), their(gc));
                     }});
        }
    }
}

TEST(Encoder, ByteRegistersSetccCrc32AndMisc) {
  Cases cases;
  for (int r = 0; r < 16; ++r) {
    Gp b = reg(r, 8);
    for (int c = 0; c < 16; ++c)
      cases.add(fmt::format("set{} r{}b", c, r), {[&](Encoder& e, auto&) { e.setcc(Cond(c), b); },
                                                  [&](ax::Assembler& a, auto&) {
                                                    a.emit(ax::Inst::setccFromCond(ax::CondCode(c)),
                                                           their(b));
                                                  }});
    for (int s = 0; s < 16; ++s)
      for (int bits : {8, 16, 32, 64}) {
        Gp d = reg(r, bits == 64 ? 64 : 32), src = reg(s, bits);
        cases.add(fmt::format("crc32 r{}, r{} ({})", r, s, bits),
                  {[&](Encoder& e, auto&) { e.crc32(d, src); },
                   [&](ax::Assembler& a, auto&) { a.crc32(their(d), their(src)); }});
      }
  }
  cases.add("cqo cdq ret vzeroupper",
            {[](Encoder& e, auto&) { e.cqo(), e.cdq(), e.ret(), e.vzeroupper(); },
             [](ax::Assembler& a, auto&) { a.cqo(), a.cdq(), a.ret(), a.vzeroupper(); }});
}

// Branches: forward (near, rel32), backward within reach of rel8 and beyond it, for every
// condition, jmp and call; and rip-relative operands to labels bound before and after.
TEST(Encoder, BranchesAndLabels) {
  Cases cases;
  for (int gap : {0, 1, 100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 200, 1000}) {
    auto pad = [gap](auto& x) {
      for (int i = 0; i < gap; ++i) x.ret();
    };
    for (int c = -2; c < 16; ++c) {
      auto jump_ours = [c](Encoder& e, Label l) {
        if (c == -2)
          e.call(l);
        else if (c == -1)
          e.jmp(l);
        else
          e.jcc(Cond(c), l);
      };
      auto jump_theirs = [c](ax::Assembler& a, aj::Label l) {
        if (c == -2)
          a.call(l);
        else if (c == -1)
          a.jmp(l);
        else
          a.emit(ax::Inst::jccFromCond(ax::CondCode(c)), l);
      };
      cases.add(fmt::format("forward branch {} over {}", c, gap),
                {[&](Encoder& e, auto& l) { jump_ours(e, l[0]), pad(e), e.bind(l[0]); },
                 [&](ax::Assembler& a, auto& l) { jump_theirs(a, l[0]), pad(a), a.bind(l[0]); }},
                1);
      cases.add(fmt::format("backward branch {} over {}", c, gap),
                {[&](Encoder& e, auto& l) { e.bind(l[0]), pad(e), jump_ours(e, l[0]); },
                 [&](ax::Assembler& a, auto& l) { a.bind(l[0]), pad(a), jump_theirs(a, l[0]); }},
                1);
    }
    for (int r : {0, 5, 8, 13, 15}) {
      Gp g = reg(r, 64);
      Vec v = xmm(unsigned(r));
      cases.add(fmt::format("rip-relative r{} over {}", r, gap),
                {[&](Encoder& e, auto& l) {
                   e.bind(l[0]), pad(e), e.lea(g, ptr(l[0])), e.lea(g, ptr(l[1], 8));
                   e.sse(vop::kPand, v.id, ptr(l[1])), e.sse_imm(vop::kPshufd, v.id, v.id, 3);
                   e.vex(vop::kPshufb, true, false, v.id, v.id, ptr(l[1], -4));
                   pad(e), e.bind(l[1]);
                 },
                 [&](ax::Assembler& a, auto& l) {
                   a.bind(l[0]), pad(a), a.lea(their(g), ax::ptr(l[0])),
                       a.lea(their(g), ax::ptr(l[1], 8));
                   a.pand(ax::xmm(r), ax::ptr(l[1])), a.pshufd(ax::xmm(r), ax::xmm(r), 3);
                   a.vpshufb(ax::ymm(r), ax::ymm(r), ax::ptr(l[1], -4));
                   pad(a), a.bind(l[1]);
                 }},
                2);
    }
  }
  const uint8_t data[5] = {1, 2, 3, 4, 5};
  for (size_t before : {0, 1, 31, 32, 33})
    cases.add(fmt::format("data aligned after {} bytes", before),
              {[&](Encoder& e, auto&) {
                 for (size_t i = 0; i < before; ++i) e.ret();
                 e.align_data(32), e.embed(data, sizeof data);
               },
               [&](ax::Assembler& a, auto&) {
                 for (size_t i = 0; i < before; ++i) a.ret();
                 a.align(aj::AlignMode::kData, 32), a.embed(data, sizeof data);
               }});
}

// --- SSE and AVX ----------------------------------------------------------------------------

struct VecForm {
  const char* name;
  VecOp op;
  Id legacy;          // kIdNone: VEX only
  Id vex;             // kIdNone: legacy only
  bool three = true;  // the VEX form has a second source (vvvv)
};

// The register-register forms the back end emits, legacy and VEX.
const VecForm kVecForms[] = {
    {"movaps", vop::kMovaps, ax::Inst::kIdMovaps, ax::Inst::kIdNone},
    {"movdqa", vop::kMovdqa, ax::Inst::kIdMovdqa, ax::Inst::kIdVmovdqa, false},
    {"cvtss2sd", vop::kCvtss2sd, ax::Inst::kIdCvtss2sd, ax::Inst::kIdNone},
    {"cvtsd2ss", vop::kCvtsd2ss, ax::Inst::kIdCvtsd2ss, ax::Inst::kIdNone},
    {"ucomiss", vop::kUcomiss, ax::Inst::kIdUcomiss, ax::Inst::kIdNone},
    {"ucomisd", vop::kUcomisd, ax::Inst::kIdUcomisd, ax::Inst::kIdNone},
    {"addss", vop::kAddss, ax::Inst::kIdAddss, ax::Inst::kIdNone},
    {"addsd", vop::kAddsd, ax::Inst::kIdAddsd, ax::Inst::kIdNone},
    {"subss", vop::kSubss, ax::Inst::kIdSubss, ax::Inst::kIdNone},
    {"subsd", vop::kSubsd, ax::Inst::kIdSubsd, ax::Inst::kIdNone},
    {"mulss", vop::kMulss, ax::Inst::kIdMulss, ax::Inst::kIdNone},
    {"mulsd", vop::kMulsd, ax::Inst::kIdMulsd, ax::Inst::kIdNone},
    {"divss", vop::kDivss, ax::Inst::kIdDivss, ax::Inst::kIdNone},
    {"divsd", vop::kDivsd, ax::Inst::kIdDivsd, ax::Inst::kIdNone},
    {"xorps", vop::kXorps, ax::Inst::kIdXorps, ax::Inst::kIdNone},
    {"paddb", vop::kPaddb, ax::Inst::kIdPaddb, ax::Inst::kIdVpaddb},
    {"paddw", vop::kPaddw, ax::Inst::kIdPaddw, ax::Inst::kIdVpaddw},
    {"paddd", vop::kPaddd, ax::Inst::kIdPaddd, ax::Inst::kIdVpaddd},
    {"paddq", vop::kPaddq, ax::Inst::kIdPaddq, ax::Inst::kIdVpaddq},
    {"psubb", vop::kPsubb, ax::Inst::kIdPsubb, ax::Inst::kIdVpsubb},
    {"psubw", vop::kPsubw, ax::Inst::kIdPsubw, ax::Inst::kIdVpsubw},
    {"psubd", vop::kPsubd, ax::Inst::kIdPsubd, ax::Inst::kIdVpsubd},
    {"psubq", vop::kPsubq, ax::Inst::kIdPsubq, ax::Inst::kIdVpsubq},
    {"pand", vop::kPand, ax::Inst::kIdPand, ax::Inst::kIdVpand},
    {"por", vop::kPor, ax::Inst::kIdPor, ax::Inst::kIdVpor},
    {"pxor", vop::kPxor, ax::Inst::kIdPxor, ax::Inst::kIdVpxor},
    {"pmovzxbw", vop::kPmovzxbw, ax::Inst::kIdPmovzxbw, ax::Inst::kIdVpmovzxbw, false},
    {"pmovzxwd", vop::kPmovzxwd, ax::Inst::kIdPmovzxwd, ax::Inst::kIdVpmovzxwd, false},
    {"pmovzxdq", vop::kPmovzxdq, ax::Inst::kIdPmovzxdq, ax::Inst::kIdVpmovzxdq, false},
    {"punpckhbw", vop::kPunpckhbw, ax::Inst::kIdPunpckhbw, ax::Inst::kIdVpunpckhbw},
    {"punpckhwd", vop::kPunpckhwd, ax::Inst::kIdPunpckhwd, ax::Inst::kIdVpunpckhwd},
    {"punpckhdq", vop::kPunpckhdq, ax::Inst::kIdPunpckhdq, ax::Inst::kIdVpunpckhdq},
    {"punpcklqdq", vop::kPunpcklqdq, ax::Inst::kIdPunpcklqdq, ax::Inst::kIdNone},
    {"pshufb", vop::kPshufb, ax::Inst::kIdPshufb, ax::Inst::kIdVpshufb},
    {"vpbroadcastb", vop::kVpbroadcastb, ax::Inst::kIdNone, ax::Inst::kIdVpbroadcastb, false},
    {"vpbroadcastw", vop::kVpbroadcastw, ax::Inst::kIdNone, ax::Inst::kIdVpbroadcastw, false},
    {"vpbroadcastd", vop::kVpbroadcastd, ax::Inst::kIdNone, ax::Inst::kIdVpbroadcastd, false},
    {"vpbroadcastq", vop::kVpbroadcastq, ax::Inst::kIdNone, ax::Inst::kIdVpbroadcastq, false},
};

// Every register in every operand position: each position takes all 16 while the others rotate.
template <typename F>
void for_each_position(int positions, F&& f) {
  for (int pos = 0; pos < positions; ++pos)
    for (int r = 0; r < 16; ++r) {
      int regs[3] = {(r + 5) % 16, (r + 11) % 16, (r + 3) % 16};
      regs[pos] = r;
      f(regs[0], regs[1], regs[2]);
    }
}

TEST(Encoder, SseRegisterForms) {
  Cases cases;
  for (const VecForm& form : kVecForms) {
    if (form.legacy == ax::Inst::kIdNone) continue;
    for_each_position(2, [&](int d, int s, int) {
      cases.add(fmt::format("{} xmm{}, xmm{}", form.name, d, s),
                {[&](Encoder& e, auto&) { e.sse(form.op, uint8_t(d), uint8_t(s)); },
                 [&](ax::Assembler& a, auto&) { a.emit(form.legacy, ax::xmm(d), ax::xmm(s)); }});
    });
  }
}

TEST(Encoder, AvxRegisterForms) {
  Cases cases;
  for (const VecForm& form : kVecForms) {
    if (form.vex == ax::Inst::kIdNone) continue;
    for (bool wide : {false, true})
      for_each_position(form.three ? 3 : 2, [&](int d, int a1, int b) {
        // Without a second source the r/m operand is the third register slot (b = a1 here).
        const int src = form.three ? b : a1;
        const bool from_xmm = form.op.code == 0x78 || form.op.code == 0x79 ||
                              form.op.code == 0x58 || form.op.code == 0x59 ||
                              (form.op.map == 2 && form.op.code >= 0x30);
        cases.add(fmt::format("v{} {} {}, {}, {}", form.name, wide ? 256 : 128, d, a1, src),
                  {[&](Encoder& e, auto&) {
                     e.vex(form.op, wide, false, uint8_t(d), form.three ? uint8_t(a1) : 0,
                           uint8_t(src));
                   },
                   [&](ax::Assembler& a, auto&) {
                     ax::Vec vd = wide ? ax::Vec(ax::ymm(d)) : ax::Vec(ax::xmm(d));
                     ax::Vec vs = wide && !from_xmm ? ax::Vec(ax::ymm(src)) : ax::Vec(ax::xmm(src));
                     if (form.three)
                       a.emit(form.vex, vd, wide ? ax::Vec(ax::ymm(a1)) : ax::Vec(ax::xmm(a1)), vs);
                     else
                       a.emit(form.vex, vd, vs);
                   }});
      });
  }
}

TEST(Encoder, VectorImmediatesAndGpForms) {
  Cases cases;
  struct Shift {
    VecOp op;
    Id legacy, vex;
  };
  const Shift shifts[] = {{vop::kPsllw, ax::Inst::kIdPsllw, ax::Inst::kIdVpsllw},
                          {vop::kPslld, ax::Inst::kIdPslld, ax::Inst::kIdVpslld},
                          {vop::kPsllq, ax::Inst::kIdPsllq, ax::Inst::kIdVpsllq},
                          {vop::kPsrlw, ax::Inst::kIdPsrlw, ax::Inst::kIdVpsrlw},
                          {vop::kPsrld, ax::Inst::kIdPsrld, ax::Inst::kIdVpsrld},
                          {vop::kPsrlq, ax::Inst::kIdPsrlq, ax::Inst::kIdVpsrlq}};
  for (const Shift& sh : shifts)
    for_each_position(2, [&](int d, int s, int) {
      for (uint8_t n : {0, 1, 7, 15, 63}) {
        cases.add(fmt::format("shift {:x}/{} xmm{}, xmm{}, {}", sh.op.code, sh.op.digit, d, s, n),
                  {[&](Encoder& e, auto&) {
                     e.sse_shift(sh.op, xmm(unsigned(d)), n);
                     e.vex_shift(sh.op, xmm(unsigned(d)), xmm(unsigned(s)), n);
                     e.vex_shift(sh.op, ymm(unsigned(d)), ymm(unsigned(s)), n);
                   },
                   [&](ax::Assembler& a, auto&) {
                     a.emit(sh.legacy, ax::xmm(d), n);
                     a.emit(sh.vex, ax::xmm(d), ax::xmm(s), n);
                     a.emit(sh.vex, ax::ymm(d), ax::ymm(s), n);
                   }});
      }
    });
  for_each_position(2, [&](int x, int g, int) {
    cases.add(fmt::format("gp forms xmm{}, r{}", x, g),
              {[&](Encoder& e, auto&) {
                 e.sse(vop::kMovqFromGp, uint8_t(x), uint8_t(g), true);
                 e.vex(vop::kMovqFromGp, false, true, uint8_t(x), 0, uint8_t(g));
                 e.sse(vop::kCvtsi2ss, uint8_t(x), uint8_t(g), true);
                 e.sse(vop::kCvtsi2sd, uint8_t(x), uint8_t(g), true);
                 e.sse(vop::kCvttss2si, uint8_t(g), uint8_t(x), true);
                 e.sse(vop::kCvttsd2si, uint8_t(g), uint8_t(x), true);
                 e.sse_imm(vop::kPshufd, uint8_t(x), uint8_t(g), 0);
                 e.sse_imm(vop::kPshuflw, uint8_t(x), uint8_t(g), 0x1b);
                 e.vex(vop::kVextracti128, true, false, uint8_t(g), 0, uint8_t(x), 1);
               },
               [&](ax::Assembler& a, auto&) {
                 a.movq(ax::xmm(x), ax::gpq(g)), a.vmovq(ax::xmm(x), ax::gpq(g));
                 a.cvtsi2ss(ax::xmm(x), ax::gpq(g)), a.cvtsi2sd(ax::xmm(x), ax::gpq(g));
                 a.cvttss2si(ax::gpq(g), ax::xmm(x)), a.cvttsd2si(ax::gpq(g), ax::xmm(x));
                 a.pshufd(ax::xmm(x), ax::xmm(g), 0), a.pshuflw(ax::xmm(x), ax::xmm(g), 0x1b);
                 a.vextracti128(ax::xmm(x), ax::ymm(g), 1);
               }});
  });
}

TEST(Encoder, VectorMemoryForms) {
  Cases cases;
  for_reg_and_mem([&](int r, const Mem& m) {
    cases.add(fmt::format("vector memory xmm{}, {}", r, mem_text(m)),
              {[&](Encoder& e, auto&) {
                 e.sse(vop::kMovssLoad, uint8_t(r), m), e.sse(vop::kMovssStore, uint8_t(r), m);
                 e.sse(vop::kMovsdLoad, uint8_t(r), m), e.sse(vop::kMovsdStore, uint8_t(r), m);
                 e.sse(vop::kMovdquLoad, uint8_t(r), m), e.sse(vop::kMovdquStore, uint8_t(r), m);
                 e.sse(vop::kMovdqa, uint8_t(r), m), e.sse(vop::kPand, uint8_t(r), m);
                 for (bool wide : {false, true}) {
                   e.vex(vop::kMovdquLoad, wide, false, uint8_t(r), 0, m);
                   e.vex(vop::kMovdquStore, wide, false, uint8_t(r), 0, m);
                   e.vex(vop::kMovdqa, wide, false, uint8_t(r), 0, m);
                   e.vex(vop::kPand, wide, false, uint8_t(r), uint8_t(15 - r), m);
                 }
               },
               [&](ax::Assembler& a, auto& l) {
                 ax::Mem mm = their(m, l);
                 a.movss(ax::xmm(r), mm), a.movss(mm, ax::xmm(r));
                 a.movsd(ax::xmm(r), mm), a.movsd(mm, ax::xmm(r));
                 a.movdqu(ax::xmm(r), mm), a.movdqu(mm, ax::xmm(r));
                 a.movdqa(ax::xmm(r), mm), a.pand(ax::xmm(r), mm);
                 for (bool wide : {false, true}) {
                   ax::Vec v = wide ? ax::Vec(ax::ymm(r)) : ax::Vec(ax::xmm(r));
                   ax::Vec o = wide ? ax::Vec(ax::ymm(15 - r)) : ax::Vec(ax::xmm(15 - r));
                   a.vmovdqu(v, mm), a.vmovdqu(mm, v), a.vmovdqa(v, mm), a.vpand(v, o, mm);
                 }
               }});
  });
}

// Errors are sticky and reported, not crashes: a label bound twice or never, rsp as an index,
// code past its size limit, more written than reserved.
TEST(Encoder, ErrorsAreReported) {
  {
    Encoder e;
    e.reserve(64);
    Label l = e.new_label();
    e.bind(l);
    e.bind(l);
    EXPECT_TRUE(e.failed());
    EXPECT_NE(e.error().find("bound twice"), std::string::npos) << e.error();
  }
  {
    Encoder e;
    e.reserve(64);
    e.jmp(e.new_label());
    EXPECT_FALSE(e.finish());
    EXPECT_NE(e.error().find("never bound"), std::string::npos) << e.error();
  }
  {
    Encoder e;
    e.reserve(64);
    e.mov(rax, ptr(rbx, rsp, 0));
    EXPECT_NE(e.error().find("index"), std::string::npos) << e.error();
  }
  {
    Encoder e(Encoder::kSlack);
    for (int i = 0; i < 10000 && !e.failed(); ++i) e.reserve(16), e.alu(Alu::Add, rax, rbx);
    EXPECT_NE(e.error().find("exceeds"), std::string::npos) << e.error();
  }
  {
    Encoder e;
    e.reserve(4);
    e.mov(r11, INT64_MAX);  // 10 bytes
    EXPECT_TRUE(e.overrun());
    EXPECT_NE(e.error().find("reserved"), std::string::npos) << e.error();
  }
}

// Through the back end: an encoding error, or an error the lowering throws, is an exojit::Error
// that names the function, the instruction and the target (the skeleton of src/lowering.h).
TEST(Encoder, BackEndErrorsNameTheInstruction) {
  Module m;
  Builder b(m, "big", Type::U64, {Type::U64, Type::U64});
  for (int i = 0; i < 3000; ++i) b.add(b.arg(0), b.arg(0), b.arg(1));
  b.ret(b.arg(0));
  b.finish();
  X64Features small;
  small.max_code_bytes = 4096;  // about 1,400 adds of 3 bytes
  try {
    emit_x64(m, small);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("@big: instruction 1", 0), 0u) << what;
    EXPECT_NE(what.find("`add %r0, %r0, %r1`: x86-64: the code exceeds 4096 bytes"),
              std::string::npos)
        << what;
  }

  Module v;
  Builder vb(v, "shuffle", Type::Void, {Type::P});
  Reg x = vb.getreg(Type::V16U8);
  vb.ld(x, vb.arg(0));
  vb.shuf(x, x, 0x0123456789abcdefull);
  vb.st(x, vb.arg(0));
  vb.ret();
  vb.finish();
  X64Features no_sse41;
  no_sse41.sse41 = false;
  try {
    emit_x64(v, no_sse41);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("@shuffle: instruction 1 `shuf", 0), 0u) << what;
    EXPECT_NE(what.find("x86-64: this vector instruction needs SSSE3 and SSE4.1"),
              std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace exojit::vcode::detail::x64
