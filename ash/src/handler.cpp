// SPDX-License-Identifier: MIT
#include "exojit/ash/handler.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "exojit/error.h"
#include "exojit/pipes/compile.h"
#include "exojit/runtime/kernel.h"
#include "exojit/vcode/interp.h"
#include "exojit/vcode/text.h"
#include "sandbox/sandbox_p.h"

namespace exojit::ash {

using runtime::kPageShift;
using runtime::kPageSize;

// A handler's run state on one delivery lane (runtime/plugins.h): what a run writes. The kernel
// runs one message at a time per lane, so runs on different lanes share nothing they write and
// the handler runs on every lane at once (Handler::concurrent()). Made on the lane's first run
// (lane 0 at construction); lives as long as the handler.
struct alignas(64) Lane {
  const Handler::Impl* handler;
  std::vector<uint64_t> block;  // RunState, then the read and write software TLBs
  uint64_t* tlb_r = nullptr;
  uint64_t* tlb_w = nullptr;
  std::vector<pipes::CompiledPipes> pipes;   // persistent registers are run state: one set per lane
  std::vector<uint8_t> staging;              // pipes into non-contiguous pages
  std::optional<vcode::Interpreter> interp;  // Engine::Interpreter (it counts steps: run state)
  struct Counters {
    runtime::Counter runs, committed, aborted_voluntary, aborted_budget, aborted_fault,
        replies_sent, replies_refused, tlb_rebuilds;
  } counters;  // one writer (the lane's delivery), read by anyone
  std::atomic<Outcome> last{Outcome::Committed};
  uint64_t generation = ~uint64_t(0);
  bool runnable = true;  // Trusted: the region is the block compiled in (set at each rebuild)
  bool running = false;  // a run is in progress on this lane (a nested one is refused)

  Lane(const Handler::Impl& h, std::vector<pipes::CompiledPipes> compiled);
  RunState& state() { return *reinterpret_cast<RunState*>(block.data()); }
  // Under the kernel's memory lock: the page table is edited by other threads (thread mode).
  void rebuild_tlb();
  // Trusted: whether the region is still one writable host block at the delta compiled in.
  bool trusted_block_intact() const;
};

// What every lane reads and no run writes.
struct Handler::Impl {
  runtime::Environment* env;
  HandlerOptions options;
  uint64_t pages = 0;  // region pages
  size_t state_words = 0;
  int64_t trusted_delta = 0;  // Trusted: host address - virtual address, compiled in
  std::vector<Site> sites;    // copies the lowered code points at
  Lowered lowered;
  vcode::Code code;
  uint32_t (*fn)(RunState*) = nullptr;
  // Pipe lists, compiled once per lane (CompiledPipes hold their persistent registers).
  std::vector<pipes::PipeList> pipe_lists;
  std::vector<pipes::Direction> pipe_directions;
  pipes::CompileOptions pipe_options;
  std::vector<pipes::CompiledPipes::Persistent> refs;  // by PipeRef index (same in every lane)
  std::vector<int> ref_list;                           // the pipe list of each ref
  std::vector<uint64_t> pipe_cost_per_kib;             // budget charge per 1024 bytes, by list
  // By lane: null until the lane's first run. Written by the lane's delivering thread (release),
  // read by counters() on any thread (acquire).
  std::unique_ptr<std::atomic<Lane*>[]> lanes { new std::atomic<Lane*>[runtime::kMaxLanes] {} };

