// SPDX-License-Identifier: MIT
// Specialized UDP sends and their code guards (send.h).
//
// A token's calls go through an atomic pointer to the current version of the code (specialized,
// generic, or "closed"); each version counts the calls inside it. A caller counts itself in and
// then checks that its version is still current (else it counts itself out and retries), so once
// the pointer has moved no new call can enter the old version; the old code is freed by whoever
// sees it retired with no call inside (the guard, or the last call leaving it).
#include "exojit/specializer/send.h"

#include <errno.h>

#include <cstddef>

#include "exojit/error.h"

namespace exojit::specializer {

namespace detail {
using SendFn = int (*)(exo_stack*, int, const void*, uint32_t, uint32_t, uint16_t);
}  // namespace detail

namespace {

using detail::SendFn;

int send_closed(exo_stack*, int, const void*, uint32_t, uint32_t, uint16_t) {
  return -EBADF;
}

std::string ipv4_text(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

// A field of the socket as an invariant range.
#define SOCKET_FIELD(k, field) invariant(&(k)->field, sizeof((k)->field), "socket ." #field)

Declaration declare(exo_stack* s, const SendContext& c, std::vector<uint32_t>* arp_ips) {
  if (c.fd < 0 || c.fd >= EXO_MAX_SOCKETS || !s->sockets[c.fd].in_use)
    fail("specialized send: socket {} is not open", c.fd);
  exo_sock* k = &s->sockets[c.fd];
  uint32_t ip = c.ip;
  if (ip == 0) {
    if (!k->connected)
      fail("specialized send: socket {} has no destination (not connected, no address)", c.fd);
    ip = k->remote_ip;
  } else if (c.port == 0) {
    fail("specialized send: destination port 0");
  }
  if (c.adu > 65535 - 28) fail("specialized send: ADU of {} bytes (at most 65507)", c.adu);
  if (!k->bound) {
    if (int rc = exo_bind(s, c.fd, 0); rc < 0)
      fail("specialized send: socket {} cannot be bound ({})", c.fd, rc);
  }
  uint32_t next_hop = exo_route_lookup(s, ip);
  if (next_hop == 0) fail("specialized send: no route to {}", ipv4_text(ip));
  exo_arp_entry* e = exo_arp_lookup(s, next_hop);
  if (!e || e->state != 2)
    fail(
        "specialized send: next hop {} is not resolved in the ARP table (send once through the "
        "generic path, or add a static entry)",
        ipv4_text(next_hop));

  Declaration d;
  d.function = "exo_sendto";
  d.args = {S(s), S(c.fd), D, c.adu ? S(c.adu) : D, S(c.ip), S(c.ip ? c.port : uint16_t(0))};
  d.invariants = {invariant(&s->cfg, "stack configuration"),
                  invariant(&s->ops, "kernel operations"),
                  SOCKET_FIELD(k, in_use),
                  SOCKET_FIELD(k, bound),
                  SOCKET_FIELD(k, local_port),
                  SOCKET_FIELD(k, checksum),
                  SOCKET_FIELD(k, ttl),
                  SOCKET_FIELD(k, dontfrag),
                  invariant(&s->routes, "routes")};
  if (c.ip == 0) {
    d.invariants.push_back(SOCKET_FIELD(k, connected));
    d.invariants.push_back(SOCKET_FIELD(k, remote_ip));
    d.invariants.push_back(SOCKET_FIELD(k, remote_port));
  }
  // The ARP lookup reads the entries before the next hop's (address and state), then its own.
  for (exo_arp_entry* a = s->arp; a <= e; ++a) {
    std::string what = fmt::format("ARP entry {} ({})", a - s->arp, ipv4_text(a->ip));
    d.invariants.push_back(invariant(&a->ip, sizeof a->ip, what + " .ip"));
    d.invariants.push_back(invariant(&a->state, sizeof a->state, what + " .state"));
    if (arp_ips) arp_ips->push_back(a->ip);
  }
  d.invariants.push_back(invariant(&e->mac, sizeof e->mac, "next hop's MAC address"));
  return d;
}

#undef SOCKET_FIELD

}  // namespace

Declaration declare_send(exo_stack* s, const SendContext& c) {
  return declare(s, c, nullptr);
}

namespace detail {

// One version of a token's code, and the calls inside it.
struct Version {
  explicit Version(SendFn f, std::shared_ptr<const Residual> r = nullptr)
      : fn(f), code(std::move(r)) {}
  SendFn fn;
  std::shared_ptr<const Residual> code;  // null: the generic path (or "closed")
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> retired{false};
  std::atomic<bool> freed{false};
};

}  // namespace detail

using detail::Version;

struct SendSpecializer::State {
  State(exo_stack* s, const SendContext& c) : stack(s), context(c) {}
  exo_stack* stack;
  const SendContext context;
  Version generic{&exo_sendto};
  Version closed{&send_closed};
  std::atomic<Version*> current{&generic};
  std::atomic<uint64_t> invalidations{0};
  mutable std::mutex lock;                         // what follows
  std::vector<std::unique_ptr<Version>> versions;  // specialized ones, kept while the token lives
  std::vector<uint32_t> arp_ips;                   // ARP entries the current code read
  std::string reason = "not specialized yet";
  bool sticky = false;                 // stays on the generic path (application change, close)
  bool pending = false;                // respecialize after the environment change
  Specializer* specializer = nullptr;  // null once the SendSpecializer is gone

