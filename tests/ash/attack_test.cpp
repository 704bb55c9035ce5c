// SPDX-License-Identifier: MIT
// Attacks on the sandbox by an outside reviewer (each one a handler an attacker could install),
// run natively and in the interpreter on the escape machine (escape_machine.h): memory outside
// the attacker's writable region pages and the host canaries must be unchanged after every run,
// and a bad handler must be refused with an exojit::Error or aborted with exact counters.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "escape_fixture.h"
#include "exojit/error.h"
#include "exojit/pipes/library.h"

namespace exojit::ash::testing {
namespace {

using vcode::Insn;
using vcode::Op;
using vcode::Type;

constexpr uint64_t kApp = EscapeMachine::kApp;

class Attack : public EscapeTest {};

// -- Stack clash ------------------------------------------------------------------------------
// The handler's locals live in the kernel's stack frame, and the attacker chooses the
// HandlerOptions (README, "Threat model"), max_locals included. A frame larger than the stack's
// guard page moves the stack pointer past the guard and into whatever is mapped below: the
// zeroing of the locals at entry, then the handler's own stores, land there. Here the stack is
// the top of a buffer whose lower part is a canary: it must stay untouched (or the handler be
// refused at install).
struct StackRun {
  Handler* handler;
  EscapeMachine* m;
  std::vector<uint8_t>* msg;
};

void* run_on_stack(void* p) {
  auto* r = static_cast<StackRun*>(p);
  r->m->run(*r->handler, *r->msg);
  return nullptr;
}

TEST_P(Attack, HugeLocalsDoNotReachBelowTheStack) {
  constexpr size_t kStack = 1 << 20, kBelow = 3 << 20, kLocal = 3 << 19;  // 1.5 MiB local
  HandlerBuilder h("stack_clash");
  vcode::Local big = h.local(kLocal, 8);
  Reg v = h.getreg(Type::U64, RegClass::Var);
  h.set(v, 0x4141414141414141);
  h.st(v, big, 0);
  h.st(v, big, kLocal / 2);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.max_locals = 4u << 20;
  o.budget = int64_t(1) << 24;
  std::unique_ptr<Handler> handler;
  try {
    handler = std::make_unique<Handler>(h, m.attacker, o);
  } catch (const Error&) {
    EXPECT_GT(o.max_locals, kMaxLocalsLimit);  // refused at install: the sandbox holds
    return;
  }
  void* block =
      mmap(nullptr, kStack + kBelow, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  auto* below = static_cast<uint8_t*>(block);
  std::memset(below, 0xcc, kBelow);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, below + kBelow, kStack);
  StackRun r{handler.get(), &m, &msg};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, run_on_stack, &r), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  size_t changed = 0;
  for (size_t i = 0; i < kBelow; ++i) changed += below[i] != 0xcc;
  munmap(block, kStack + kBelow);
  EXPECT_EQ(changed, 0u) << "the handler's frame reached below its stack";
  EXPECT_EQ(m.intact(), "");
}

TEST_P(Attack, MaxLocalsAboveTheLimitIsRefusedEvenForSmallLocals) {
  HandlerBuilder h("small");
  vcode::Local l = h.local(8, 8);
  Reg v = h.getreg(Type::U64, RegClass::Var);
  h.ld(v, l, 0);
  h.commit();
  h.finish();
  HandlerOptions o = options();
  o.max_locals = kMaxLocalsLimit;
  EXPECT_EQ(run(h, o), Outcome::Committed);
  o.max_locals = kMaxLocalsLimit + 1;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
  o.max_locals = UINT32_MAX;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
}

// -- Forged counts with an attacker-chosen instruction limit ---------------------------------
// The sandbox bounds the side tables (labels, registers, call arguments) by max_insns before
// the lowering allocates by them, and the attacker chooses max_insns: a forged label count of
// 2^32 - 1 then made the lowering allocate by it (std::bad_alloc, not an exojit::Error, or
// gigabytes of kernel memory for counts that fit). Refused with an exojit::Error instead.
TEST_P(Attack, ForgedLabelCountWithTheLargestInstructionLimit) {
  HandlerBuilder h("labels");
  h.commit();
  h.finish();
  h.function().num_labels = 0xffffffffu;
  HandlerOptions o = options();
  o.max_insns = UINT32_MAX;
  o.budget = INT64_MAX;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
  o.max_insns = kMaxInsnsLimit + 1;
  h.function().num_labels = 0;
  EXPECT_THROW(Handler(h, m.attacker, o), Error);
  o.max_insns = kMaxInsnsLimit;
  EXPECT_EQ(run(h, o), Outcome::Committed);
}

// -- Pipe lists: work in the delivery path that the budget does not see ------------------------
// Every pipe list is compiled again for each lane on its first run there and reset on every
// run, in the delivery path, uncharged; the number of lists was unbounded (4,000 cksum lists:
// ~100 ms of compiling on a lane's first message, 0.15 ms of resets on every message, for a
// handler that only commits). Bounded: at most 64 lists, their bodies counted in max_insns.
TEST_P(Attack, PipeListsAreBoundedAndCountInTheHandlersSize) {
  auto build = [](HandlerBuilder& h, int lists, int body) {
    for (int i = 0; i < lists; ++i) {
      pipes::PipeList pl;
      pl.add("p", 32, pipes::kCommutative, [&](pipes::PipeBody& p) {
        for (int k = 0; k < body; ++k) p.add(p.input(), p.input(), 1);
      });
      h.add_pipes(std::move(pl));
    }
    h.commit();
    h.finish();
  };
  {
    HandlerBuilder h("lists_ok");
    build(h, 64, 1);
    EXPECT_EQ(run(h), Outcome::Committed);
  }
  {
    HandlerBuilder h("too_many_lists");
    build(h, 65, 1);
    EXPECT_THROW(Handler(h, m.attacker, options()), Error);
  }
  {
    HandlerBuilder h("huge_lists");  // 8 bodies of 600 instructions: more than 4,096
    build(h, 8, 600);
    EXPECT_THROW(Handler(h, m.attacker, options()), Error);
  }
  {
    HandlerBuilder h("refs");  // references alone, no code using them
    pipes::PipeList pl;
    pipes::library::cksum(pl);
    int list = h.add_pipes(std::move(pl));
    for (int i = 0; i < 5000; ++i) h.pipe_ref(list, 0, "acc");
    h.commit();
    h.finish();
    EXPECT_THROW(Handler(h, m.attacker, options()), Error);
  }
}

// -- Every access form at every edge -----------------------------------------------------------
// Loads and stores of each width and byte order (ld, ldu, ldbe, st, stu, stbe), through base +
// displacement, base + index + displacement (the index negative or wrapping), and a second
// access reusing the first one's translation, at the offsets around each page edge of the
// region (rw | rw | r | hole) and outside it. The outcome must be exactly the oracle's (a
// page-crossing access needs host-contiguous pages: a fault is allowed there), a load must read
// the bytes there, and nothing outside the writable pages may change.
struct Access {
  Op op;
  Type type;
  int form;  // 0 base+disp, 1 base+index+disp, 2 reused translation (a first access before)
};

uint64_t bytes_of(Type t) {
  return uint64_t(vcode::type_bytes(t));
}

TEST_P(Attack, EveryAccessFormAtEveryEdge) {
  constexpr uint64_t kPage = runtime::kPageSize, kOut = kApp + 0x800;
  for (uint64_t p = 0; p < 3; ++p) {
    uint8_t* h = EscapeMachine::host(m.attacker, kApp + p * kPage);
    for (uint64_t i = 0; i < kPage; ++i) h[i] = uint8_t(i * 7 + p * 31 + 3);
  }
  m.snapshot();
  std::vector<uint8_t> start = m.writable_bytes();
  auto host = [&](uint64_t va, bool write) -> uint8_t* {
    if (va < kApp || va >= kApp + 4 * kPage) return nullptr;
    uint64_t page = (va - kApp) / kPage;
    if (page == 3 || (write && page == 2)) return nullptr;
    return EscapeMachine::host(m.attacker, va);
  };
  // Whether [va, va + n) is allowed (1), refused (0) or may be either (2: host pages apart).
  auto oracle = [&](uint64_t va, uint64_t n, bool write) {
    uint8_t* first = host(va, write);
    uint8_t* last = va + n - 1 < va ? nullptr : host(va + n - 1, write);
    if (!first || !last) return 0;
    return last == first + (n - 1) ? 1 : 2;
  };
  std::vector<int64_t> offsets;
  for (int64_t edge :
       {int64_t(0), int64_t(kPage), int64_t(2 * kPage), int64_t(3 * kPage), int64_t(4 * kPage)})
    for (int64_t d = -9; d <= 9; ++d) offsets.push_back(edge + d);
  const Op ops[] = {Op::Ld, Op::Ldu, Op::Ldbe, Op::St, Op::Stu, Op::Stbe};
  const Type types[] = {Type::U8, Type::I16, Type::U32, Type::I32, Type::U64, Type::P};
  int checked = 0;
  for (Op op : ops)
    for (Type t : types)
      for (int form = 0; form < 3; ++form)
        for (int64_t off : offsets) {
          if ((op == Op::Ldbe || op == Op::Stbe) && t == Type::P) continue;
          const bool write = vcode::is_store(op);
          const uint64_t va = kApp + uint64_t(off), n = bytes_of(t);
          HandlerBuilder h("edge");
          Reg base = h.getreg(Type::P, RegClass::Var), v = h.getreg(t, RegClass::Var),
              out = h.getreg(Type::P, RegClass::Var), ix = h.getreg(Type::I64, RegClass::Var);
          Insn x{};
          x.op = op;
          x.type = t;
          x.dst = v.id;
          h.set(v, int64_t(0x0102030405060708));
          h.set(out, int64_t(kOut));
          if (form == 1) {
            // base far away, the index bringing it back (wrapping mod 2^64)
            h.set(base, int64_t(va) + (int64_t(1) << 62) + 5);
            h.set(ix, -(int64_t(1) << 62));
            x.flags = vcode::kIndex;
            x.a = base.id;
            x.b = ix.id;
            x.imm = -5;
          } else {
            h.set(base, int64_t(kApp + 16));
            x.a = base.id;
            x.imm = int64_t(va) - int64_t(kApp + 16);
            if (form == 2) {  // a first access in page 0 through the same base, same kind
              Reg w = h.getreg(Type::U8, RegClass::Var);
              h.set(w, 0x66);
              if (write)
                h.st(w, base, 1);
              else
                h.ld(w, base, 1);
              h.putreg(w);
            }
          }
          h.function().code.push_back(x);
          if (!write) h.st(v, out, 0);
          h.commit();
          h.finish();
          Handler handler(h, m.attacker, options());
          m.restore_writable(start);
          Outcome o = m.run(handler, msg);
          std::string where = fmt::format("{} {} form {} at kApp{:+}", vcode::op_name(op),
                                          vcode::type_name(t), form, off);
          ASSERT_EQ(m.intact(), "") << where;
          int want = oracle(va, n, write);
          if (want != 2) {
            ASSERT_EQ(o, want ? Outcome::Committed : Outcome::Fault) << where;
          } else {
            ASSERT_TRUE(o == Outcome::Committed || o == Outcome::Fault) << where;
          }
          ++checked;
          if (o != Outcome::Committed) continue;
          // The bytes moved are the ones at va, in the access's byte order.
          bool be = op == Op::Ldbe || op == Op::Stbe;
          for (uint64_t k = 0; k < n; ++k) {
            uint64_t value_byte = be ? n - 1 - k : k;
            if (write) {
              ASSERT_EQ(EscapeMachine::host(m.attacker, va + k)[0],
                        uint8_t(0x0102030405060708ull >> (8 * value_byte)))
                  << where << " byte " << k;
            } else {
              ASSERT_EQ(EscapeMachine::host(m.attacker, kOut + value_byte)[0],
                        EscapeMachine::host(m.attacker, va + k)[0])
                  << where << " byte " << k;
            }
          }
        }
  EXPECT_GT(checked, 3000);
}

// -- A message that ends at the end of a mapped page ------------------------------------------
// Every message primitive, and pipe lists of every gauge (vector, chunk, word and tail loops),
// over a message whose last byte is the last of a page followed by an inaccessible one: no read
// may go past the message's end (it would fault in the kernel).
class PageEndMessage {
 public:
  PageEndMessage() {
    block_ = static_cast<uint8_t*>(
        mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < kPage; ++i) block_[i] = uint8_t(i * 13 + 1);
    mprotect(block_ + kPage, kPage, PROT_NONE);
  }
  ~PageEndMessage() { munmap(block_, 2 * kPage); }
  // The last `n` bytes of the accessible page.
  const uint8_t* last(size_t n) const { return block_ + kPage - n; }