  ~Impl() {
    for (uint32_t i = 0; i < runtime::kMaxLanes; ++i) delete lanes[i].load();
  }
  std::vector<pipes::CompiledPipes> compile_pipes() const {
    std::vector<pipes::CompiledPipes> v;
    for (size_t i = 0; i < pipe_lists.size(); ++i)
      v.push_back(pipes::compile(pipe_lists[i], pipe_directions[i], pipe_options));
    return v;
  }
  // Lane i's run state, made on its first run (by the lane's delivering thread).
  Lane& lane(uint32_t i) {
    Lane* l = lanes[i].load(std::memory_order_acquire);
    if (!l) [[unlikely]]
      l = make_lane(i, compile_pipes());
    return *l;
  }
  Lane* make_lane(uint32_t i, std::vector<pipes::CompiledPipes> compiled) {
    auto l = std::make_unique<Lane>(*this, std::move(compiled));
    if (!fn) l->interp.emplace(lowered.module);
    lanes[i].store(l.get(), std::memory_order_release);
    return l.release();
  }
};

Lane::Lane(const Handler::Impl& h, std::vector<pipes::CompiledPipes> compiled)
    : handler(&h), pipes(std::move(compiled)) {
  // One spare entry per TLB: a crossing access reads the next page's entry; Trusted keeps its
  // delta in the read TLB's spare.
  block.assign(h.state_words + 2 * (h.pages + 1), 0);
  tlb_r = block.data() + h.state_words;
  tlb_w = tlb_r + h.pages + 1;
  tlb_r[h.pages] = uint64_t(h.trusted_delta);
  if (!pipes.empty()) staging.resize(65536);
  state().lane = this;
}

namespace {

constexpr size_t words(size_t bytes) {
  return (bytes + 7) / 8;
}

// Host pointer to application [va, va+n) for `access` when it is inside the region and every
// page is mapped with the access and host-contiguous; else nullptr.
uint8_t* app_block(Lane& lane, uint64_t va, uint64_t n, bool write) {
  const HandlerOptions& o = lane.handler->options;
  if (o.sandbox == Sandbox::Trusted)
    return reinterpret_cast<uint8_t*>(va + uint64_t(lane.handler->trusted_delta));
  uint64_t off = va - o.region.va;
  if (off > o.region.len || n > o.region.len - off) return nullptr;
  if (n == 0) return reinterpret_cast<uint8_t*>(1);  // nothing to touch
  const uint64_t* tlb = write ? lane.tlb_w : lane.tlb_r;
  uint64_t first = off >> kPageShift, last = (off + n - 1) >> kPageShift;
  uint64_t host = tlb[first];
  if (!host) return nullptr;
  for (uint64_t p = first + 1; p <= last; ++p)
    if (tlb[p] != host + (p - first) * kPageSize) return nullptr;
  return reinterpret_cast<uint8_t*>(host + (off & (kPageSize - 1)));
}

// Same, page by page, for ranges whose pages are mapped but not host-contiguous: calls
// f(host, n) for each piece; false (nothing touched) when any page is refused.
template <typename F>
bool app_pieces(Lane& lane, uint64_t va, uint64_t n, bool write, F f) {
  const HandlerOptions& o = lane.handler->options;
  uint64_t off = va - o.region.va;
  if (off > o.region.len || n > o.region.len - off) return false;
  const uint64_t* tlb = write ? lane.tlb_w : lane.tlb_r;
  for (uint64_t p = off >> kPageShift; n && p <= (off + n - 1) >> kPageShift; ++p)
    if (!tlb[p]) return false;
  uint64_t done = 0;
  while (done < n) {
    uint64_t o2 = off + done, in_page = o2 & (kPageSize - 1);
    uint64_t chunk = std::min(n - done, kPageSize - in_page);
    f(reinterpret_cast<uint8_t*>(tlb[o2 >> kPageShift] + in_page), done, chunk);
    done += chunk;
  }
  return true;
}

bool charge(RunState* s, int list, uint64_t n) {
  uint64_t per_kib =
      list >= 0 ? s->lane->handler->pipe_cost_per_kib[size_t(list)] : 128;  // memcpy: 8 B/insn
  int64_t cost = int64_t((n * per_kib + 1023) >> 10) + 1;
  s->budget -= cost;
  return s->budget >= 0;
}

// Runs pipe list `list` (or a copy) from src to application va.
uint32_t transfer_to_app(RunState* s, int list, uint64_t va, const uint8_t* src, uint64_t n) {
  Lane& lane = *s->lane;
  if (!charge(s, list, n)) return kRetBudget;
  if (uint8_t* dst = app_block(lane, va, n, true)) {
    if (n == 0) return 0;
    if (list < 0)
      std::memcpy(dst, src, n);
    else
      lane.pipes[size_t(list)](dst, src, n);
    return 0;
  }
  // Mapped but not host-contiguous: through the staging buffer when there are pipes (a pipe
  // list sees the message as one stream), page by page otherwise.
  const uint8_t* from = src;
  if (list >= 0) {
    if (n > lane.staging.size()) return kRetFault;
    if (!app_pieces(lane, va, n, true, [](uint8_t*, uint64_t, uint64_t) {})) return kRetFault;
    lane.pipes[size_t(list)](lane.staging.data(), src, n);
    from = lane.staging.data();
  }
  bool ok = app_pieces(lane, va, n, true, [&](uint8_t* host, uint64_t done, uint64_t chunk) {
    std::memcpy(host, from + done, chunk);
  });
  return ok ? 0 : kRetFault;
}

void put_value(uint8_t* p, uint64_t v, int width, Endian e) {
  for (int i = 0; i < width; ++i) {
    int shift = e == Endian::Big ? 8 * (width - 1 - i) : 8 * i;
    p[i] = uint8_t(v >> shift);
  }
}

}  // namespace

extern "C" uint32_t exojit_ash_call(RunState* s, uint64_t a, uint64_t b, uint64_t c) {
  const Site& site = *s->site;
  Lane& lane = *s->lane;
  const Handler::Impl& h = *lane.handler;
  // Operands in order: registers come as a, b, c; constants from the site.
  uint64_t regs[3] = {a, b, c};
  uint64_t v[3] = {0, 0, 0};
  size_t next = 0;
  for (size_t k = 0; k < site.operands.size() && k < 3; ++k) {
    if (const int64_t* imm = std::get_if<int64_t>(&site.operands[k]))
      v[k] = uint64_t(*imm);
    else
      v[k] = regs[next++];
  }
  uint64_t left = s->msg_len - s->cursor;
  switch (site.kind) {
    case PrimKind::Consume: {
      if (v[1] > left) return kRetFault;
      uint32_t r = transfer_to_app(s, site.pipes, v[0], s->msg + s->cursor, v[1]);
      if (r == 0) s->cursor += v[1];
      return r;
    }
    case PrimKind::Scan: {
      if (v[0] > left) return kRetFault;
      if (!charge(s, site.pipes, v[0])) return kRetBudget;
      lane.pipes[size_t(site.pipes)](nullptr, s->msg + s->cursor, v[0]);
      s->cursor += v[0];
      return 0;
    }
    case PrimKind::PipeGet: {
      int list = h.ref_list[size_t(site.ref)];
      s->result = lane.pipes[size_t(list)].get(h.refs[size_t(site.ref)]);
      return 0;
    }
    case PrimKind::PipeSet: {
      int list = h.ref_list[size_t(site.ref)];
      lane.pipes[size_t(list)].set(h.refs[size_t(site.ref)], v[0]);
      return 0;
    }
    case PrimKind::ReplyBegin:
      s->reply_len = 0;
      return 0;
    case PrimKind::ReplyPut:
      if (s->reply_len + site.width > kMaxReply) return kRetFault;
      put_value(s->reply + s->reply_len, v[0], site.width, site.endian);
      s->reply_len += site.width;
      return 0;
    case PrimKind::ReplyPoke:
      if (v[0] > s->reply_len || site.width > s->reply_len - v[0]) return kRetFault;
      put_value(s->reply + v[0], v[1], site.width, site.endian);
      return 0;
    case PrimKind::ReplyCopy:
      if (v[0] > s->msg_len || v[1] > s->msg_len - v[0] || v[1] > kMaxReply - s->reply_len)
        return kRetFault;
      if (!charge(s, -1, v[1])) return kRetBudget;
      if (v[1]) std::memcpy(s->reply + s->reply_len, s->msg + v[0], v[1]);  // msg may be null
      s->reply_len += uint32_t(v[1]);
      return 0;
    case PrimKind::ReplyApp: {
      uint64_t va = v[0], n = v[1];
      if (n > kMaxReply - s->reply_len) return kRetFault;
      if (!charge(s, site.pipes, n)) return kRetBudget;
      uint8_t* dst = s->reply + s->reply_len;
      if (const uint8_t* src = app_block(lane, va, n, false)) {
        if (n) {
          if (site.pipes < 0)
            std::memcpy(dst, src, n);
          else
            lane.pipes[size_t(site.pipes)](dst, src, n);
        }
      } else {
        bool ok = app_pieces(lane, va, n, false, [&](uint8_t* host, uint64_t done, uint64_t chunk) {
          std::memcpy(dst + done, host, chunk);
        });
        if (!ok) return kRetFault;
        if (site.pipes >= 0) lane.pipes[size_t(site.pipes)](dst, dst, n);
      }
      s->reply_len += uint32_t(n);
      return 0;
    }
    case PrimKind::ReplyCksum: {
      if (v[0] > s->reply_len || v[1] > s->reply_len - v[0]) return kRetFault;
      if (!charge(s, -1, v[1])) return kRetBudget;
      uint64_t sum = 0;
      const uint8_t* p = s->reply + v[0];
      for (uint64_t i = 0; i + 1 < v[1]; i += 2) sum += uint32_t(p[i]) << 8 | p[i + 1];
      if (v[1] & 1) sum += uint32_t(p[v[1] - 1]) << 8;
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
      s->result = sum;  // big-endian one's-complement sum, not complemented
      return 0;
    }
    case PrimKind::ReplySend: {
      bool ok = false;
      if (s->replies < h.options.max_replies) {
        // The send copies the reply into the transmit ring: charged by the byte like every other
        // copy (else one built reply sent again and again costs a few instructions per 2 KiB).
        if (!charge(s, -1, s->reply_len)) return kRetBudget;
        ok = s->ctx->reply(s->reply, s->reply_len);
      }
      if (ok) {
        ++s->replies;
        ++lane.counters.replies_sent;
      } else {
        ++lane.counters.replies_refused;
      }
      s->result = ok;
      return 0;
    }
    default:
      return kRetFault;
  }
}

void Lane::rebuild_tlb() {
  const Handler::Impl& h = *handler;
  runtime::AddressSpace& as = h.env->mmu();
  std::lock_guard<std::mutex> lock(h.env->kernel().memory_lock());
  generation = as.generation();
  ++counters.tlb_rebuilds;
  for (uint64_t p = 0; p < h.pages; ++p) {
    uint64_t va = h.options.region.va + p * kPageSize;
    tlb_r[p] = reinterpret_cast<uint64_t>(as.walk(va, runtime::kRead));
    tlb_w[p] = reinterpret_cast<uint64_t>(as.walk(va, runtime::kWrite));
  }
  runnable = h.options.sandbox != Sandbox::Trusted || trusted_block_intact();
}

bool Lane::trusted_block_intact() const {
  const Handler::Impl& h = *handler;
  uint64_t host = tlb_w[0];
  if (h.pages == 0 || !host || host - h.options.region.va != uint64_t(h.trusted_delta))
    return false;
  for (uint64_t p = 0; p < h.pages; ++p)
    if (tlb_w[p] != host + p * kPageSize) return false;
  return true;
}

Handler::Handler(const HandlerBuilder& program, runtime::Environment& env,
                 const HandlerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.env = &env;
  m.options = options;
  const Region& r = options.region;
  if (r.va & (kPageSize - 1)) fail("ash: region 0x{:x} is not page aligned", r.va);
  if (r.len > kMaxRegion) fail("ash: region of {} bytes (at most {})", r.len, kMaxRegion);
  if (r.va >= runtime::kVaLimit || r.len > runtime::kVaLimit - r.va)
    fail("ash: region 0x{:x}+{} is outside the address space", r.va, r.len);
  if (options.budget <= 0) fail("ash: a budget of {} instructions", options.budget);
  if (options.max_locals > kMaxLocalsLimit)
    fail("ash: max_locals of {} bytes (at most {}: locals live in the kernel's stack)",
         options.max_locals, kMaxLocalsLimit);
  if (options.max_insns > kMaxInsnsLimit)
    fail("ash: max_insns of {} (at most {}: the side tables of a handler are bounded by it)",
         options.max_insns, kMaxInsnsLimit);
  m.pages = (r.len + kPageSize - 1) >> kPageShift;

  // The state block of every lane: RunState, then the read and write TLBs.
  m.state_words = words(sizeof(RunState));
  LowerOptions lo;
  lo.trusted = options.sandbox == Sandbox::Trusted;
  lo.harden = options.harden;
  lo.region_va = r.va;
  lo.region_len = r.len;
  lo.tlb_read = int64_t(m.state_words * 8);
  lo.tlb_write = int64_t((m.state_words + m.pages + 1) * 8);
  lo.max_locals = options.max_locals;
  lo.max_insns = options.max_insns;
  if (lo.trusted) {
    // No checks: the region must be one block of host memory, mapped read-write (and not
    // empty: an empty region has no block to be relative to). Each run re-checks it when the
    // page table changed (handle()).
    Lane probe(m, {});
    probe.rebuild_tlb();
    m.trusted_delta = int64_t(probe.tlb_w[0] - r.va);
    if (!probe.trusted_block_intact())
      fail("ash: a trusted handler needs its region mapped writable in one host block");
    lo.trusted_delta = m.trusted_delta;
  }
  m.sites = program.sites();
  lo.sites = m.sites.data();
  m.lowered = lower(program, lo);

  // Pipe lists: compiled for each lane, with their budget charge per KiB ([ASH96], 3.3: the
  // pipe's cost times the iterations, strength-reduced to one multiply).
  if (options.engine == Engine::Interpreter) m.pipe_options.backend = pipes::Backend::Interpreter;
  // The pipe bodies are the handler's code too (their constants the attacker's): blinded alike.
  m.pipe_options.codegen.blind_constants = options.harden;
  // A list that scan() runs is compiled read-only (it has no destination); it cannot also be
  // a copy's.
  std::vector<uint8_t> scanned(program.pipe_lists().size(), 0), copied(scanned);
  for (const Site& site : program.sites()) {
    if (site.pipes < 0) continue;
    (site.kind == PrimKind::Scan ? scanned : copied)[size_t(site.pipes)] = 1;
  }
  for (size_t i = 0; i < scanned.size(); ++i)
    if (scanned[i] && copied[i])
      fail("ash handler {}: pipe list {} is both scanned and copied through", program.name(), i);
  // Copies of the lists, checked again: the bodies' records stay the attacker's after add(), and
  // every lane compiles the lists again on its first run (PipeTrust.*).
  for (const pipes::PipeList& pl : program.pipe_lists()) m.pipe_lists.push_back(pl.checked_copy());
  for (size_t i = 0; i < scanned.size(); ++i)
    m.pipe_directions.push_back(scanned[i] ? pipes::Direction::ReadOnly : pipes::Direction::Write);
  std::vector<pipes::CompiledPipes> compiled = m.compile_pipes();
  for (const pipes::CompiledPipes& c : compiled) {
    uint64_t bpi = std::max<uint32_t>(1, c.cost().bytes_per_iteration);
    m.pipe_cost_per_kib.push_back((uint64_t(c.cost().insns_per_iteration) * 1024 + bpi - 1) / bpi +
                                  16);
  }
  for (const PipeRef& ref : program.pipe_refs()) {
    m.refs.push_back(compiled[size_t(ref.pipes)].persistent(ref.pipe, ref.reg));
    m.ref_list.push_back(ref.pipes);
  }

  if (int64_t(m.lowered.static_cost) > options.budget)
    fail("ash handler {}: straight-line cost {} exceeds the budget of {}", program.name(),
         m.lowered.static_cost, options.budget);
  if (options.engine == Engine::Native) {
    vcode::CompileOptions co;
    co.blind_constants = options.harden;
    m.code = vcode::compile(m.lowered.module, co);
    m.fn = m.code.as<uint32_t(RunState*)>();
  }
  // Lane 0 now (a single-queue NIC's, and direct calls'), with its translations: the others on
  // their first run.
  Lane* first = m.make_lane(0, std::move(compiled));
  first->rebuild_tlb();
  first->counters.tlb_rebuilds = runtime::Counter{};
}

Handler::~Handler() = default;

runtime::MessageHandler::Binding Handler::binding() const {
  // Unchecked, unhardened, or a run longer than an environment may choose for itself
  // (kMaxUnprivilegedBudget): installing it needs the root capability.
  const HandlerOptions& o = impl_->options;
  return Binding{impl_->env,
                 o.sandbox == Sandbox::Trusted || !o.harden || o.budget > kMaxUnprivilegedBudget};
}

runtime::HandlerVerdict Handler::handle(runtime::HandlerContext& context,
                                        const runtime::Message& message) {
  Impl& m = *impl_;
  Lane& l = m.lane(context.lane());
  Lane::Counters& c = l.counters;
  // Runs only in the environment it was made for (the kernel installs it for that one alone);
  // anything else is a fault, not an access to another address space. A run nested in another
  // on the same lane (kernel code re-entering delivery from inside a run: plugins.h) would
  // overwrite the run state in use: refused.
  if (m.env->mmu().generation() != l.generation && !l.running) l.rebuild_tlb();
  if (&context.env() != m.env || !l.runnable || l.running) {
    ++c.runs;
    ++c.aborted_fault;
    l.last.store(Outcome::Fault, std::memory_order_relaxed);
    return runtime::HandlerVerdict::Declined;
  }
  RunState& s = l.state();
  s.msg = message.data;
  s.msg_len = message.length;
  s.cursor = 0;
  s.budget = m.options.budget - int64_t(m.lowered.static_cost);
  s.ctx = &context;
  s.reply_len = 0;
  s.replies = 0;
  for (pipes::CompiledPipes& p : l.pipes) p.reset();
  ++c.runs;
  l.running = true;
  uint32_t r;
  if (m.fn) {
    r = m.fn(&s);
  } else {
    uint64_t arg = reinterpret_cast<uint64_t>(&s);
    r = uint32_t(l.interp->call(0, std::span<const uint64_t>(&arg, 1)));
  }
  l.running = false;
  Outcome o;
  switch (r) {
    case kRetCommit:
      ++c.committed;
      o = Outcome::Committed;
      break;
    case kRetBudget:
      ++c.aborted_budget;
      o = Outcome::Budget;
      break;
    case kRetAbort:
      ++c.aborted_voluntary;
      o = Outcome::Aborted;
      break;
    default:
      ++c.aborted_fault;
      o = Outcome::Fault;
      break;
  }
  l.last.store(o, std::memory_order_relaxed);
  return o == Outcome::Committed ? runtime::HandlerVerdict::Consumed
                                 : runtime::HandlerVerdict::Declined;
}

HandlerCounters Handler::counters() const {
  HandlerCounters sum;
  for (uint32_t i = 0; i < runtime::kMaxLanes; ++i) {
    const Lane* l = impl_->lanes[i].load(std::memory_order_acquire);
    if (!l) continue;
    const Lane::Counters& c = l->counters;
    sum.runs += c.runs;
    sum.committed += c.committed;
    sum.aborted_voluntary += c.aborted_voluntary;
    sum.aborted_budget += c.aborted_budget;
    sum.aborted_fault += c.aborted_fault;
    sum.replies_sent += c.replies_sent;
    sum.replies_refused += c.replies_refused;
    sum.tlb_rebuilds += c.tlb_rebuilds;
  }
  return sum;
}
Outcome Handler::last_outcome(uint32_t lane) const {
  if (lane >= runtime::kMaxLanes) fail("ash: lane {} (at most {})", lane, runtime::kMaxLanes - 1);
  const Lane* l = impl_->lanes[lane].load(std::memory_order_acquire);
  return l ? l->last.load(std::memory_order_relaxed) : Outcome::Committed;
}
uint32_t Handler::static_cost() const {
  return impl_->lowered.static_cost;
}
const vcode::Module& Handler::lowered() const {
  return impl_->lowered.module;
}
const vcode::Code& Handler::code() const {
  return impl_->code;
}
std::string Handler::listing() const {
  return vcode::print(impl_->lowered.module);
}

}  // namespace exojit::ash
