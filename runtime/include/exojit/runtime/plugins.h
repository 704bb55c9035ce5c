// SPDX-License-Identifier: MIT
// The three plug-in interfaces of the runtime (runtime/README.md): a demultiplexer, a message
// handler and a wake-up predicate. dpf/ implements Demux, ash/ implements MessageHandler; the
// runtime ships a built-in demux (builtin_demux.h) and vcode-compiled predicates (predicate.h).
//
// A packet's walk: Nic -> Demux::classify -> the filter's owner -> its MessageHandler, if any
// (Consumed: done; Declined: as if there were none) -> the owner's packet ring -> owner woken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace exojit::runtime {

class Environment;
class Kernel;
class Nic;

// Decides which filter accepts a packet. Returns the filter id, 0 when none does. Must never
// read outside [packet, packet + length). Called on the delivering threads (a NIC's receive
// queues), one call at a time unless concurrent() says classify may run on several at once.
class Demux {
 public:
  virtual ~Demux() = default;
  virtual uint32_t classify(const uint8_t* packet, size_t length) = 0;
  virtual bool concurrent() const { return false; }
};

// The message as the kernel holds it: read-only, in kernel memory (the NIC's receive buffer).
struct Message {
  const uint8_t* data;
  uint32_t length;
  uint32_t filter;  // the id the demux returned
};

enum class HandlerVerdict : uint8_t {
  Consumed,  // the handler committed: the message is done (it may have replied)
  Declined,  // the handler aborted or declined: the message goes to the owner's ring
};

// A lane is a receive queue's kernel-wide number (the kernel's NICs' queues, counted from 0 in
// the order the NICs were added): the kernel delivers one message at a time per lane (under the
// queue's lock), and messages of different lanes at once in thread mode. A handler that runs on
// several lanes at once keeps its run state per lane (ash::Handler). At most kMaxLanes.
inline constexpr uint32_t kMaxLanes = 1024;

// What a handler may do while it runs "in the environment's address space": every access to the
// environment's memory is translated by the environment's page table and checked, byte range by
// byte range; a refused access changes nothing and returns false (the handler then aborts; the
// environment's fault handler is not called: there is no one to retry for). Replies go out on
// the NIC the message came in on, if the environment holds a capability for its transmit side.
class HandlerContext {
 public:
  // `lane`: the receive queue's lane (below kMaxLanes, else an exojit::Error); a caller running a
  // handler by itself (tests, tools) leaves it 0.
  HandlerContext(Kernel& kernel, Environment& env, Nic& nic, bool may_transmit, uint32_t lane = 0);

  Kernel& kernel() { return kernel_; }
  Environment& env() { return env_; }
  Nic& nic() { return nic_; }
  uint32_t lane() const { return lane_; }
  uint64_t now() const;  // virtual time, ns

  bool copy_out(uint64_t va, const void* src, size_t n);  // into the environment's memory
  bool copy_in(void* dst, uint64_t va, size_t n);         // from the environment's memory
  // Host pointer to [va, va+n) when it lies in one page with `access` (Access bits), else nullptr.
  uint8_t* span(uint64_t va, size_t n, uint8_t access);
  // Transmits a frame held in kernel/handler memory; false when refused (no capability for the
  // NIC, transmit ring full, bad length), counted by the NIC.
  bool reply(const uint8_t* frame, size_t n);
  // Transmits a frame from the environment's memory (checked like copy_in).
  bool reply_from_env(uint64_t va, size_t n);

  uint32_t replies() const { return replies_; }

  // C-callable forms for generated code (vcode ccall): plain integer/pointer arguments and a
  // 1 (done) / 0 (refused) result.
  static uint32_t c_copy_out(HandlerContext* c, uint64_t va, const uint8_t* src, uint64_t n);
  static uint32_t c_copy_in(HandlerContext* c, uint8_t* dst, uint64_t va, uint64_t n);
  static uint32_t c_reply(HandlerContext* c, const uint8_t* frame, uint64_t n);

 private:
  Kernel& kernel_;
  Environment& env_;
  Nic& nic_;
  bool may_transmit_;
  uint32_t lane_;
  uint32_t replies_ = 0;
};

// Runs on the thread of whichever receive queue the message arrived on. Unless concurrent()
// says handle may run on several lanes at once, the kernel runs one call at a time (its
// run_lock_): a handler's run state then needs no synchronization of its own. A concurrent
// handler is never run twice at once on one lane (HandlerContext::lane()), except nested on one
// thread, by kernel code that re-enters delivery during a run (a transmit tap, a C++ handler
// transmitting over an immediate link): it keeps its run state per lane (ash::Handler: software
// TLB, pipe registers, counters summed on read).
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual HandlerVerdict handle(HandlerContext& context, const Message& message) = 0;
  virtual bool concurrent() const { return false; }

  // What the handler reaches by itself, beyond its HandlerContext: the environment whose memory
  // it translates on its own (nullptr: none, it goes through the context) and whether installing
  // it is the machine owner's decision (it skips checks, or goes past the limits an environment
  // may choose for itself). Kernel::install_handler refuses a handler bound to another
  // environment than the installing one, and one that needs root unless the installer holds the
  // root capability.
  struct Binding {
    const Environment* env = nullptr;
    bool needs_root = false;
  };
  virtual Binding binding() const { return {}; }

 private:
  friend class Kernel;
  std::mutex run_lock_;
};

// A condition over the environment's own memory; the kernel evaluates it (in kernel context) to
// decide whether a blocked environment should run. Returns a nonzero value when it holds.
class WakeupPredicate {
 public:
  virtual ~WakeupPredicate() = default;
  virtual uint32_t evaluate() = 0;
};

}  // namespace exojit::runtime
