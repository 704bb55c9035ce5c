// SPDX-License-Identifier: MIT
// A generator of random well-formed vcode modules: loops, forward branches, indirect jumps,
// calls to C and to generated functions, memory through a buffer, locals, integer and float
// arithmetic and conversions, networking instructions. Every program is free of undefined
// behaviour by construction (divisors forced nonzero and positive, aligned accesses in bounds,
// float-to-integer conversions only of values that fit), so the interpreter and a back end
// must agree exactly.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "emit_ops.h"
#include "exojit/vcode.h"

namespace exojit::test {

inline constexpr size_t kScratchBytes = 256;  // random loads and stores go here
inline constexpr size_t kBufferBytes = 512;   // the second half receives every register at exit

extern "C" inline uint64_t random_program_mix(uint64_t a, int32_t b, double c) {
  return a * 0x9e3779b97f4a7c15ull + uint64_t(int64_t(b)) + uint64_t(int64_t(c * 16.0) & 0xffff);
}

class RandomProgram {
 public:
  explicit RandomProgram(uint64_t seed) : rng_(seed) {}

  // Builds @helper(u64, i32) -> u64 and @main(p buf, u64 x, i32 y, f64 z) -> u64.
  vcode::Module build() {
    using namespace vcode;
    Module m;
    mix_ = m.add_extern("mix", &random_program_mix);
    build_helper(m);
    build_main(m);
    return m;
  }

 private:
  using Reg = vcode::Reg;
  using Type = vcode::Type;

  uint64_t next(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return next(100) < uint64_t(percent); }
  int64_t random_imm() {
    switch (next(4)) {
      case 0:
        return int64_t(next(16)) - 8;
      case 1:
        return int64_t(next(1 << 16)) - (1 << 15);
      case 2:
        return int64_t(uint32_t(rng_()));
      default:
        return int64_t(rng_());
    }
  }
  Type random_int_type() {
    static const Type kTypes[] = {Type::I8,  Type::U8,  Type::I16, Type::U16, Type::I32,
                                  Type::U32, Type::I64, Type::U64, Type::P};
    return kTypes[next(9)];
  }

  void build_helper(vcode::Module& m) {
    vcode::Builder b(m, "helper", Type::U64, {Type::U64, Type::I32});
    Reg t = b.getreg(Type::U64);
    b.cvt(t, b.arg(1));
    b.mul(t, t, int64_t(next(1000)) + 1);
    b.xor_(t, t, b.arg(0));
    b.rsh(t, t, int64_t(next(13)));
    b.ret(t);
    b.finish();
  }

  void build_main(vcode::Module& m) {
    using namespace vcode;
    Builder b(m, "main", Type::U64, {Type::P, Type::U64, Type::I32, Type::F64},
              {RegClass::Var, RegClass::Temp, RegClass::Temp, RegClass::Temp});
    b_ = &b;
    buf_ = b.arg(0);
    x_ = b.arg(1);
    y_ = b.arg(2);
    z_ = b.arg(3);
    idx_ = b.getreg(Type::U64);
    lap_ = b.getreg(Type::P);
    counters_[0] = b.getreg(Type::U32, RegClass::Var);
    counters_[1] = b.getreg(Type::U32, RegClass::Var);
    // Defined up front: the verifier lets any jmpr reach any address-taken label.
    b.set(counters_[0], 0);
    b.set(counters_[1], 0);
    local_ = b.local(32, 8);
    for (int i = 0; i < 4; ++i) b.st(x_, local_, 8 * i);  // locals start defined

    // Two integer types per program, three registers each, temporaries and variables mixed.
    Type types[2] = {random_int_type(), random_int_type()};
    for (int i = 0; i < 6; ++i) {
      Type t = types[i % 2];
      Reg r = b.getreg(t, i >= 3 ? RegClass::Var : RegClass::Temp);
      ints_.push_back(r);
    }
    for (int i = 0; i < 5; ++i) {
      Type t = chance(50) ? Type::F32 : Type::F64;
      floats_.push_back(b.getreg(t, i >= 3 ? RegClass::Var : RegClass::Temp));
    }
    floats_.push_back(z_);
    ints_.push_back(x_);
    ints_.push_back(y_);
    for (Reg r : ints_) init_int(r);
    for (Reg r : floats_)
      if (!(r == z_)) init_float(r);

    block(0, 10 + int(next(30)));

    // Every register's value goes to the buffer's second half; x is the result.
    int64_t out = int64_t(kScratchBytes);
    for (Reg r : ints_) {
      b.stu(r, buf_, out);
      out += 8;
    }
    for (Reg r : floats_) {
      b.stu(r, buf_, out);
      out += 8;
    }
    b.ret(x_);
    b.finish();
  }

