// SPDX-License-Identifier: MIT
// The escape fuzzer: libFuzzer writes handler programs (fuzz_escape.h: loops, several bases,
// indexed accesses, primitives, wild constants, edits of the records after finish()), which are
// installed on the attacker of a small machine (escape_machine.h) and run on a few messages,
// natively and in the interpreter, each engine on a machine of its own. Findings (abort()):
//   - any byte of physical memory or of the host canaries changed outside the attacker's own
//     writable region pages, after any run;
//   - a crash or a sanitizer report (the fuzz build has ASan/UBSan);
//   - a run that takes far longer than its budget allows (a hang is libFuzzer's -timeout);
//   - the engines disagreeing (outcome, the writable pages, the replies): the interpreter is the
//     reference semantics of the lowered code both run;
//   - an unchecked (trusted) handler accepted for an empty region;
//   - a handler accepted past its limits (max_locals, max_insns and their caps, the number of
//     pipe lists and their bodies' size, the straight-line cost against the budget), or a
//     refusal that changed memory; more replies sent for a message than max_replies.
// A refused program (exojit::Error) is a fine outcome. The extended header (fuzz_escape.h) varies
// the limits, hardening, pipe lists and message sizes at their boundaries.
#include "fuzz_escape.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>

#include "escape_machine.h"
#include "exojit/error.h"
#include "exojit/pipes/library.h"

// What the inputs came to (printed by the corpus runner): not a program, refused, run.
size_t exojit_ash_escape_unbuilt = 0, exojit_ash_escape_refused = 0, exojit_ash_escape_run = 0;