  // Calls through a token are serialized with every other use of its stack (the libOS is not
  // thread-safe), so counting them needs no atomic read-modify-write: a locked increment and
  // decrement cost a sixth of a 64-byte send. What the count protects against is a change made
  // during a call, from inside it (a transmit tap, an ARP reply handled in the call), which must
  // not free the code the call returns into.
  Version* enter() {
    for (;;) {
      Version* v = current.load(std::memory_order_relaxed);
      v->in_flight.store(v->in_flight.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
      if (current.load(std::memory_order_relaxed) == v) return v;
      leave(v);  // moved meanwhile: take the new one
    }
  }
  void leave(Version* v) {
    int64_t n = v->in_flight.load(std::memory_order_relaxed) - 1;
    v->in_flight.store(n, std::memory_order_relaxed);
    if (n == 0 && v->retired.load(std::memory_order_relaxed)) free_if_idle(v);
  }
  void free_if_idle(Version* v) {
    if (v->retired.load() && v->in_flight.load() == 0 && !v->freed.exchange(true)) {
      std::lock_guard<std::mutex> g(lock);
      v->code.reset();
    }
  }
  // Points calls at `to`; the code they leave is freed once no call is inside it. Under `lock`
  // is not required (the pointer is atomic) and must not be held (free_if_idle takes it).
  void switch_to(Version* to) {
    Version* old = current.exchange(to);
    if (old == to || old == &generic || old == &closed) return;
    std::shared_ptr<const Residual> code;
    {
      std::lock_guard<std::mutex> g(lock);
      code = old->code;
    }
    if (code && specializer) specializer->forget(code->key);
    old->retired.store(true);
    free_if_idle(old);
  }
  bool is_specialized() const {
    Version* v = current.load();
    return v != &generic && v != &closed;
  }
};

SendSpecializer::SendSpecializer(Specializer& specializer, exo_stack* stack)
    : specializer_(specializer), stack_(stack) {
  if (stack->guard.changed)
    fail("specialized send: the stack already has a code guard (one SendSpecializer per stack)");
  stack->guard.ctx = this;
  stack->guard.changed = &SendSpecializer::guard;
}

SendSpecializer::~SendSpecializer() {
  stack_->guard.changed = nullptr;
  stack_->guard.ctx = nullptr;
  std::lock_guard<std::mutex> g(lock_);
  for (auto& w : tokens_)
    if (auto st = w.lock()) {
      // Without guards no specialized code may run.
      if (st->current.load() != &st->closed) st->switch_to(&st->generic);
      std::lock_guard<std::mutex> sg(st->lock);
      st->sticky = true;
      st->reason = "the SendSpecializer that guarded it is gone";
      st->specializer = nullptr;
    }
}

namespace {

// (Re)specializes `st` for its context; false (and the reason) when it cannot be.
bool install(Specializer& sp, SendSpecializer::State& st) {
  std::vector<uint32_t> ips;
  std::shared_ptr<const Residual> r;
  try {
    r = sp.specialize(declare(st.stack, st.context, &ips));
  } catch (const Error& e) {
    std::lock_guard<std::mutex> g(st.lock);
    st.reason = e.what();
    return false;
  }
  Version* v;
  {
    std::lock_guard<std::mutex> g(st.lock);
    st.versions.push_back(std::make_unique<Version>(reinterpret_cast<SendFn>(r->entry), r));
    v = st.versions.back().get();
    st.arp_ips = std::move(ips);
    st.reason.clear();
  }
  st.switch_to(v);
  return true;
}

}  // namespace

SendToken SendSpecializer::request(const SendContext& c) {
  auto st = std::make_shared<State>(stack_, c);
  st->specializer = &specializer_;
  std::vector<uint32_t> ips;
  // Errors in the context are the caller's: thrown, not kept as a reason.
  std::shared_ptr<const Residual> r = specializer_.specialize(declare(stack_, c, &ips));
  st->versions.push_back(std::make_unique<Version>(reinterpret_cast<SendFn>(r->entry), r));
  st->arp_ips = std::move(ips);
  st->reason.clear();
  st->current.store(st->versions.back().get());
  std::lock_guard<std::mutex> g(lock_);
  std::erase_if(tokens_, [](const std::weak_ptr<State>& w) { return w.expired(); });
  tokens_.push_back(st);
  return SendToken(st);
}

int SendSpecializer::guard(void* ctx, int phase, int event, uint32_t subject, int detail) {
  try {
    return static_cast<SendSpecializer*>(ctx)->on_change(phase, event, subject, detail);
  } catch (...) {
    // A guard must not unwind through the C stack: refuse what can be refused.
    return phase == EXO_GUARD_BEFORE ? 1 : 0;
  }
}

int SendSpecializer::on_change(int phase, int event, uint32_t subject, int detail) {
  std::lock_guard<std::mutex> g(lock_);
  std::vector<std::shared_ptr<State>> live;
  for (auto& w : tokens_)
    if (auto st = w.lock()) live.push_back(st);
  const bool application = event == EXO_CHANGE_SOCKOPT || event == EXO_CHANGE_CONNECT;
  auto affected = [&](State& st) {
    const SendContext& c = st.context;
    switch (event) {
      case EXO_CHANGE_SOCKOPT:  // the options the send path reads
        return st.is_specialized() && c.fd == int(subject) &&
               (detail == EXO_SO_CHECKSUM || detail == EXO_SO_TTL || detail == EXO_SO_DONTFRAG);
      case EXO_CHANGE_CONNECT:  // the peer, for a token that sends to it
        return st.is_specialized() && c.fd == int(subject) && c.ip == 0;
      case EXO_CHANGE_CLOSE:
        return c.fd == int(subject) && st.current.load() != &st.closed;
      case EXO_CHANGE_ARP: {
        std::lock_guard<std::mutex> sg(st.lock);
        for (uint32_t ip : st.arp_ips)
          if (ip == subject) return !st.sticky;
        return false;
      }
      default:  // a route, the MTU: every token
        return !st.sticky;
    }
  };
  if (phase == EXO_GUARD_BEFORE) {
    std::vector<State*> hit;
    for (auto& st : live)
      if (affected(*st)) hit.push_back(st.get());
    if (application)
      for (State* st : hit)
        if (st->context.on_application == OnApplicationChange::Refuse) return 1;
    std::string why = event == EXO_CHANGE_SOCKOPT ? fmt::format("socket option {} changed", detail)
                      : event == EXO_CHANGE_CONNECT ? std::string("socket connected elsewhere")
                      : event == EXO_CHANGE_CLOSE   ? std::string("socket closed")
                      : event == EXO_CHANGE_ROUTE   ? std::string("a route was added")
                      : event == EXO_CHANGE_MTU
                          ? fmt::format("MTU changed to {}", detail)
                          : fmt::format("ARP entry of {} changed", ipv4_text(subject));
    for (State* st : hit) {
      st->switch_to(event == EXO_CHANGE_CLOSE ? &st->closed : &st->generic);
      std::lock_guard<std::mutex> sg(st->lock);
      st->reason = why;
      if (application || event == EXO_CHANGE_CLOSE) {
        st->sticky = true;
      } else {
        st->invalidations.fetch_add(1);
        st->pending = st->context.on_environment == OnEnvironmentChange::Respecialize;
      }
    }
    return 0;
  }
  for (auto& st : live) {
    {
      std::lock_guard<std::mutex> sg(st->lock);
      if (!st->pending || st->sticky) continue;
      st->pending = false;
    }
    if (!install(specializer_, *st)) {
      std::lock_guard<std::mutex> sg(st->lock);
      st->reason = "respecialization failed: " + st->reason;
    }
  }
  return 0;
}

int SendToken::send(const void* data, uint32_t len) {
  SendSpecializer::State& st = *state_;
  const SendContext& c = st.context;
  if (c.adu && len != c.adu) {  // the ADU guard
    if (c.on_application == OnApplicationChange::Refuse) return -EMSGSIZE;
    if (st.current.load() == &st.closed) return -EBADF;
    return exo_sendto(st.stack, c.fd, data, len, c.ip, c.port);  // this call only
  }
  Version* v = st.enter();
  int rc = v->fn(st.stack, c.fd, data, len, c.ip, c.port);
  st.leave(v);
  return rc;
}

bool SendToken::specialized() const {
  return state_ && state_->is_specialized();
}

std::string SendToken::reason() const {
  if (!state_) return "no token";
  std::lock_guard<std::mutex> g(state_->lock);
  return state_->is_specialized() ? std::string() : state_->reason;
}

std::shared_ptr<const Residual> SendToken::residual() const {
  if (!state_) return nullptr;
  std::lock_guard<std::mutex> g(state_->lock);
  Version* v = state_->current.load();
  return v->code;
}

uint64_t SendToken::invalidations() const {
  return state_ ? state_->invalidations.load() : 0;
}

const SendContext& SendToken::context() const {
  static const SendContext none;
  return state_ ? state_->context : none;
}

}  // namespace exojit::specializer