  Type type(Reg r) const { return b_->function().regs[r.id].type; }
  bool is_temp(Reg r) const { return b_->function().regs[r.id].cls == vcode::RegClass::Temp; }
  void init_int(Reg r) { b_->set(r, random_imm()); }
  void init_float(Reg r) {
    static const double kValues[] = {0.0, 1.0, -2.5, 1e6, 3.14159, -0.0, 1e-3, 7.0};
    b_->setf(r, kValues[next(8)]);
  }
  Reg pick_int() { return ints_[next(ints_.size())]; }
  Reg pick_float() { return floats_[next(floats_.size())]; }
  Reg pick_int_of(Type t) {
    std::vector<Reg> same;
    for (Reg r : ints_)
      if (type(r) == t) same.push_back(r);
    return same.empty() ? Reg{} : same[next(same.size())];
  }

  void block(int depth, int items) {
    for (int i = 0; i < items; ++i) {
      uint64_t what = next(100);
      if (depth < 2 && what < 8) {
        loop(depth);
      } else if (depth < 2 && what < 18) {
        branch(depth);
      } else if (what < 21) {
        call();
      } else if (what < 23) {
        indirect_jump(depth);
      } else {
        simple();
      }
    }
  }

  void loop(int depth) {
    Reg c = counters_[depth];
    vcode::Label top = b_->label();
    b_->set(c, int64_t(1 + next(4)));
    b_->place(top);
    block(depth + 1, 1 + int(next(5)));
    b_->sub(c, c, 1);
    b_->bgt(c, 0, top);
  }

  void compare_branch(Reg a, vcode::Label target) {
    using vcode::Op;
    static const Op kConds[] = {Op::Blt, Op::Ble, Op::Bgt, Op::Bge, Op::Beq, Op::Bne};
    Op op = kConds[next(6)];
    Reg other = vcode::is_float(type(a)) ? pick_float() : pick_int_of(type(a));
    if (vcode::is_float(type(a)) && type(other) != type(a)) other = a;
    bool imm = !vcode::is_float(type(a)) && chance(50);
    int64_t v = random_imm();
    imm ? emit_branch(*b_, op, a, v, target) : emit_branch(*b_, op, a, other, target);
  }

  void branch(int depth) {
    vcode::Label skip = b_->label();
    compare_branch(chance(80) ? pick_int() : pick_float(), skip);
    if (chance(40)) {
      vcode::Label end = b_->label();
      block(depth + 1, 1 + int(next(4)));
      b_->jmp(end);
      b_->place(skip);
      block(depth + 1, 1 + int(next(4)));
      b_->place(end);
    } else {
      block(depth + 1, 1 + int(next(4)));
      b_->place(skip);
    }
  }

  void indirect_jump(int depth) {
    vcode::Label target = b_->label();
    b_->la(lap_, target);
    b_->jmpr(lap_);
    if (depth < 2 && chance(50)) block(depth + 1, 1);  // unreachable code
    b_->place(target);
  }