 private:
  static constexpr size_t kPage = 4096;
  uint8_t* block_;
};

Outcome run_message(EscapeMachine& m, Handler& h, const uint8_t* data, size_t n) {
  HandlerContext ctx(m.kernel, m.attacker, m.nic, true);
  h.handle(ctx, Message{data, uint32_t(n), 1});
  m.nic.service_rx(0);
  return h.last_outcome();
}

TEST_P(Attack, MessagePrimitivesNeverReadPastAMessageAtAPageEnd) {
  PageEndMessage page;
  for (size_t len : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(7), size_t(8), size_t(9),
                     size_t(15), size_t(31), size_t(33), size_t(63), size_t(65), size_t(127),
                     size_t(129), size_t(255), size_t(1000)}) {
    const uint8_t* msg_data = page.last(len);
    // Peeks of every width at the last offsets, constant and register offsets, relative and
    // absolute, and consume_field.
    for (Type t : {Type::U8, Type::U16, Type::U32, Type::U64})
      for (int back = 0; back <= 9; ++back)
        for (int kind = 0; kind < 4; ++kind) {
          int64_t off = int64_t(len) - back;
          if (off < 0) continue;
          HandlerBuilder h("peek_end");
          Reg d = h.getreg(t, RegClass::Var), r = h.getreg(Type::U64, RegClass::Var);
          h.set(r, off);
          switch (kind) {
            case 0:
              h.peek(d, off, Endian::Little);
              break;
            case 1:
              h.peek_at(d, Operand{r}, Endian::Big);
              break;
            case 2:
              h.skip(Operand{r});
              h.consume_field(d, Endian::Big);
              break;
            default:
              h.skip(off);
              h.peek(d, int64_t(0), Endian::Little);
          }
          h.commit();
          h.finish();
          Handler handler(h, m.attacker, options());
          Outcome o = run_message(m, handler, msg_data, len);
          bool fits = int64_t(vcode::type_bytes(t)) <= back;
          EXPECT_EQ(o, fits ? Outcome::Committed : Outcome::Fault)
              << "len " << len << " back " << back << " kind " << kind;
        }
    // Pipe lists over the whole message: scan, consume into the region, reply_app from it.
    for (int which = 0; which < 6; ++which) {
      for (int prim = 0; prim < 4; ++prim) {
        HandlerBuilder h("pipes_end");
        pipes::PipeList pl;
        switch (which) {
          case 0:
            pipes::library::cksum(pl);
            break;
          case 1:
            pipes::library::bswap16(pl);
            break;
          case 2:
            pipes::library::bswap32(pl);
            break;
          case 3:
            pipes::library::crc32c(pl);
            break;
          case 4:
            pipes::library::cipher(pl, pipes::library::kDemoKey);
            break;
          default:
            pipes::library::cksum(pl);
            pipes::library::bswap32(pl);
            pipes::library::crc32c(pl);
        }
        bool modifies = which == 1 || which == 2 || which == 4 || which == 5;
        if (prim == 0 && modifies) continue;  // scan runs read-only lists
        int list = h.add_pipes(std::move(pl));
        switch (prim) {
          case 0:
            h.scan(int64_t(len), list);
            break;
          case 1:
            h.consume(int64_t(kApp + 0x1000 - 3), int64_t(len), list);
            break;
          case 2:
            h.reply_begin();
            h.reply_copy(int64_t(0), int64_t(len));
            h.reply_send();
            break;
          default:
            h.reply_begin();
            h.reply_app(int64_t(kApp + 0x2000 - 1000), int64_t(len > 1000 ? 1000 : len), list);
            h.reply_send();
        }
        h.commit();
        h.finish();
        HandlerOptions o = options();
        o.budget = 1 << 20;
        Handler handler(h, m.attacker, o);
        EXPECT_EQ(run_message(m, handler, msg_data, len), Outcome::Committed)
            << "len " << len << " pipes " << which << " prim " << prim;
        EXPECT_EQ(m.intact(), "");
      }
    }
  }
}

