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
#include "sandbox_p.h"

namespace exojit::ash {

using runtime::kPageShift;
using runtime::kPageSize;

// What the call primitives reach at run time.
struct HandlerRuntime {
  runtime::Environment* env;
  HandlerOptions options;
  uint64_t pages = 0;         // region pages
  uint64_t* tlb_r = nullptr;  // in the state block
  uint64_t* tlb_w = nullptr;
  std::vector<pipes::CompiledPipes> pipes;
  std::vector<pipes::CompiledPipes::Persistent> refs;  // by PipeRef index
  std::vector<int> ref_list;                           // the pipe list of each ref
  std::vector<uint64_t> pipe_cost_per_kib;             // budget charge per 1024 bytes, by list
  std::vector<uint8_t> staging;                        // pipes into non-contiguous pages
  HandlerCounters counters;
};

struct Handler::Impl {
  HandlerRuntime rt;
  std::vector<Site> sites;  // copies the lowered code points at
  Lowered lowered;
  vcode::Code code;
  std::optional<vcode::Interpreter> interp;
  uint32_t (*fn)(RunState*) = nullptr;
  std::vector<uint64_t> block;  // RunState, then the two software TLBs
  uint64_t generation = ~uint64_t(0);
  Outcome last = Outcome::Committed;
  bool runnable = true;  // Trusted: the region is the block compiled in (set at each rebuild)