  void call() {
    if (chance(50))
      b_->ccall(x_, mix_, {x_, y_, z_});
    else
      b_->call(x_, 0, {x_, y_});
    // Temporaries die at calls: define them again.
    for (Reg r : ints_)
      if (is_temp(r) && !(r == x_)) init_int(r);
    for (Reg r : floats_)
      if (is_temp(r)) init_float(r);
  }

  void simple() {
    uint64_t what = next(100);
    if (what < 40) return int_arith();
    if (what < 50) return int_unary();
    if (what < 58) return memory();
    if (what < 63) return local_access();
    if (what < 68) return checksum();
    if (what < 85) return float_arith();
    return conversion();
  }

  void int_arith() {
    Reg d = pick_int();
    Type t = type(d);
    Reg a = pick_int_of(t), bb = pick_int_of(t);
    uint64_t op = next(10);
    bool imm = chance(40);
    int64_t v = random_imm();
    auto& b = *b_;
    if (t == Type::P && op >= 2 && op <= 4) op = 0;  // no mul/div/mod on pointers
    switch (op) {
      case 0:
        imm ? b.add(d, a, v) : b.add(d, a, bb);
        break;
      case 1:
        imm ? b.sub(d, a, v) : b.sub(d, a, bb);
        break;
      case 2:
        imm ? b.mul(d, a, v) : b.mul(d, a, bb);
        break;
      case 3:
      case 4: {
        // Divisors are made positive and nonzero, so neither traps.
        if (imm) {
          int64_t div = int64_t(1 + next(100));  // nonzero in every type
          op == 3 ? b.div(d, a, div) : b.mod(d, a, div);
        } else {
          b.and_(bb, bb, 0x7f);
          b.or_(bb, bb, 1);
          op == 3 ? b.div(d, a, bb) : b.mod(d, a, bb);
        }
        break;
      }
      case 5:
        imm ? b.and_(d, a, v) : b.and_(d, a, bb);
        break;
      case 6:
        imm ? b.or_(d, a, v) : b.or_(d, a, bb);
        break;
      case 7:
        imm ? b.xor_(d, a, v) : b.xor_(d, a, bb);
        break;
      case 8:
        imm ? b.lsh(d, a, v & 127) : b.lsh(d, a, pick_int());
        break;
      default:
        imm ? b.rsh(d, a, v & 127) : b.rsh(d, a, pick_int());
        break;
    }
  }

  void int_unary() {
    Reg d = pick_int();
    Type t = type(d);
    Reg a = pick_int_of(t);
    switch (next(6)) {
      case 0:
        b_->neg(d, a);
        break;
      case 1:
        b_->com(d, a);
        break;
      case 2:
        b_->not_(d, a);
        break;
      case 3:
        b_->mov(d, a);
        break;
      case 4:
        if (vcode::type_bits(t) >= 16 && t != Type::P) b_->bswap(d, a);
        break;
      default:
        b_->set(d, random_imm());
        break;
    }
  }

  void memory() {
    bool fl = chance(25);
    Reg v = fl ? pick_float() : pick_int();
    Type t = type(v);
    int n = vcode::type_bytes(t);
    uint64_t kind = next(3);  // aligned, unaligned, big-endian
    if (fl && kind == 2) kind = 1;
    int64_t off = int64_t(next(kScratchBytes - 8));
    if (kind == 0) off &= ~int64_t(n - 1);
    bool store = chance(50), indexed = chance(40);
    if (indexed) {
      int64_t part = kind == 0 ? int64_t(next(8)) * n : int64_t(next(16));
      if (part > off) part = 0;
      b_->set(idx_, off - part);
      off = part;
    }
    auto& b = *b_;
    using vcode::Op;
    Op ops[2][3] = {{Op::Ld, Op::Ldu, Op::Ldbe}, {Op::St, Op::Stu, Op::Stbe}};
    switch (ops[store][kind]) {
      case Op::Ld:
        indexed ? b.ld(v, buf_, idx_, off) : b.ld(v, buf_, off);
        break;
      case Op::Ldu:
        indexed ? b.ldu(v, buf_, idx_, off) : b.ldu(v, buf_, off);
        break;
      case Op::Ldbe:
        indexed ? b.ldbe(v, buf_, idx_, off) : b.ldbe(v, buf_, off);
        break;
      case Op::St:
        indexed ? b.st(v, buf_, idx_, off) : b.st(v, buf_, off);
        break;
      case Op::Stu:
        indexed ? b.stu(v, buf_, idx_, off) : b.stu(v, buf_, off);
        break;
      default:
        indexed ? b.stbe(v, buf_, idx_, off) : b.stbe(v, buf_, off);
        break;
    }
  }