// -- JIT spraying through a handler's pipe lists ------------------------------------------------
// The handler's own constants are blinded (hardening_test.cpp), but its pipe lists are compiled
// into kernel code too, from bodies the attacker wrote: their constants must not appear in
// executable memory either. Scans every executable mapping of JIT code in the process.
bool in_executable_memory(uint32_t pattern) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    // JIT code: anonymous, or asmjit's dual mapping (a memfd); not files, not [vdso] and the like.
    bool jit = path.empty() || path.rfind("/memfd:", 0) == 0;
    if (perms.size() < 3 || perms[0] != 'r' || perms[2] != 'x' || !jit) continue;
    uint64_t lo = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uint64_t hi = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    const auto* p = reinterpret_cast<const uint8_t*>(lo);
    for (uint64_t i = 0; i + 4 <= hi - lo; ++i)
      if (std::memcmp(p + i, &pattern, 4) == 0) return true;
  }
  return false;
}

TEST(AttackHardening, PipeListConstantsAreBlindedToo) {
  EscapeMachine m;
  auto build = [](HandlerBuilder& h, uint32_t spray) {
    pipes::PipeList pl;
    pl.add("spray", 32, pipes::kCommutative,
           [&](pipes::PipeBody& p) { p.xor_(p.input(), p.input(), int64_t(spray)); });
    int list = h.add_pipes(std::move(pl));
    h.consume(int64_t(kApp), int64_t(16), list);
    h.commit();
    h.finish();
  };
  // Two distinctive patterns: the control's code may stay in memory after it is destroyed.
  const uint32_t control = 0x9bd1e35fu, spray = 0xa7c5e3f1u;
  ASSERT_FALSE(in_executable_memory(control));
  ASSERT_FALSE(in_executable_memory(spray));
  {
    HandlerBuilder h("spray_control");
    build(h, control);
    HandlerOptions o = m.options();
    o.harden = false;
    Handler handler(h, m.attacker, o);
    ASSERT_TRUE(in_executable_memory(control));  // the scan finds an unblinded constant
  }
  HandlerBuilder h("spray");
  build(h, spray);
  Handler handler(h, m.attacker, m.options());
  EXPECT_FALSE(in_executable_memory(spray)) << "a pipe body's constant is in kernel code as is";
  std::vector<uint8_t> msg(16, 0);
  EXPECT_EQ(m.run(handler, msg), Outcome::Committed);
  uint32_t out = 0;
  std::memcpy(&out, EscapeMachine::host(m.attacker, kApp), 4);
  EXPECT_EQ(out, spray);  // and the pipe still computes what it says
}

