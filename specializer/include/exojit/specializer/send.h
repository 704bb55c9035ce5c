// SPDX-License-Identifier: MIT
// Specialized UDP sends ([TEMPO04]'s customized send): the libOS's generic send path, exo_sendto,
// specialized for a usage context — socket, destination, the route and ARP entry it uses, the
// socket's options, and optionally a fixed application data unit (ADU) size — with a code guard
// for every invariant.
//
//   Specializer sp;
//   SendSpecializer guard(sp, stack);  // becomes the stack's code guard
//   SendToken t = guard.request({.fd = fd, .ip = peer, .port = 7, .adu = 64});
//   t.send(data, 64);                   // the specialized path
//   exo_sendto(stack, fd, data, 64, peer, 7);  // the generic path, still there
//
// Guards ([TEMPO04], 2.2). Application-triggered changes — setsockopt of an option the send path
// reads (checksum, TTL, don't-fragment), connect() of a socket sending to its peer, a send of
// another size than the ADU — are refused (-EBUSY from setsockopt/connect, -EMSGSIZE from send)
// or make the token fall back to the generic path, as the context declares. Environment-
// triggered changes — the socket closed, a route added, an ARP entry the path reads changed, the
// MTU changed — invalidate the specialization: calls switch atomically to the generic path
// (after a close, to -EBADF), then to a fresh specialization if the context asks for one and is
// still specializable. Replaced code is freed only when no call can still be running in it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exojit/libos/netstack.h"
#include "exojit/specializer/declaration.h"
#include "exojit/specializer/specializer.h"

namespace exojit::specializer {

enum class OnApplicationChange { Refuse, Generic };
enum class OnEnvironmentChange { Generic, Respecialize };

struct SendContext {
  int fd = -1;
  uint32_t ip = 0;    // destination (0: the connected peer)
  uint16_t port = 0;  // with ip 0: ignored
  uint32_t adu = 0;   // every send carries exactly this many bytes (0: sizes vary)
  OnApplicationChange on_application = OnApplicationChange::Refuse;
  OnEnvironmentChange on_environment = OnEnvironmentChange::Respecialize;
};

// The declaration of exo_sendto for `c` on `s`: static stack, descriptor, destination (and
// length, with an ADU); invariant the stack's configuration and kernel operations, the socket's
// fields the send path reads, the routes, and the ARP entries the lookup of the next hop reads.
// An unbound socket is bound first (as its first send would). Throws exojit::Error when the
// context cannot be specialized (socket not open, no destination, no route, next hop not
// resolved in the ARP table).
Declaration declare_send(exo_stack* s, const SendContext& c);

class SendToken;

// A stack's specialized sends and their code guards. Owns the stack's guard (exo_guard_ops)
// while it lives; when it dies, its tokens fall back to the generic path.
class SendSpecializer {
 public:
  SendSpecializer(Specializer& specializer, exo_stack* stack);
  ~SendSpecializer();
  SendSpecializer(const SendSpecializer&) = delete;
  SendSpecializer& operator=(const SendSpecializer&) = delete;

  // Specializes (or finds in the cache) the send path for `c`; throws as declare_send().
  SendToken request(const SendContext& c);

  struct State;

 private:
  static int guard(void* ctx, int phase, int event, uint32_t subject, int detail);
  int on_change(int phase, int event, uint32_t subject, int detail);

  Specializer& specializer_;
  exo_stack* stack_;
  std::mutex lock_;
  std::vector<std::weak_ptr<State>> tokens_;
};

class SendToken {
 public:
  SendToken() = default;
  // Sends len bytes of data to the context's destination: exo_sendto's result.
  int send(const void* data, uint32_t len);

  bool specialized() const;    // calls go to specialized code now
  std::string reason() const;  // why they do not ("" when they do)
  // The specialized code calls go to now (null when generic): its size, IR, time to make.
  std::shared_ptr<const Residual> residual() const;
  uint64_t invalidations() const;  // environment changes that replaced the code
  const SendContext& context() const;
  bool valid() const { return state_ != nullptr; }

 private:
  friend class SendSpecializer;
  explicit SendToken(std::shared_ptr<SendSpecializer::State> s) : state_(std::move(s)) {}
  std::shared_ptr<SendSpecializer::State> state_;
};

}  // namespace exojit::specializer