  RunState& state() { return *reinterpret_cast<RunState*>(block.data()); }
  // Under the kernel's memory lock: the page table is edited by other threads (thread mode).
  void rebuild_tlb();
  // Trusted: whether the region is still one writable host block at the delta compiled in.
  bool trusted_block_intact() const;
};

namespace {

constexpr size_t words(size_t bytes) {
  return (bytes + 7) / 8;
}

// Host pointer to application [va, va+n) for `access` when it is inside the region and every
// page is mapped with the access and host-contiguous; else nullptr.
uint8_t* app_block(HandlerRuntime& rt, uint64_t va, uint64_t n, bool write) {
  const HandlerOptions& o = rt.options;
  if (rt.options.sandbox == Sandbox::Trusted)
    return reinterpret_cast<uint8_t*>(va + uint64_t(rt.tlb_r[rt.pages]));
  uint64_t off = va - o.region.va;
  if (off > o.region.len || n > o.region.len - off) return nullptr;
  if (n == 0) return reinterpret_cast<uint8_t*>(1);  // nothing to touch
  const uint64_t* tlb = write ? rt.tlb_w : rt.tlb_r;
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
bool app_pieces(HandlerRuntime& rt, uint64_t va, uint64_t n, bool write, F f) {
  const HandlerOptions& o = rt.options;
  uint64_t off = va - o.region.va;
  if (off > o.region.len || n > o.region.len - off) return false;
  const uint64_t* tlb = write ? rt.tlb_w : rt.tlb_r;
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
  uint64_t per_kib = list >= 0 ? s->rt->pipe_cost_per_kib[size_t(list)] : 128;  // memcpy: 8 B/insn
  int64_t cost = int64_t((n * per_kib + 1023) >> 10) + 1;
  s->budget -= cost;
  return s->budget >= 0;
}

// Runs pipe list `list` (or a copy) from src to application va.
uint32_t transfer_to_app(RunState* s, int list, uint64_t va, const uint8_t* src, uint64_t n) {
  HandlerRuntime& rt = *s->rt;
  if (!charge(s, list, n)) return kRetBudget;
  if (uint8_t* dst = app_block(rt, va, n, true)) {
    if (n == 0) return 0;
    if (list < 0)
      std::memcpy(dst, src, n);
    else
      rt.pipes[size_t(list)](dst, src, n);
    return 0;
  }
  // Mapped but not host-contiguous: through the staging buffer when there are pipes (a pipe
  // list sees the message as one stream), page by page otherwise.
  const uint8_t* from = src;
  if (list >= 0) {
    if (n > rt.staging.size()) return kRetFault;
    if (!app_pieces(rt, va, n, true, [](uint8_t*, uint64_t, uint64_t) {})) return kRetFault;
    rt.pipes[size_t(list)](rt.staging.data(), src, n);
    from = rt.staging.data();
  }
  bool ok = app_pieces(rt, va, n, true, [&](uint8_t* host, uint64_t done, uint64_t chunk) {
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
  HandlerRuntime& rt = *s->rt;
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
      rt.pipes[size_t(site.pipes)](nullptr, s->msg + s->cursor, v[0]);
      s->cursor += v[0];
      return 0;
    }
    case PrimKind::PipeGet: {
      int list = rt.ref_list[size_t(site.ref)];
      s->result = rt.pipes[size_t(list)].get(rt.refs[size_t(site.ref)]);
      return 0;
    }
    case PrimKind::PipeSet: {
      int list = rt.ref_list[size_t(site.ref)];
      rt.pipes[size_t(list)].set(rt.refs[size_t(site.ref)], v[0]);
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
      if (const uint8_t* src = app_block(rt, va, n, false)) {
        if (n) {
          if (site.pipes < 0)
            std::memcpy(dst, src, n);
          else
            rt.pipes[size_t(site.pipes)](dst, src, n);
        }
      } else {
        bool ok = app_pieces(rt, va, n, false, [&](uint8_t* host, uint64_t done, uint64_t chunk) {
          std::memcpy(dst + done, host, chunk);
        });
        if (!ok) return kRetFault;
        if (site.pipes >= 0) rt.pipes[size_t(site.pipes)](dst, dst, n);
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
      bool ok = s->replies < rt.options.max_replies && s->ctx->reply(s->reply, s->reply_len);
      if (ok) {
        ++s->replies;
        ++rt.counters.replies_sent;
      } else {
        ++rt.counters.replies_refused;
      }
      s->result = ok;
      return 0;
    }
    default:
      return kRetFault;
  }
}

void Handler::Impl::rebuild_tlb() {
  runtime::AddressSpace& as = rt.env->mmu();
  std::lock_guard<std::mutex> lock(rt.env->kernel().memory_lock());
  generation = as.generation();
  ++rt.counters.tlb_rebuilds;
  for (uint64_t p = 0; p < rt.pages; ++p) {
    uint64_t va = rt.options.region.va + p * kPageSize;
    rt.tlb_r[p] = reinterpret_cast<uint64_t>(as.walk(va, runtime::kRead));
    rt.tlb_w[p] = reinterpret_cast<uint64_t>(as.walk(va, runtime::kWrite));
  }
  runnable = rt.options.sandbox != Sandbox::Trusted || trusted_block_intact();
}

bool Handler::Impl::trusted_block_intact() const {
  uint64_t host = rt.tlb_w[0];
  if (rt.pages == 0 || !host || host - rt.options.region.va != rt.tlb_r[rt.pages]) return false;
  for (uint64_t p = 0; p < rt.pages; ++p)
    if (rt.tlb_w[p] != host + p * kPageSize) return false;
  return true;
}

Handler::Handler(const HandlerBuilder& program, runtime::Environment& env,
                 const HandlerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  HandlerRuntime& rt = m.rt;
  rt.env = &env;
  rt.options = options;
  const Region& r = options.region;
  if (r.va & (kPageSize - 1)) fail("ash: region 0x{:x} is not page aligned", r.va);
  if (r.len > kMaxRegion) fail("ash: region of {} bytes (at most {})", r.len, kMaxRegion);
  if (r.va >= runtime::kVaLimit || r.len > runtime::kVaLimit - r.va)
    fail("ash: region 0x{:x}+{} is outside the address space", r.va, r.len);
  if (options.budget <= 0) fail("ash: a budget of {} instructions", options.budget);
  rt.pages = (r.len + kPageSize - 1) >> kPageShift;

  // The state block: RunState, then the read and write TLBs (one spare entry each: a crossing
  // access reads the next page's entry; Trusted keeps its delta in the read TLB's spare).
  size_t state_words = words(sizeof(RunState));
  m.block.assign(state_words + 2 * (rt.pages + 1), 0);
  rt.tlb_r = m.block.data() + state_words;
  rt.tlb_w = rt.tlb_r + rt.pages + 1;
  m.rebuild_tlb();
  rt.counters.tlb_rebuilds = 0;

  LowerOptions lo;
  lo.trusted = options.sandbox == Sandbox::Trusted;
  lo.harden = options.harden;
  lo.region_va = r.va;
  lo.region_len = r.len;
  lo.tlb_read = int64_t(state_words * 8);
  lo.tlb_write = int64_t((state_words + rt.pages + 1) * 8);
  lo.max_locals = options.max_locals;
  lo.max_insns = options.max_insns;
  if (lo.trusted) {
    // No checks: the region must be one block of host memory, mapped read-write (and not
    // empty: an empty region has no block to be relative to). Each run re-checks it when the
    // page table changed (handle()).
    rt.tlb_r[rt.pages] = rt.tlb_w[0] - r.va;
    if (!m.trusted_block_intact())
      fail("ash: a trusted handler needs its region mapped writable in one host block");
    lo.trusted_delta = int64_t(rt.tlb_r[rt.pages]);
    m.runnable = true;
  }
  m.sites = program.sites();
  lo.sites = m.sites.data();
  m.lowered = lower(program, lo);

  // Pipe lists: compiled once, with their budget charge per KiB ([ASH96], 3.3: the pipe's
  // cost times the iterations, strength-reduced to one multiply).
  pipes::CompileOptions po;
  if (options.engine == Engine::Interpreter) po.backend = pipes::Backend::Interpreter;
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
  for (size_t i = 0; i < scanned.size(); ++i) {
    const pipes::PipeList& pl = program.pipe_lists()[i];
    rt.pipes.push_back(
        pipes::compile(pl, scanned[i] ? pipes::Direction::ReadOnly : pipes::Direction::Write, po));
    const pipes::PipeCost& c = rt.pipes.back().cost();
    uint64_t bpi = std::max<uint32_t>(1, c.bytes_per_iteration);
    rt.pipe_cost_per_kib.push_back((uint64_t(c.insns_per_iteration) * 1024 + bpi - 1) / bpi + 16);
  }
  for (const PipeRef& ref : program.pipe_refs()) {
    rt.refs.push_back(rt.pipes[size_t(ref.pipes)].persistent(ref.pipe, ref.reg));
    rt.ref_list.push_back(ref.pipes);
  }
  if (!rt.pipes.empty()) rt.staging.resize(65536);

  if (int64_t(m.lowered.static_cost) > options.budget)
    fail("ash handler {}: straight-line cost {} exceeds the budget of {}", program.name(),
         m.lowered.static_cost, options.budget);
  if (options.engine == Engine::Native) {
    vcode::CompileOptions co;
    co.blind_constants = options.harden;
    m.code = vcode::compile(m.lowered.module, co);
    m.fn = m.code.as<uint32_t(RunState*)>();
  } else {
    m.interp.emplace(m.lowered.module);
  }
  RunState& s = m.state();
  s.rt = &rt;
}

Handler::~Handler() = default;

runtime::MessageHandler::Binding Handler::binding() const {
  // Unchecked or unhardened: installing it needs the root capability.
  return Binding{impl_->rt.env,
                 impl_->rt.options.sandbox == Sandbox::Trusted || !impl_->rt.options.harden};
}

runtime::HandlerVerdict Handler::handle(runtime::HandlerContext& context,
                                        const runtime::Message& message) {
  Impl& m = *impl_;
  HandlerRuntime& rt = m.rt;
  // Runs only in the environment it was made for (the kernel installs it for that one alone);
  // anything else is a fault, not an access to another address space.
  if (rt.env->mmu().generation() != m.generation) m.rebuild_tlb();
  if (&context.env() != rt.env || !m.runnable) {
    ++rt.counters.runs;
    ++rt.counters.aborted_fault;
    m.last = Outcome::Fault;
    return runtime::HandlerVerdict::Declined;
  }
  RunState& s = m.state();
  s.msg = message.data;
  s.msg_len = message.length;
  s.cursor = 0;
  s.budget = rt.options.budget - int64_t(m.lowered.static_cost);
  s.ctx = &context;
  s.reply_len = 0;
  s.replies = 0;
  for (pipes::CompiledPipes& p : rt.pipes) p.reset();
  ++rt.counters.runs;
  uint32_t r;
  if (m.fn) {
    r = m.fn(&s);
  } else {
    uint64_t arg = reinterpret_cast<uint64_t>(&s);
    r = uint32_t(m.interp->call(0, std::span<const uint64_t>(&arg, 1)));
  }
  switch (r) {
    case kRetCommit:
      ++rt.counters.committed;
      m.last = Outcome::Committed;
      return runtime::HandlerVerdict::Consumed;
    case kRetBudget:
      ++rt.counters.aborted_budget;
      m.last = Outcome::Budget;
      break;
    case kRetAbort:
      ++rt.counters.aborted_voluntary;
      m.last = Outcome::Aborted;
      break;
    default:
      ++rt.counters.aborted_fault;
      m.last = Outcome::Fault;
      break;
  }
  return runtime::HandlerVerdict::Declined;
}

const HandlerCounters& Handler::counters() const {
  return impl_->rt.counters;
}
Outcome Handler::last_outcome() const {
  return impl_->last;
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