// -- Divisions and shifts: every type, every extreme ---------------------------------------------
// div/mod by a register of 0 faults; by -1 (a register or a constant) of the most negative value
// never traps (x86's INT_MIN / -1); the divisor in every temporary's machine register (rdx is
// idiv's); shifts by the width and more. The result is the C++ one, natively and interpreted.
int64_t norm(Type t, uint64_t v) {
  return vcode::normalize_imm(t, int64_t(v));
}

TEST_P(Attack, DivisionsAndShiftsAtTheExtremes) {
  const Type types[] = {Type::I8,  Type::U8,  Type::I16, Type::U16,
                        Type::I32, Type::U32, Type::I64, Type::U64};
  const int64_t values[] = {0,        1,         -1,        2,         -2,
                            7,        INT8_MIN,  INT16_MIN, INT32_MIN, INT64_MIN,
                            INT8_MAX, INT32_MAX, INT64_MAX};
  int runs = 0;
  for (Type t : types)
    for (Op op : {Op::Div, Op::Mod})
      for (int64_t a0 : values)
        for (int64_t b0 : values)
          for (int form = 0; form < 3; ++form) {  // register (two temps apart), constant
            const int64_t a = norm(t, uint64_t(a0)), b = norm(t, uint64_t(b0));
            if (form == 2 && b == 0) continue;  // refused at install (malicious_test.cpp)
            HandlerBuilder h("div");
            // Temporaries take rdi rsi rdx rcx ...: the sandbox holds three, so the next ones
            // land on rcx, r8 and so on; form 1 burns two first to put the divisor on rdx's
            // neighbours and the dividend elsewhere.
            std::vector<Reg> burn;
            if (form == 1)
              for (int k = 0; k < 2; ++k) burn.push_back(h.getreg(t));
            Reg ra = h.getreg(t), rb = h.getreg(t), out = h.getreg(Type::P, RegClass::Var);
            Reg r64 = h.getreg(Type::I64, RegClass::Var);
            h.set(ra, a);
            h.set(rb, b);
            Insn x{};
            x.op = op;
            x.type = t;
            x.dst = ra.id;
            x.a = ra.id;
            if (form == 2) {
              x.flags = vcode::kImm;
              x.imm = b;
            } else {
              x.b = rb.id;
            }
            h.function().code.push_back(x);
            h.cvt(r64, ra);
            h.set(out, int64_t(kApp));
            h.st(r64, out, 0);
            h.commit();
            h.finish();
            Handler handler(h, m.attacker, options());
            Outcome o = m.run(handler, msg);
            std::string where = fmt::format("{} {} {} {} form {}", vcode::op_name(op),
                                            vcode::type_name(t), a, b, form);
            ASSERT_EQ(m.intact(), "") << where;
            if (b == 0) {
              ASSERT_EQ(o, Outcome::Fault) << where;
              continue;
            }
            ASSERT_EQ(o, Outcome::Committed) << where;
            int64_t want;
            if (vcode::is_signed(t)) {
              if (b == -1)
                want = op == Op::Div ? norm(t, 0 - uint64_t(a)) : 0;
              else
                want = op == Op::Div ? a / b : a % b;
            } else {
              uint64_t ua = uint64_t(a), ub = uint64_t(b);
              want = int64_t(op == Op::Div ? ua / ub : ua % ub);
            }
            int64_t got;
            std::memcpy(&got, EscapeMachine::host(m.attacker, kApp), 8);
            ASSERT_EQ(got, norm(t, uint64_t(want))) << where;
            ++runs;
          }
  EXPECT_GT(runs, 2000);
  // Shifts by register counts of the width and beyond agree between the engines' semantics:
  // only the low bits of the count matter (5 for types of 32 bits or fewer, 6 for 64).
  for (Type t : types)
    for (Op op : {Op::Lsh, Op::Rsh})
      for (int64_t count : {int64_t(0), int64_t(7), int64_t(8), int64_t(16), int64_t(31),
                            int64_t(32), int64_t(63), int64_t(64), int64_t(65), int64_t(-1)}) {
        HandlerBuilder h("shift");
        Reg ra = h.getreg(t), rc = h.getreg(Type::U64), out = h.getreg(Type::P),
            r64 = h.getreg(Type::I64);
        const int64_t a = norm(t, 0x8123456789abcdefull);
        h.set(ra, a);
        h.set(rc, count);
        if (op == Op::Lsh)
          h.lsh(ra, ra, rc);
        else
          h.rsh(ra, ra, rc);
        h.cvt(r64, ra);
        h.set(out, int64_t(kApp));
        h.st(r64, out, 0);
        h.commit();
        h.finish();
        Handler handler(h, m.attacker, options());
        ASSERT_EQ(m.run(handler, msg), Outcome::Committed);
        unsigned c = unsigned(count) & (vcode::type_bits(t) == 64 ? 63 : 31);
        uint64_t ua = uint64_t(a);
        uint64_t want = op == Op::Lsh ? ua << c : vcode::is_signed(t) ? uint64_t(a >> c) : ua >> c;
        int64_t got;
        std::memcpy(&got, EscapeMachine::host(m.attacker, kApp), 8);
        ASSERT_EQ(got, norm(t, want))
            << vcode::op_name(op) << " " << vcode::type_name(t) << " by " << count;
      }
}

