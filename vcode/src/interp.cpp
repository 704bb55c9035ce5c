// SPDX-License-Identifier: MIT
// The reference interpreter (semantics documented in interp.h).
#include "exojit/vcode/interp.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "crc32c_p.h"
#include "exojit/error.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/text.h"
#include "exojit/vcode/verify.h"

namespace exojit::vcode {

namespace {

constexpr uint64_t kLabelTag = 0x1abe1ull << 44;  // la() values: tag | function << 24 | label
constexpr int kMaxDepth = 4096;

uint64_t norm(Type t, uint64_t v) {
  return uint64_t(normalize_imm(t, int64_t(v)));
}

double as_double(Type t, uint64_t v) {
  return t == Type::F32 ? double(std::bit_cast<float>(uint32_t(v))) : std::bit_cast<double>(v);
}
uint64_t from_double(Type t, double d) {
  return t == Type::F32 ? uint64_t(std::bit_cast<uint32_t>(float(d))) : std::bit_cast<uint64_t>(d);
}

template <typename F>
uint64_t float_op(Type t, uint64_t a, uint64_t b, F&& op) {
  if (t == Type::F32) {
    float r = op(std::bit_cast<float>(uint32_t(a)), std::bit_cast<float>(uint32_t(b)));
    return std::bit_cast<uint32_t>(r);
  }
  return std::bit_cast<uint64_t>(op(std::bit_cast<double>(a), std::bit_cast<double>(b)));
}

uint64_t bswap_bits(int bits, uint64_t v) {
  if (bits == 16) return uint64_t(__builtin_bswap16(uint16_t(v)));
  if (bits == 32) return uint64_t(__builtin_bswap32(uint32_t(v)));
  return __builtin_bswap64(v);
}

// Integer to float conversion in the destination precision (one rounding, like the hardware).
uint64_t int_to_float(Type dst, Type src, uint64_t v) {
  if (dst == Type::F32) {
    float f = is_signed(src) ? float(int64_t(v)) : float(v);
    return std::bit_cast<uint32_t>(f);
  }
  double d = is_signed(src) ? double(int64_t(v)) : double(v);
  return std::bit_cast<uint64_t>(d);
}

template <typename T>
bool compare_as(Op op, T x, T y) {
  switch (op) {
    case Op::Blt:
      return x < y;
    case Op::Ble:
      return x <= y;
    case Op::Bgt:
      return x > y;
    case Op::Bge:
      return x >= y;
    case Op::Beq:
      return x == y;
    default:
      return x != y;
  }
}

// A vector register's bytes, lane i at bytes [i * lane, (i + 1) * lane).
struct VecReg {
  alignas(32) uint8_t bytes[32] = {};