namespace exojit::ash::fuzz {
namespace {

using testing::EscapeMachine;
using vcode::Op;
using vcode::Type;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_escape: FINDING: %s\n", what.c_str());
  std::abort();
}

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool empty() const { return i_ >= n_; }
  uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  uint32_t u32() { return uint32_t(u8()) | uint32_t(u8()) << 8 | uint32_t(u8()) << 16; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= uint64_t(u8()) << (8 * k);
    return v;
  }
  std::vector<uint8_t> rest() {
    std::vector<uint8_t> v(p_ + std::min(i_, n_), p_ + n_);
    i_ = n_;
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

// Decodes one input into a handler program for machine `m` (constants name its addresses).
class Decoder {
 public:
  Decoder(Reader r, EscapeMachine& m) : r_(r), m_(m) {}

  // The options, then the program (built and edited in `h`). nullopt: nothing to run.
  HandlerOptions header() {
    HandlerOptions o = m_.options();
    uint8_t region = r_.u8() % 5, budget = r_.u8(), flags = r_.u8();
    constexpr uint64_t kPage = runtime::kPageSize;
    const Region regions[] = {{EscapeMachine::kApp, 4 * kPage},
                              {EscapeMachine::kApp, 0},
                              {EscapeMachine::kApp, 2 * kPage + 100},
                              {EscapeMachine::kApp + kPage, kPage},
                              {EscapeMachine::kVictim, 2 * kPage}};
    o.region = regions[region];
    o.budget = int64_t(64) << (budget % 12);
    commit_at_end_ = !(flags & kFlagAbortAtEnd);
    trusted_probe_ = flags & kFlagTrustedProbe;
    if (flags & kFlagExtended) extended(o);
    return o;
  }

  // The limits at and around their caps, hardening, the local's size, the pipe lists and the
  // messages' sizes (fuzz_escape.h).
  void extended(HandlerOptions& o) {
    static constexpr uint32_t kLocals[] = {0,    1,    15,   16,   17,    32,        256,
                                           1024, 2047, 2048, 2049, 65536, UINT32_MAX};
    static constexpr uint32_t kInsns[] = {0,     1,     32,    64,    256,      1024,      4096,
                                          16384, 65535, 65536, 65537, 1u << 31, UINT32_MAX};
    static constexpr uint32_t kLocalSizes[] = {16, 1, 7, 8, 64, 256, 2040, 2048};
    static constexpr uint32_t kReplies[] = {4, 0, 1, UINT32_MAX};
    static constexpr size_t kListCounts[] = {0, 1, 2, 3, 4, 63, 64, 65};
    uint8_t locals = r_.u8(), insns = r_.u8(), opt = r_.u8(), lists = r_.u8();
    o.max_locals = kLocals[locals % std::size(kLocals)];
    o.max_insns = kInsns[insns % std::size(kInsns)];
    o.harden = !(opt & kOptNoHarden);
    o.max_replies = kReplies[(opt >> 1) % 4];
    local_size_ = kLocalSizes[(opt >> 3) % 8];
    num_lists_ = kListCounts[lists % 8];
    list_kinds_ = uint8_t(lists >> 3);
    msg_size_[0] = r_.u8();
    msg_size_[1] = r_.u8();
  }
  bool trusted_probe() const { return trusted_probe_; }

  void program(HandlerBuilder& h) {
    regs_ = {h.getreg(Type::P, RegClass::Var),    h.getreg(Type::P, RegClass::Var),
             h.getreg(Type::U64, RegClass::Var),  h.getreg(Type::U64, RegClass::Var),
             h.getreg(Type::P, RegClass::Temp),   h.getreg(Type::U64, RegClass::Temp),
             h.getreg(Type::U32, RegClass::Temp), h.getreg(Type::U8, RegClass::Temp)};
    n_ = h.getreg(Type::I64, RegClass::Var);
    local_ = h.local(local_size_);
    add_pipe_lists(h);
    for (Reg r : regs_) h.set(r, 0);
    h.set(n_, 0);
    ops(h, 64, 0);
    if (commit_at_end_)
      h.commit();
    else
      h.abort();
    h.finish();
  }

  void edits(HandlerBuilder& h) {
    vcode::Function& f = h.function();
    for (int e = r_.u8() % 9; e > 0; --e) edit(f);
  }

  std::vector<std::vector<uint8_t>> messages() {
    std::vector<uint8_t> rest = r_.rest();
    std::vector<std::vector<uint8_t>> msgs;
    size_t third = rest.size() / 3;
    msgs.emplace_back(rest.begin(), rest.begin() + third);
    msgs.emplace_back(rest.begin() + third, rest.end());
    // Sizes at the boundaries (0: the split above): the rest's bytes repeated.
    static constexpr size_t kSizes[] = {0,    0,    1,    2,    7,     8,     9,     64,
                                        2047, 2048, 2049, 4096, 65535, 65536, 65537, 262144};
    for (int k = 0; k < 2; ++k) {
      uint8_t choice = msg_size_[k] % std::size(kSizes);
      if (choice == 0) continue;
      std::vector<uint8_t>& m = msgs[size_t(k)];
      m.resize(kSizes[choice]);
      for (size_t i = 0; i < m.size(); ++i) m[i] = rest.empty() ? 0x11 : rest[i % rest.size()];
    }
    msgs.emplace_back();  // an empty one (data() may be null)
    return msgs;
  }

 private:
  int64_t constant() {
    uint8_t s = r_.u8();
    if (s < kPoolSize) return int64_t(pool()[s]);
    if (s < kRawSelector) return int64_t(s - kSmallBase - 16) * 8;
    return int64_t(r_.u64());
  }
  std::vector<uint64_t> pool() const {
    constexpr uint64_t kApp = EscapeMachine::kApp, kPage = runtime::kPageSize;
    return {kApp,
            kApp + kPage - 8,
            kApp + 2 * kPage - 8,
            kApp + 2 * kPage,
            kApp + 3 * kPage,
            kApp + 4 * kPage,
            kApp - 8,
            EscapeMachine::kVictim,
            uint64_t(INT64_MIN),
            uint64_t(INT64_MAX),
            0,
            ~uint64_t(0),
            uint64_t(1) << 62,
            uint64_t(8) - (uint64_t(1) << 62),
            reinterpret_cast<uint64_t>(m_.canary_low.data()),
            reinterpret_cast<uint64_t>(m_.kernel.memory().bytes())};
  }
  Reg reg64() { return regs_[r_.u8() % 6]; }  // p0 p1 x v q i
  Reg base() {
    static constexpr int kBases[] = {0, 1, 4};
    return regs_[size_t(kBases[r_.u8() % 3])];
  }
  Reg value(uint8_t width) { return regs_[width == 0 ? 7 : width == 1 ? 6 : 3]; }
  // After a call primitive the temporaries are dead: define them again.
  void refresh_temps(HandlerBuilder& h) {
    for (size_t k = 4; k < regs_.size(); ++k) h.set(regs_[k], 0);
  }

  void ops(HandlerBuilder& h, int count, int depth) {
    for (int k = 0; k < count && !r_.empty(); ++k) {
      uint8_t op = r_.u8();
      if (op == kEnd) return;
      one(h, Opcode(op % kNumOps), depth);
    }
  }

  void one(HandlerBuilder& h, Opcode op, int depth) {
    switch (op) {
      case kSet: {
        Reg r = regs_[r_.u8() % regs_.size()];
        return h.set(r, constant());
      }
      case kAddImm: {
        Reg r = reg64();
        return h.add(r, r, constant());
      }
      case kAlu: {
        uint8_t which = r_.u8() % 8;
        Reg d = reg64(), a = reg64();
        static constexpr Op kOps[] = {Op::Add, Op::Sub, Op::Mul, Op::And,
                                      Op::Or,  Op::Xor, Op::Lsh, Op::Rsh};
        switch (kOps[which]) {
          case Op::Add:
            return h.add(d, d, a);
          case Op::Sub:
            return h.sub(d, d, a);
          case Op::Mul:
            return h.mul(d, d, a);
          case Op::And:
            return h.and_(d, d, a);
          case Op::Or:
            return h.or_(d, d, a);
          case Op::Xor:
            return h.xor_(d, d, a);
          case Op::Lsh:
            return h.lsh(d, d, a);
          default:
            return h.rsh(d, d, a);
        }
      }
      case kStore:
      case kLoad: {
        uint8_t width = r_.u8() % 3, form = r_.u8() % 3;
        Reg v = value(width), b = base();
        int64_t d = constant();
        if (op == kStore) {
          if (form == 0) h.st(v, b, d);
          if (form == 1) h.stu(v, b, d);
          if (form == 2) h.stbe(v, b, d);
        } else {
          if (form == 0) h.ld(v, b, d);
          if (form == 1) h.ldu(v, b, d);
          if (form == 2) h.ldbe(v, b, d);
        }
        return;
      }
      case kIndexed: {
        bool store = r_.u8() & 1;
        Reg v = value(r_.u8() % 3), b = base(), i = regs_[5];
        int64_t d = constant();
        return store ? h.stu(v, b, i, d) : h.ldu(v, b, i, d);
      }
      case kLoop: {
        int64_t count = r_.u8() % 64;
        bool early = r_.u8() & 1;
        int prefix = r_.u8() % 4, body = r_.u8() % 8;
        if (depth >= 2) return;
        h.set(n_, count);
        Label head = h.label();
        h.place(head);
        ops(h, prefix, depth + 1);
        if (early) {  // the class 1: a back edge before the body's accesses
          h.sub(n_, n_, 1);
          h.bgt(n_, count / 2, head);
        }
        ops(h, body, depth + 1);
        h.sub(n_, n_, 1);
        h.bgt(n_, 0, head);
        return;
      }
      case kIf: {
        Reg a = reg64();
        int64_t c = constant();
        int body = r_.u8() % 6;
        Label skip = h.label();
        h.beq(a, c, skip);
        ops(h, body, depth + 1);
        h.place(skip);
        return;
      }
      case kDivide: {
        bool mod = r_.u8() & 1, by_reg = r_.u8() & 1;
        Reg d = regs_[3];
        if (by_reg) {
          Reg s = reg64();
          return mod ? h.mod(d, d, s) : h.div(d, d, s);
        }
        int64_t c = constant();
        if (c == 0) c = 1;
        return mod ? h.mod(d, d, c) : h.div(d, d, c);
      }
      case kPrim:
        return primitive(h);
      case kPipe:
        return pipe_primitive(h);
      case kLocal: {
        bool store = r_.u8() & 1;
        // Anywhere in the local, its last bytes included (edits take accesses past it).
        Reg v = local_size_ >= 8 ? regs_[3] : regs_[7];
        int64_t width = local_size_ >= 8 ? 8 : 1;
        int64_t off = int64_t(r_.u8()) * (int64_t(local_size_) - width + 1) / 256;
        return store ? h.st(v, local_, off) : h.ld(v, local_, off);
      }
      case kAbortIf: {
        Label go = h.label();
        h.bne(regs_[3], constant(), go);
        h.abort();
        h.place(go);
        return;
      }
      case kSpin: {
        Label head = h.label();
        int64_t c = constant();
        h.place(head);
        h.add(regs_[2], regs_[2], 1);
        h.bne(regs_[2], c, head);
        return;
      }
      default:
        return;
    }
  }

  // Pipe lists from the library (and one whose constant is wild), with a persistent-register
  // reference for each list whose first pipe has one.
  void add_pipe_lists(HandlerBuilder& h) {
    for (size_t i = 0; i < num_lists_; ++i) {
      pipes::PipeList pl;
      const char* reg = nullptr;
      switch ((list_kinds_ + i) % 8) {
        case 0:
          pipes::library::cksum(pl);
          reg = "acc";
          break;
        case 1:
          pipes::library::bswap16(pl);
          break;
        case 2:
          pipes::library::bswap32(pl);
          break;
        case 3:
          pipes::library::cipher(pl, pipes::library::kDemoKey);
          reg = "state";
          break;
        case 4:
          pipes::library::crc32c(pl);
          reg = "crc";
          break;
        case 5:
          pipes::library::copy(pl);
          break;
        case 6:
          pl.add("wild", 64, pipes::kPlain, [&](pipes::PipeBody& p) {
            bodies_.push_back(&p.function());  // the attacker's records after add()
            vcode::Reg k = p.persistent(Type::U64, "k", 0x9090909090909090u);
            p.xor_(p.input(), p.input(), k);
            p.add(k, k, int64_t(0x0102030405060708));
          });
          reg = "k";
          break;
        default:
          pipes::library::cksum(pl);
          pipes::library::bswap32(pl);
          pipes::library::crc32c(pl);
          reg = "acc";
          break;
      }
      int list = h.add_pipes(std::move(pl));
      if (reg) refs_.push_back(h.pipe_ref(list, 0, reg));
    }
  }

  // A byte count for a pipe primitive: the register x, or one at a boundary.
  Operand count() {
    static constexpr int64_t kCounts[] = {0,
                                          1,
                                          3,
                                          4,
                                          7,
                                          8,
                                          63,
                                          64,
                                          2047,
                                          2048,
                                          2049,
                                          4096,
                                          65535,
                                          65536,
                                          65537,
                                          int64_t(1) << 32,
                                          int64_t(1) << 48};
    uint8_t c = r_.u8();
    if (c & 1) return regs_[2];
    return kCounts[(c >> 1) % std::size(kCounts)];
  }

  void pipe_primitive(HandlerBuilder& h) {
    uint8_t which = r_.u8() % 6;
    int list = int(r_.u8() % (num_lists_ + 1)) - 1;  // -1: a plain copy
    Reg x = regs_[2];
    switch (which) {
      case 0:
        h.consume(Operand(base()), count(), list);
        break;
      case 1:
        if (list < 0) return;
        h.scan(count(), list);
        break;
      case 2:
        h.reply_app(Operand(base()), count(), list);
        break;
      case 3:
        if (refs_.empty()) return;
        h.pipe_get(x, refs_[r_.u8() % refs_.size()]);
        break;
      case 4:
        if (refs_.empty()) return;
        h.pipe_set(refs_[r_.u8() % refs_.size()], operand());
        break;
      default:  // the whole rest of the message, exactly
        h.remaining(x);
        h.consume(Operand(base()), x, list);
        break;
    }
    refresh_temps(h);
  }

  Operand operand() {
    if (r_.u8() & 1) return regs_[2];  // x
    uint8_t v = r_.u8();
    return int64_t(v < 200 ? v : int64_t(v) << 8);
  }

  void primitive(HandlerBuilder& h) {
    uint8_t which = r_.u8() % 15;
    Reg t32 = regs_[6], x = regs_[2], v = regs_[3];
    switch (which) {
      case 0:
        return h.peek(t32, operand());
      case 1:
        return h.peek_at(v, operand());
      case 2:
        return h.consume_field(regs_[7]);
      case 3:
        return h.skip(operand());
      case 4:
        return h.msg_length(x);
      case 5:
        return h.remaining(x);
      default:
        break;
    }
    switch (which) {
      case 6:
        h.consume(Operand(base()), operand());
        break;
      case 7:
        h.reply_begin();
        break;
      case 8:
        h.reply_put(v, 1 << (r_.u8() % 4));
        break;
      case 9:
        h.reply_poke(operand(), v, 2);
        break;
      case 10:
        h.reply_copy(operand(), operand());
        break;
      case 11:
        h.reply_app(Operand(base()), operand());
        break;
      case 12:
        h.reply_cksum(x, operand(), operand());
        break;
      case 13:
        h.reply_send(x);
        break;
      default:
        h.consume(int64_t(pool()[r_.u8() % kPoolSize] & ((uint64_t(1) << 48) - 1)), operand());
        break;
    }
    refresh_temps(h);
  }

  void edit(vcode::Function& f) {
    uint8_t field = r_.u8() % kNumEdits, index = r_.u8(), value = r_.u8();
    auto insn = [&]() -> vcode::Insn* {
      return f.code.empty() ? nullptr : &f.code[index % f.code.size()];
    };
    switch (field) {
      case kEditOp:
        if (auto* x = insn()) x->op = Op(value % 50);
        return;
      case kEditFlags:
        if (auto* x = insn()) x->flags = value;
        return;
      case kEditDst:
        if (auto* x = insn()) x->dst = value < 240 ? value % 24 : r_.u32();
        return;
      case kEditA:
        if (auto* x = insn()) x->a = value < 240 ? value % 24 : r_.u32();
        return;
      case kEditB:
        if (auto* x = insn()) x->b = value < 240 ? value % 24 : r_.u32();
        return;
      case kEditImm:
        if (auto* x = insn()) x->imm = constant();
        return;
      case kEditType:
        if (auto* x = insn()) x->type = Type(value % 22);
        return;
      case kEditRegSlot:
        if (!f.regs.empty()) f.regs[index % f.regs.size()].slot = value % 10;
        return;
      case kEditRegClass:
        if (!f.regs.empty()) f.regs[index % f.regs.size()].cls = RegClass(value % 3);
        return;
      case kEditRegType:
        if (!f.regs.empty()) f.regs[index % f.regs.size()].type = Type(value % 22);
        return;
      case kEditParam:
        if (!f.params.empty()) f.params[0].id = value % 24;
        return;
      case kEditCallArg:
        if (!f.call_args.empty()) f.call_args[index % f.call_args.size()] = value % 24;
        return;
      case kEditLabels:
        f.num_labels = value < 128 ? value : r_.u32();
        return;
      case kEditLocal:
        if (!f.locals.empty())
          f.locals[0] = vcode::LocalInfo{uint32_t(value) << (index % 20), index};
        return;
      case kEditRemove:
        if (!f.code.empty()) f.code.erase(f.code.begin() + index % f.code.size());
        return;
      case kEditSwap:
        if (f.code.size() > 1) {
          size_t i = index % (f.code.size() - 1);
          std::swap(f.code[i], f.code[i + 1]);
        }
        return;
      case kEditSig:
        f.sig.ret = Type(value % 22);
        return;
      case kEditPipeBody: {
        if (bodies_.empty()) return;
        vcode::Function& body = *bodies_[index % bodies_.size()];
        switch (value % 4) {
          case 0:
            body.params.clear();
            return;
          case 1:
            if (!body.params.empty()) body.params[0].id = r_.u8();
            return;
          case 2:
            body.regs.resize(r_.u8() % 4);
            return;
          default:
            if (!body.regs.empty()) body.regs[r_.u8() % body.regs.size()].type = Type(r_.u8() % 20);
            return;
        }
      }
      default:
        return;
    }
  }

  Reader r_;
  EscapeMachine& m_;
  std::vector<Reg> regs_;
  Reg n_;
  vcode::Local local_;
  bool commit_at_end_ = true, trusted_probe_ = false;
  uint32_t local_size_ = 16;
  size_t num_lists_ = 0;
  uint8_t list_kinds_ = 0;
  uint8_t msg_size_[2] = {0, 0};
  std::vector<int> refs_;
  std::vector<vcode::Function*> bodies_;  // the wild pipes' bodies
};

// What one engine did with the messages.
struct EngineResult {
  std::vector<Outcome> outcomes;
  std::vector<uint8_t> memory;  // the writable pages afterwards
  std::vector<std::vector<uint8_t>> sent;
};

// Runs the messages through `h` on `m`, checking the machine after every run, then puts the
// writable pages and the replies back as they were (the other engine runs on the same machine,
// so that constants naming host addresses are the same for both).
EngineResult run_all(EscapeMachine& m, Handler& h, const std::vector<std::vector<uint8_t>>& msgs,
                     uint64_t max_replies) {
  EngineResult r;
  std::vector<uint8_t> before = m.writable_bytes();
  for (const std::vector<uint8_t>& msg : msgs) {
    auto start = std::chrono::steady_clock::now();
    size_t sent_before = m.sent.size();
    r.outcomes.push_back(m.run(h, msg));
    if (m.sent.size() - sent_before > max_replies)
      finding("more replies sent for one message than max_replies");
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > 5) finding("a run took " + std::to_string(seconds) + " s (past its budget)");
    if (std::string what = m.intact(); !what.empty())
      finding("memory outside the handler's writable pages changed: " + what);
  }
  const HandlerCounters& c = h.counters();
  if (c.runs != c.committed + c.aborted_voluntary + c.aborted_budget + c.aborted_fault)
    finding("the outcome counters do not add up");
  r.memory = m.writable_bytes();
  r.sent = std::move(m.sent);
  m.sent.clear();
  m.restore_writable(before);
  return r;
}

// What an accepted handler must be within (README "Threat model"), from the records themselves.
void check_limits(const HandlerBuilder& program, const HandlerOptions& o, const Handler& h) {
  const vcode::Function& f = program.function();
  if (o.max_locals > kMaxLocalsLimit || o.max_insns > kMaxInsnsLimit)
    finding("a handler accepted with limits past their caps");
  uint64_t local_bytes = 0;
  for (const vcode::LocalInfo& l : f.locals) local_bytes += uint64_t(l.size) + l.align;
  if (local_bytes > o.max_locals) finding("a handler accepted with locals past max_locals");
  uint64_t size = f.code.size();
  for (const pipes::PipeList& pl : program.pipe_lists()) {
    size += 1;
    for (size_t p = 0; p < pl.size(); ++p) size += pl[p].code.size() + 1;
  }
  if (f.code.size() > o.max_insns || size > o.max_insns || program.pipe_lists().size() > 64)
    finding("a handler accepted past max_insns or with more than 64 pipe lists");
  if (int64_t(h.static_cost()) > o.budget)
    finding("a handler accepted whose straight-line cost exceeds its budget");
}

std::unique_ptr<Handler> install(const HandlerBuilder& program, EscapeMachine& m, HandlerOptions o,
                                 Engine e) {
  o.engine = e;
  try {
    auto h = std::make_unique<Handler>(program, m.attacker, o);
    ++exojit_ash_escape_run;
    check_limits(program, o, *h);
    return h;
  } catch (const Error& error) {
    ++exojit_ash_escape_refused;
    if (std::getenv("EXOJIT_ESCAPE_VERBOSE")) std::fprintf(stderr, "refused: %s\n", error.what());
    // Refused at install: fine, if nothing changed.
    if (std::string what = m.intact(); !what.empty())
      finding("a refused handler changed memory: " + what);
    return nullptr;
  }
}

}  // namespace
}  // namespace exojit::ash::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace exojit::ash;
  using namespace exojit::ash::fuzz;
  testing::EscapeMachine m;
  Decoder d(Reader(data, size), m);
  HandlerOptions o = d.header();
  HandlerBuilder program("fuzzed");
  try {
    d.program(program);
  } catch (const exojit::Error& error) {
    ++exojit_ash_escape_unbuilt;
    if (std::getenv("EXOJIT_ESCAPE_VERBOSE")) std::fprintf(stderr, "unbuilt: %s\n", error.what());
    return 0;  // the builder refused a call: not a program
  }
  d.edits(program);
  std::vector<std::vector<uint8_t>> msgs = d.messages();
  if (d.trusted_probe() && o.region.len == 0) {
    HandlerOptions t = o;
    t.sandbox = Sandbox::Trusted;
    try {
      Handler trusted(program, m.attacker, t);
      finding("a trusted handler was accepted for an empty region");
    } catch (const exojit::Error&) {
    }
  }
  std::unique_ptr<Handler> native = install(program, m, o, Engine::Native);
  std::unique_ptr<Handler> interp = install(program, m, o, Engine::Interpreter);
  if (bool(native) != bool(interp)) finding("one engine refused the program");
  if (!native) return 0;
  EngineResult a = run_all(m, *native, msgs, o.max_replies),
               b = run_all(m, *interp, msgs, o.max_replies);
  if (a.outcomes != b.outcomes) finding("the engines disagree on an outcome");
  if (a.memory != b.memory) finding("the engines disagree on the application's memory");
  if (a.sent != b.sent) finding("the engines disagree on the replies");
  return 0;
}