// -- Loops against the budget ------------------------------------------------------------------
// Endless loops of every shape end with Budget, with exact counters: a back edge to the first
// instruction, nested loops, a loop entered by a forward jump, a hoisted array walk whose every
// access takes the out-of-line check (it crosses pages back and forth), a loop around a call
// primitive, and a loop of message primitives.
TEST_P(Attack, EndlessLoopsOfEveryShapeRunOutOfBudget) {
  using Make = void (*)(HandlerBuilder&);
  const Make shapes[] = {
      [](HandlerBuilder& h) {  // back edge to instruction 0
        Label l = h.label();
        h.place(l);
        h.jmp(l);
      },
      [](HandlerBuilder& h) {  // nested, the inner one never leaving
        Reg i = h.getreg(Type::U64, RegClass::Var);
        Label outer = h.label(), inner = h.label();
        h.set(i, 0);
        h.place(outer);
        h.place(inner);
        h.add(i, i, 1);
        h.bne(i, 0, inner);
        h.jmp(outer);
      },
      [](HandlerBuilder& h) {  // entered by a forward jump into its middle
        Reg i = h.getreg(Type::U64, RegClass::Var);
        Label top = h.label(), mid = h.label();
        h.set(i, 0);
        h.jmp(mid);
        h.place(top);
        h.add(i, i, 3);
        h.place(mid);
        h.add(i, i, 1);
        h.jmp(top);
      },
      [](HandlerBuilder& h) {  // an array walk crossing a page edge back and forth
        Reg p = h.getreg(Type::P, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
        Label top = h.label();
        h.set(p, int64_t(kApp + runtime::kPageSize - 4));
        h.set(v, 1);
        h.place(top);
        h.st(v, p, 0);
        h.add(p, p, 4096);
        h.st(v, p, -4096);
        h.sub(p, p, 4096);
        h.jmp(top);
      },
      [](HandlerBuilder& h) {  // a call primitive in the loop
        Label top = h.label();
        h.place(top);
        h.reply_begin();
        h.jmp(top);
      },
      [](HandlerBuilder& h) {  // message primitives (none moving the cursor for good)
        Reg d = h.getreg(Type::U32, RegClass::Var), r = h.getreg(Type::U64, RegClass::Var);
        Label top = h.label();
        h.place(top);
        h.peek_at(d, int64_t(4));
        h.peek(d, int64_t(60));
        h.remaining(r);
        h.skip(int64_t(0));
        h.jmp(top);
      },
  };
  for (size_t shape = 0; shape < std::size(shapes); ++shape)
    for (int64_t budget : {int64_t(5000), int64_t(1) << 20}) {
      Make make = shapes[shape];
      SCOPED_TRACE(fmt::format("shape {} budget {}", shape, budget));
      HandlerBuilder h("spin");
      make(h);
      h.commit();  // unreachable, but a handler ends with commit or abort
      h.finish();
      HandlerOptions o = options();
      o.budget = budget;
      Handler handler(h, m.attacker, o);
      for (int k = 0; k < 3; ++k) EXPECT_EQ(m.run(handler, msg), Outcome::Budget);
      HandlerCounters c = handler.counters();
      EXPECT_EQ(c.runs, 3u);
      EXPECT_EQ(c.aborted_budget, 3u);
      EXPECT_EQ(c.committed + c.aborted_fault + c.aborted_voluntary, 0u);
      EXPECT_EQ(m.intact(), "");
    }
}

// -- Control flow edited into the records ------------------------------------------------------
// A label placed twice (a second entry into a hoisted loop, skipping its preheader), a label
// jumped to but never placed, an indirect jump (la + jmpr) and a call to the handler itself:
// all refused at install with an exojit::Error.
TEST_P(Attack, ControlFlowEditsAreRefused) {
  auto base = [](HandlerBuilder& h) {
    Reg p = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::I64, RegClass::Var),
        v = h.getreg(Type::U64, RegClass::Var);
    h.set(p, int64_t(kApp));
    h.set(n, 4);
    h.set(v, 7);
    Label top = h.label(), out = h.label();
    h.place(top);
    h.st(v, p, 0);
    h.add(p, p, 8);
    h.sub(n, n, 1);
    h.bgt(n, 0, top);
    h.place(out);
    h.commit();
    h.finish();
  };
  using Edit = void (*)(HandlerBuilder&, vcode::Function&);
  const Edit edits[] = {
      [](HandlerBuilder&, vcode::Function& f) {  // `out` placed a second time, as `top`
        for (Insn& x : f.code)
          if (x.op == Op::Place && x.dst == 1) x.dst = 0;
      },
      [](HandlerBuilder&, vcode::Function& f) {  // the back edge to a label never placed
        f.num_labels = 3;
        for (Insn& x : f.code)
          if (x.op == Op::Bgt) x.dst = 2;
      },
      [](HandlerBuilder&, vcode::Function& f) {  // the back edge made an indirect jump
        for (Insn& x : f.code)
          if (x.op == Op::Bgt) {
            x = Insn{};
            x.op = Op::Jmpr;
            x.type = Type::Void;
            x.a = 4;  // the pointer register p
          }
      },
      [](HandlerBuilder&, vcode::Function& f) {  // la of the loop head into p
        for (Insn& x : f.code)
          if (x.op == Op::Add) {
            x = Insn{};
            x.op = Op::La;
            x.type = Type::P;
            x.dst = 0;
            x.a = 4;
          }
      },
      [](HandlerBuilder&, vcode::Function& f) {  // a call to function 0: the handler itself
        for (Insn& x : f.code)
          if (x.op == Op::Add) {
            Insn c{};
            c.op = Op::Call;
            c.type = Type::U32;
            c.flags = vcode::kVoid;
            c.a = uint32_t(f.call_args.size());
            c.b = 1;
            c.imm = 0;
            f.call_args.push_back(0);  // the state register
            x = c;
          }
      },
  };
  for (size_t k = 0; k < std::size(edits); ++k) {
    HandlerBuilder h("flow");
    base(h);
    edits[k](h, h.function());
    EXPECT_THROW(Handler(h, m.attacker, options()), Error) << "edit " << k;
    EXPECT_EQ(m.intact(), "");
  }
  HandlerBuilder h("flow_ok");  // the control: unedited, it runs
  base(h);
  EXPECT_EQ(run(h), Outcome::Committed);
}

INSTANTIATE_TEST_SUITE_P(Engines, Attack, ::testing::Values(Engine::Native, Engine::Interpreter),
                         [](const auto& p) {
                           return p.param == Engine::Native ? "native" : "interp";
                         });

}  // namespace
}  // namespace exojit::ash::testing