  void local_access() {
    Reg v = chance(25) ? pick_float() : pick_int();
    int n = vcode::type_bytes(type(v));
    int64_t off = int64_t(next(uint64_t(32 / n))) * n;
    if (chance(50))
      b_->st(v, local_, off);
    else
      b_->ld(v, local_, off);
  }

  void checksum() {
    std::vector<Reg> accs;
    for (Reg r : ints_)
      if (type(r) == Type::U32 || type(r) == Type::U64) accs.push_back(r);
    Reg acc = accs[next(accs.size())];  // x is always one
    Reg in = Reg{};
    for (Reg r : ints_) {
      Type t = type(r);
      if ((t == Type::U16 || t == Type::U32 || t == Type::U64) &&
          vcode::type_bits(t) <= vcode::type_bits(type(acc)) && chance(50))
        in = r;
    }
    if (in.valid())
      b_->cksum(acc, acc, in);
    else
      b_->cksum(acc, acc, random_imm());
    if (chance(30)) {
      Reg d = Reg{};
      for (Reg r : ints_)
        if (type(r) == Type::U16 || type(r) == Type::U32 || type(r) == Type::U64) d = r;
      if (d.valid()) b_->cksum_fold(d, acc);
    }
  }

  void float_arith() {
    Reg d = pick_float();
    Type t = type(d);
    Reg a = d, bb = d;
    for (Reg r : floats_)
      if (type(r) == t && chance(50)) a = r;
    for (Reg r : floats_)
      if (type(r) == t && chance(50)) bb = r;
    switch (next(7)) {
      case 0:
        b_->add(d, a, bb);
        break;
      case 1:
        b_->sub(d, a, bb);
        break;
      case 2:
        b_->mul(d, a, bb);
        break;
      case 3:
        b_->div(d, a, bb);
        break;
      case 4:
        b_->neg(d, a);
        break;
      case 5:
        b_->mov(d, a);
        break;
      default:
        init_float(d);
        break;
    }
  }

  void conversion() {
    Reg d = pick_int(), a = pick_int();
    switch (next(4)) {
      case 0:
        b_->cvt(d, a);
        break;  // integer to integer
      case 1:
        b_->cvt(pick_float(), a);
        break;  // integer to float
      case 2: {
        Reg f = pick_float(), g = pick_float();  // float to float
        b_->cvt(f, g);
        break;
      }
      default: {
        // Float to integer, of a value known to fit: a 32-bit-or-narrower integer round trip.
        Type at = type(a);
        if (vcode::type_bits(at) > 32) return;
        if (vcode::is_signed(at) && (type(d) == Type::U64 || type(d) == Type::P)) return;
        Reg f = pick_float();
        if (type(f) == Type::F32 && vcode::type_bits(at) > 16) return;  // exact in f32
        b_->cvt(f, a);
        b_->cvt(d, f);
      }
    }
  }

  std::mt19937_64 rng_;
  vcode::Builder* b_ = nullptr;
  uint32_t mix_ = 0;
  Reg buf_, x_, y_, z_, idx_, lap_;
  Reg counters_[2];
  vcode::Local local_;
  std::vector<Reg> ints_, floats_;
};

}  // namespace exojit::test
