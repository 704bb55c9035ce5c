// Direct encodings of the most frequent x86-64 instruction forms, written straight into the
// assembler's buffer. asmjit's generic emit path validates and dispatches every operand
// combination (~10 ns per instruction); the fast tier's common cases (ALU register/immediate,
// mov, lea, loads and stores at base+displacement) need none of that. Everything else, and
// everything once the buffer runs short, goes through asmjit as usual.
#pragma once

#include <asmjit/x86.h>

#include <cstdint>
#include <cstring>

namespace exojit::vcode::detail {

class FastAssembler : public asmjit::x86::Assembler {
 public:
  using asmjit::x86::Assembler::Assembler;

  // Room for one more instruction of up to 16 bytes without growing the buffer.
  bool room() const { return remainingSpace() >= 16; }

  // Group-1 opcodes (op r/m, reg) and their /digit for the immediate forms.
  enum Alu : uint8_t { kAdd = 0, kOr = 1, kAnd = 4, kSub = 5, kXor = 6, kCmp = 7 };
  static constexpr uint8_t kAluRm[8] = {0x01, 0x09, 0, 0, 0x21, 0x29, 0x31, 0x39};

  // op rm, reg (register-register): add/or/and/sub/xor/cmp, or mov (0x89) and test (0x85).
  void rr(uint8_t opcode, uint32_t rm, uint32_t reg, bool w) {
    Out o{_bufferPtr};
    o.rex(w, reg, 0, rm);
    o.put(opcode);
    o.put(uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7)));
    _bufferPtr = o.p;
  }
  // op rm, imm (group 1): imm8 form when it fits.
  void ri(Alu digit, uint32_t rm, int32_t imm, bool w) {
    Out o{_bufferPtr};
    o.rex(w, 0, 0, rm);
    bool small = imm == int8_t(imm);
    o.put(small ? 0x83 : 0x81);
    o.put(uint8_t(0xc0 | digit << 3 | (rm & 7)));
    small ? o.put(uint8_t(imm)) : o.put32(uint32_t(imm));
    _bufferPtr = o.p;
  }
  // imul reg, rm
  void imul_rr(uint32_t reg, uint32_t rm, bool w) {
    Out o{_bufferPtr};
    o.rex(w, reg, 0, rm);
    o.put(0x0f);
    o.put(0xaf);
    o.put(uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7)));
    _bufferPtr = o.p;
  }
  // imul reg, rm, imm
  void imul_ri(uint32_t reg, uint32_t rm, int32_t imm, bool w) {
    Out o{_bufferPtr};
    o.rex(w, reg, 0, rm);
    bool small = imm == int8_t(imm);
    o.put(small ? 0x6b : 0x69);
    o.put(uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7)));
    small ? o.put(uint8_t(imm)) : o.put32(uint32_t(imm));
    _bufferPtr = o.p;
  }
  // Shift rm by an immediate count: digit 4 = shl, 5 = shr, 7 = sar.
  void shift_ri(uint8_t digit, uint32_t rm, uint8_t count, bool w) {
    Out o{_bufferPtr};
    o.rex(w, 0, 0, rm);
    o.put(0xc1);
    o.put(uint8_t(0xc0 | digit << 3 | (rm & 7)));
    o.put(count);
    _bufferPtr = o.p;
  }
  // mov reg, imm: the shortest of xor, mov r32 (zero-extends), mov r64 sign-extended, movabs.
  void mov_imm(uint32_t reg, int64_t v, bool w) {
    if (!w) v = int64_t(uint32_t(v));
    if (v == 0) return rr(0x31, reg, reg, false);
    Out o{_bufferPtr};
    if (uint64_t(v) <= 0xffffffffu) {
      o.rex(false, 0, 0, reg);
      o.put(uint8_t(0xb8 | (reg & 7)));
      o.put32(uint32_t(v));
    } else if (v == int32_t(v)) {
      o.rex(true, 0, 0, reg);
      o.put(0xc7);
      o.put(uint8_t(0xc0 | (reg & 7)));
      o.put32(uint32_t(v));
    } else {
      o.rex(true, 0, 0, reg);
      o.put(uint8_t(0xb8 | (reg & 7)));
      uint64_t u = uint64_t(v);
      std::memcpy(o.p, &u, 8);
      o.p += 8;
    }
    _bufferPtr = o.p;
  }
  // lea reg, [base + index]
  void lea_bi(uint32_t reg, uint32_t base, uint32_t index, bool w) {
    Out o{_bufferPtr};
    o.rex(w, reg, index, base);
    o.put(0x8d);
    bool needs_disp = (base & 7) == 5;  // rbp/r13 as base: [base + index + disp8 0]
    o.put(uint8_t((needs_disp ? 0x44 : 0x04) | (reg & 7) << 3));
    o.put(uint8_t((index & 7) << 3 | (base & 7)));
    if (needs_disp) o.put(0);
    _bufferPtr = o.p;
  }
  // opcode reg, [base + disp] (mov load 0x8b, mov store 0x89, lea 0x8d)
  void mem(uint8_t opcode, uint32_t reg, uint32_t base, int32_t disp, bool w) {
    Out o{_bufferPtr};
    o.rex(w, reg, 0, base);
    o.put(opcode);
    o.modrm_mem(reg, base, disp);
    _bufferPtr = o.p;
  }

 private:
  // Writes through a local cursor: byte stores may alias anything, so writing through the
  // member pointer would make the compiler reload and store it after every byte.
  struct Out {
    uint8_t* p;
    void put(uint8_t b) { *p++ = b; }
    void put32(uint32_t v) {
      std::memcpy(p, &v, 4);
      p += 4;
    }
    void rex(bool w, uint32_t reg, uint32_t index, uint32_t rm) {
      uint8_t r = uint8_t(0x40 | (w ? 8 : 0) | (reg & 8) >> 1 | (index & 8) >> 2 | (rm & 8) >> 3);
      if (r != 0x40) put(r);
    }
    void modrm_mem(uint32_t reg, uint32_t base, int32_t disp) {
      uint8_t mod = (disp == 0 && (base & 7) != 5) ? 0x00 : disp == int8_t(disp) ? 0x40 : 0x80;
      put(uint8_t(mod | (reg & 7) << 3 | (base & 7)));
      if ((base & 7) == 4) put(0x24);  // rsp/r12 as base need a SIB byte
      if (mod == 0x40) put(uint8_t(disp));
      if (mod == 0x80) put32(uint32_t(disp));
    }
  };
};

}  // namespace exojit::vcode::detail