  uint64_t lane(int lane_bytes, int i) const {
    uint64_t v = 0;
    std::memcpy(&v, bytes + i * lane_bytes, size_t(lane_bytes));
    return v;
  }
  void set_lane(int lane_bytes, int i, uint64_t v) {
    std::memcpy(bytes + i * lane_bytes, &v, size_t(lane_bytes));
  }
};

// Executes a lane-wise vector instruction whose destination is the vector register `d`.
void vector_insn(const Insn& in, std::vector<VecReg>& v, const uint64_t* r) {
  const Type t = in.type;
  const int lb = lane_bits(t) / 8, lanes = lane_count(t);
  const VecReg& a = v[in.a];
  VecReg out;
  switch (in.op) {
    case Op::Mov:
      out = a;
      break;
    case Op::Set:
      for (int i = 0; i < lanes; ++i) out.set_lane(lb, i, uint64_t(in.imm));
      break;
    case Op::Splat:
      for (int i = 0; i < lanes; ++i) out.set_lane(lb, i, r[in.a]);
      break;
    case Op::Widen: {
      const int nb = lb / 2, half = int(in.imm) * lanes;
      for (int i = 0; i < lanes; ++i) out.set_lane(lb, i, a.lane(nb, half + i));
      break;
    }
    case Op::Shuf:
      for (int i = 0; i < vector_bits(t) / 8; ++i)
        out.bytes[i] = a.bytes[(i & ~15) + ((uint64_t(in.imm) >> (4 * (i & 15))) & 15)];
      break;
    default: {
      const VecReg& b = v[in.b];
      const unsigned count = unsigned(in.imm);
      for (int i = 0; i < lanes; ++i) {
        uint64_t x = a.lane(lb, i), y = (in.flags & kImm) ? 0 : b.lane(lb, i), z;
        switch (in.op) {
          case Op::Add:
            z = x + y;
            break;
          case Op::Sub:
            z = x - y;
            break;
          case Op::And:
            z = x & y;
            break;
          case Op::Or:
            z = x | y;
            break;
          case Op::Xor:
            z = x ^ y;
            break;
          case Op::Lsh:
            z = count >= 64 ? 0 : x << count;
            break;
          default:  // Rsh (logical; the count is below the lane width)
            z = count >= 64 ? 0 : x >> count;
        }
        out.set_lane(lb, i, z);
      }
    }
  }
  v[in.dst] = out;
}

// Compares in the operation type: C semantics (signed, unsigned, or IEEE with NaN unordered).
bool compare(Op op, Type t, uint64_t a, uint64_t b) {
  if (is_float(t)) return compare_as(op, as_double(t, a), as_double(t, b));
  if (is_signed(t)) return compare_as(op, int64_t(a), int64_t(b));
  return compare_as(op, a, b);
}

}  // namespace

Interpreter::Interpreter(const Module& m) : m_(m) {
  for (const auto& fp : m.functions()) {
    const Function& f = *fp;
    if (!f.verified) verify(m, f);  // never interpret unchecked IR
    Prepared p;
    p.label_pos.assign(f.num_labels, UINT32_MAX);
    for (size_t i = 0; i < f.code.size(); ++i)
      if (f.code[i].op == Op::Place) p.label_pos[f.code[i].dst] = uint32_t(i);
    size_t off = 0;
    for (const LocalInfo& l : f.locals) {
      off = (off + l.align - 1) & ~size_t(l.align - 1);
      p.local_offset.push_back(uint32_t(off));
      off += l.size;
    }
    p.frame_bytes = off;
    for (const RegInfo& ri : f.regs) p.has_vectors |= is_vector(ri.type);
    prepared_.push_back(std::move(p));
  }
}

uint64_t Interpreter::call(std::string_view name, std::span<const uint64_t> args) {
  int fi = m_.find_function(name);
  if (fi < 0) fail("interpreter: no function @{}", name);
  return call(size_t(fi), args);
}

uint64_t Interpreter::call(size_t fi, std::span<const uint64_t> args) {
  if (fi >= m_.functions().size()) fail("interpreter: no function number {}", fi);
  const Function& f = *m_.functions()[fi];
  if (args.size() != f.params.size())
    fail("interpreter: @{} takes {} arguments, {} given", f.name, f.params.size(), args.size());
  steps_ = 0;
  return execute(fi, args, 0);
}

uint64_t Interpreter::call_extern(const Extern& e, const uint64_t* args) {
  return call_raw(e.address, e.sig, args);
}

uint64_t Interpreter::execute(size_t fi, std::span<const uint64_t> args, int depth) {
  if (depth > kMaxDepth) fail("interpreter: call depth exceeds {}", kMaxDepth);
  const Function& f = *m_.functions()[fi];
  const Prepared& p = prepared_[fi];
  std::vector<uint64_t> r(f.regs.size(), 0);
  std::vector<VecReg> vr(p.has_vectors ? f.regs.size() : 0);
  for (size_t k = 0; k < f.params.size(); ++k) {
    Type t = f.regs[f.params[k].id].type;
    r[f.params[k].id] =
        is_float(t) ? (t == Type::F32 ? uint32_t(args[k]) : args[k]) : norm(t, args[k]);
  }
  // Locals live in a zeroed buffer aligned to 16 bytes, like the machine's stack frame.
  std::vector<std::byte> frame_storage(p.frame_bytes ? p.frame_bytes + 16 : 0);
  std::byte* frame_base =
      frame_storage.empty()
          ? nullptr
          : frame_storage.data() +
                ((16 - (reinterpret_cast<uintptr_t>(frame_storage.data()) & 15)) & 15);
  auto error = [&](size_t pc, const std::string& why) {
    fail("interpreter: @{}: instruction {} `{}`: {}", f.name, pc, print_insn(m_, f, f.code[pc]),
         why);
  };
  auto address = [&](const Insn& in) -> std::byte* {
    uint64_t base = (in.flags & kLocalBase)
                        ? uint64_t(reinterpret_cast<uintptr_t>(frame_base + p.local_offset[in.a]))
                        : r[in.a];
    if (in.flags & kIndex) base += r[in.b];
    return reinterpret_cast<std::byte*>(uintptr_t(base + uint64_t(in.imm)));
  };

  const Insn* code = f.code.data();
  size_t pc = 0;
  for (;;) {
    if (step_limit_ && ++steps_ > step_limit_) error(pc, "step limit exceeded");
    const Insn& in = code[pc];
    const Type t = in.type;
    // The second source operand. Field b is not a register for every opcode (a call keeps its
    // argument count there), so read it only when it names one.
    const uint64_t b = (in.flags & kImm) ? uint64_t(in.imm) : in.b < r.size() ? r[in.b] : 0;
    if (is_vector(t) && !is_load(in.op) && !is_store(in.op)) {
      vector_insn(in, vr, r.data());
      ++pc;
      continue;
    }
    switch (in.op) {
      case Op::Add:
        r[in.dst] = is_float(t) ? float_op(t, r[in.a], b, [](auto x, auto y) { return x + y; })
                                : norm(t, r[in.a] + b);
        break;
      case Op::Sub:
        r[in.dst] = is_float(t) ? float_op(t, r[in.a], b, [](auto x, auto y) { return x - y; })
                                : norm(t, r[in.a] - b);
        break;
      case Op::Mul:
        r[in.dst] = is_float(t) ? float_op(t, r[in.a], b, [](auto x, auto y) { return x * y; })
                                : norm(t, r[in.a] * b);
        break;
      case Op::Div:
      case Op::Mod: {
        if (is_float(t)) {
          r[in.dst] = float_op(t, r[in.a], b, [](auto x, auto y) { return x / y; });
          break;
        }
        uint64_t a = r[in.a];
        if (b == 0) error(pc, "division by zero");
        uint64_t q;
        if (is_signed(t)) {
          int64_t x = int64_t(a), y = int64_t(b);
          int bits = type_bits(t);
          if (y == -1 && bits >= 32 && x == (bits == 32 ? INT32_MIN : INT64_MIN))
            error(pc, "signed division overflow");
          if (y == -1)
            q = in.op == Op::Div ? uint64_t(0) - uint64_t(x) : 0;
          else
            q = uint64_t(in.op == Op::Div ? x / y : x % y);
        } else {
          q = in.op == Op::Div ? a / b : a % b;
        }
        r[in.dst] = norm(t, q);
        break;
      }
      case Op::And:
        r[in.dst] = norm(t, r[in.a] & b);
        break;
      case Op::Or:
        r[in.dst] = norm(t, r[in.a] | b);
        break;
      case Op::Xor:
        r[in.dst] = norm(t, r[in.a] ^ b);
        break;
      case Op::Lsh:
      case Op::Rsh: {
        unsigned count = unsigned(b) & (type_bits(t) == 64 ? 63 : 31);
        uint64_t a = r[in.a];
        uint64_t v = in.op == Op::Lsh ? a << count
                     : is_signed(t)   ? uint64_t(int64_t(a) >> count)
                                      : a >> count;
        r[in.dst] = norm(t, v);
        break;
      }
      case Op::Neg:
        r[in.dst] = is_float(t) ? r[in.a] ^ (t == Type::F32 ? 0x80000000ull : 1ull << 63)
                                : norm(t, uint64_t(0) - r[in.a]);
        break;
      case Op::Com:
        r[in.dst] = norm(t, ~r[in.a]);
        break;
      case Op::Not:
        r[in.dst] = r[in.a] == 0;
        break;
      case Op::Mov:
        r[in.dst] = r[in.a];
        break;
      case Op::Bswap:
        r[in.dst] = norm(t, bswap_bits(type_bits(t), r[in.a]));
        break;
      case Op::Cvt: {
        Type s = f.regs[in.a].type;
        uint64_t v = r[in.a];
        if (is_float(t) && is_float(s)) {
          r[in.dst] = from_double(t, as_double(s, v));
        } else if (is_float(t)) {
          r[in.dst] = int_to_float(t, s, v);
        } else if (is_float(s)) {
          double d = std::trunc(as_double(s, v));
          bool fits = t == Type::U64 ? (d >= 0 && d < 0x1p64) : (d >= -0x1p63 && d < 0x1p63);
          if (!fits) error(pc, "float to integer conversion out of range");
          r[in.dst] = norm(t, t == Type::U64 ? uint64_t(d) : uint64_t(int64_t(d)));
        } else {
          r[in.dst] = norm(t, v);
        }
        break;
      }
      case Op::Set:
        r[in.dst] = is_float(t) ? from_double(t, std::bit_cast<double>(in.imm)) : uint64_t(in.imm);
        break;
      case Op::Cksum: {
        uint64_t a = r[in.a];
        if (t == Type::U32) {
          uint64_t s = a + uint32_t(b);
          r[in.dst] = (s & 0xffffffffull) + (s >> 32);
        } else {
          uint64_t s = a + b;
          r[in.dst] = s + (s < a);
        }
        break;
      }
      case Op::BoundMask: {
        const uint64_t ones = type_bits(t) == 32 ? 0xffffffffull : ~uint64_t(0);
        r[in.dst] = r[in.a] <= (b & ones) ? ones : 0;
        break;
      }
      case Op::BoundZero: {
        const uint64_t ones = type_bits(t) == 32 ? 0xffffffffull : ~uint64_t(0);
        if (r[in.a] > (b & ones)) r[in.dst] = 0;
        break;
      }
      case Op::CksumFold: {
        uint64_t s = r[in.a];
        while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
        r[in.dst] = s;
        break;
      }
      case Op::Crc32c:
        r[in.dst] =
            detail::crc32c_update(uint32_t(r[in.a]), r[in.b], type_bytes(f.regs[in.b].type));
        break;
      case Op::Hsum: {
        Type s = f.regs[in.a].type;
        uint64_t sum = 0;
        for (int i = 0; i < lane_count(s); ++i) sum += vr[in.a].lane(lane_bits(s) / 8, i);
        r[in.dst] = norm(t, sum);
        break;
      }
      case Op::Splat:
      case Op::Widen:
      case Op::Shuf:
        break;  // vector destinations, handled above
      case Op::Ld:
      case Op::Ldu:
      case Op::Ldbe: {
        std::byte* at = address(in);
        size_t n = size_t(type_bytes(t));
        if (in.op == Op::Ld && (reinterpret_cast<uintptr_t>(at) & (n - 1)))
          error(pc, "misaligned ld (use ldu for unaligned data)");
        if (is_vector(t)) {
          std::memcpy(vr[in.dst].bytes, at, n);
          break;
        }
        uint64_t v = 0;
        std::memcpy(&v, at, n);
        if (in.op == Op::Ldbe && n > 1) v = bswap_bits(int(n * 8), v);
        r[in.dst] = is_float(t) ? v : norm(t, v);
        break;
      }
      case Op::St:
      case Op::Stu:
      case Op::Stbe: {
        std::byte* at = address(in);
        size_t n = size_t(type_bytes(t));
        if (in.op == Op::St && (reinterpret_cast<uintptr_t>(at) & (n - 1)))
          error(pc, "misaligned st (use stu for unaligned data)");
        if (is_vector(t)) {
          std::memcpy(at, vr[in.dst].bytes, n);
          break;
        }
        uint64_t v = r[in.dst];
        if (in.op == Op::Stbe && n > 1) v = bswap_bits(int(n * 8), v);
        std::memcpy(at, &v, n);
        break;
      }
      case Op::AddrL:
        r[in.dst] = uint64_t(reinterpret_cast<uintptr_t>(frame_base + p.local_offset[in.a]));
        break;
      case Op::Blt:
      case Op::Ble:
      case Op::Bgt:
      case Op::Bge:
      case Op::Beq:
      case Op::Bne:
        if (compare(in.op, t, r[in.a], b)) {
          pc = p.label_pos[in.dst];
          continue;
        }
        break;
      case Op::Jmp:
        pc = p.label_pos[in.dst];
        continue;
      case Op::Jmpr: {
        uint64_t v = r[in.a];
        uint64_t label = v & 0xffffff;
        if ((v & ~((1ull << 44) - 1)) != kLabelTag || ((v >> 24) & 0xfffff) != fi ||
            label >= p.label_pos.size())
          error(pc, "jmpr to an address that is not a label of this function");
        pc = p.label_pos[label];
        continue;
      }
      case Op::La:
        r[in.a] = kLabelTag | uint64_t(fi) << 24 | in.dst;
        break;
      case Op::Place:
        break;
      case Op::Call: {
        uint64_t argv[16];
        for (uint32_t k = 0; k < in.b; ++k) argv[k] = r[f.call_args[in.a + k]];
        uint64_t result;
        if (in.flags & kExtern) {
          result = call_extern(m_.externs()[size_t(in.imm)], argv);
        } else {
          result = execute(size_t(in.imm), std::span<const uint64_t>(argv, in.b), depth + 1);
        }
        if (!(in.flags & kVoid)) r[in.dst] = result;
        break;
      }
      case Op::Ret:
        if (in.flags & kVoid) return 0;
        if (in.flags & kImm) return uint64_t(in.imm);
        return r[in.a];
    }
    ++pc;
  }
}

}  // namespace exojit::vcode
