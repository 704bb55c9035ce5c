// SPDX-License-Identifier: MIT
// The kernel: owns the machine (physical memory, environments, NICs, links, the virtual clock),
// securely multiplexes it, and runs the receive path.
//
// Every call that touches a guarded resource names the capability it uses (an index into the
// calling environment's list) and is checked before anything changes: a missing or inadequate
// capability is an exojit::Error and leaves every structure as it was. Guarded resources: page
// frames, packet rings, NIC transmit sides, filter slots (and their handler slots).
//
// Receive path (runtime/README.md): Demux::classify -> filter slot -> MessageHandler (if installed)
// -> the slot's packet ring -> the owner is woken.
//
// Mode::Scheduler (the default; tests): one host thread, the scheduler model runs environments.
// Mode::Threads: environments are host threads. Each NIC receive queue delivers under its own
// lock (queues deliver in parallel); kernel calls that change what the receive path reads
// (filter slots, handlers, rings, capabilities) take every queue's lock (exclude_delivery), so a
// delivery sees a slot's state before or after such a call, never in between. A demux or a
// message handler that is not declared concurrent runs one call at a time (plugins.h). Packet
// rings take frames from several queues at once (a lock per ring, held for the copy).
//
// Memory operations and handler runs: page tables and frames are edited under the memory lock,
// which kernel-context code (handlers' translations) takes to read them. Every handler run is a
// read section (exojit/grace_period.h). An operation that removes or reduces a translation
// (unmap_page, protect_page, map_page over a mapped page, revoke) returns only after a grace
// period (every run in progress elsewhere has ended), and holds the old frame until then: no
// handler ever touches a frame after it was freed. remove_handler and release_filter return
// once the handler can no longer be running (it may then be destroyed).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exojit/runtime/capability.h"
#include "exojit/runtime/clock.h"
#include "exojit/runtime/counter.h"
#include "exojit/runtime/environment.h"
#include "exojit/runtime/link.h"
#include "exojit/runtime/nic.h"
#include "exojit/runtime/physical_memory.h"
#include "exojit/runtime/plugins.h"
#include "exojit/runtime/ring.h"

namespace exojit::runtime {

enum class Mode : uint8_t { Scheduler, Threads };

struct KernelConfig {
  uint32_t frames = 4096;     // physical memory: 16 MiB
  uint32_t tlb_entries = 64;  // per environment; a power of two, 0 for no TLB
  Mode mode = Mode::Scheduler;
  // Machines simulated together share one virtual clock (and one scheduler): pass it here.
  // nullptr: the kernel has its own.
  VirtualClock* clock = nullptr;
};

// Written under the ring's lock (thread mode); read them once delivery is quiet.
struct RingCounters {
  uint64_t delivered = 0;
  uint64_t bytes = 0;
  uint64_t drops_full = 0;        // no free slot: the environment had not drained the ring
  uint64_t drops_bad_buffer = 0;  // the slot's buffer is outside the ring's buffer area
  uint64_t drops_too_big = 0;     // the message is larger than the slot's buffer
};

// The kernel's side of a packet ring (ring.h is the environment's side). Cache-line aligned, as
// are filter slots: queues delivering to different rings or slots share no line.
struct alignas(64) PacketRing {
  uint32_t id;
  Environment* owner;
  Capability guard;
  uint64_t ring_va;
  RingHeader* header;  // pinned host view of the ring page
  uint64_t area_va, area_len;
  std::vector<uint8_t*> area_pages;  // pinned host view of the buffer area, page by page
  RingCounters counters;
  std::mutex producers;  // thread mode: queues placing frames into this ring, one at a time
};

// Added to by every queue that delivers to the slot, at once.
struct FilterCounters {
  SharedCounter matched;
  SharedCounter handled;   // consumed by the handler
  SharedCounter declined;  // the handler declined: delivered to the ring instead
};

// Read by delivering threads under their queue's lock, written under every queue's lock.
struct alignas(64) FilterSlot {
  Environment* owner = nullptr;
  Capability guard;
  PacketRing* ring = nullptr;
  MessageHandler* handler = nullptr;
  bool handler_may_transmit = false;
  const Nic* reply_nic = nullptr;  // the NIC whose transmit capability was checked at install
  FilterCounters counters;
};

class Kernel {
 public:
  explicit Kernel(KernelConfig config = {});
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const KernelConfig& config() const { return config_; }
  bool threaded() const { return config_.mode == Mode::Threads; }
  PhysicalMemory& memory() { return memory_; }
  VirtualClock& clock() { return *clock_; }

  // Machine set-up (trusted, boot time): environments with their first capability, NICs, links,
  // the demultiplexer.
  Environment& create_environment(std::string name, Capability initial);
  Nic& add_nic(NicConfig config, Capability tx_guard);
  Link& connect(Nic& a, Nic& b, LinkConfig config);
  void set_demux(Demux* demux) { demux_ = demux; }
  const std::vector<std::unique_ptr<Environment>>& environments() const { return envs_; }
  // Receive queues of all NICs so far: the lanes 0 .. lanes() - 1 (plugins.h). add_nic refuses
  // a NIC whose queues would go past kMaxLanes.
  uint32_t lanes() const { return lanes_; }

  // Capabilities: `from` hands a refinement of its capability `cap` to `to` ([EXOTOOLS02]: the
  // creator refines what it passes on). Returns the index in `to`'s list.
  size_t grant(Environment& from, size_t cap, Environment& to, Capability refined);

  // Memory. The frame's guard must be dominated by `cap`, which needs the alloc permission.
  uint32_t alloc_frame(Environment& env, size_t cap, Capability guard);
  void free_frame(Environment& env, size_t cap, uint32_t frame);
  // Mapping needs a capability dominating the frame's guard (with write for a writable page).
  void map_page(Environment& env, size_t cap, uint64_t va, uint32_t frame, uint8_t bits);
  void unmap_page(Environment& env, size_t cap, uint64_t va);
  void protect_page(Environment& env, size_t cap, uint64_t va, uint8_t bits);
  // Revokes `env`'s capability `cap` (the entry stays, invalid, so indexes do not move) and the
  // bindings it alone justified: pages whose frame no remaining capability dominates are unmapped
  // (made read-only when one still does, without write), handlers of filter slots it can no
  // longer write are removed. Pinned pages (rings, predicates) stay until their object goes.
  void revoke(Environment& env, size_t cap);
  // Convenience: `pages` fresh frames guarded by `cap` itself, mapped at va... with `bits`.
  void alloc_pages(Environment& env, size_t cap, uint64_t va, size_t pages, uint8_t bits);

  // Packet rings: the ring page at ring_va (mapped writable, one page) and the buffer area
  // [area_va, area_va + area_len) (mapped writable) are pinned for the ring's life. The guard
  // is `cap` itself (alloc permission). The ring's slots must be filled by the environment
  // (ring.h) before messages can arrive; `init_ring_buffers` does it for an even split of the area.
  uint32_t create_ring(Environment& env, size_t cap, uint64_t ring_va, uint32_t slots,
                       uint64_t area_va, uint64_t area_len);
  void destroy_ring(Environment& env, size_t cap, uint32_t ring);
  PacketRing& ring(uint32_t id);

  // Filter slots: an environment claims the slot of a filter id (the id its Demux returns),
  // binds it to one of its rings and may install a message handler. Claiming needs `cap` with
  // alloc (the slot's guard is `cap`); the others need a capability dominating the slot's guard
  // with write. A handler may transmit replies if the environment holds a capability for the
  // NIC's transmit side when the handler is installed.
  void claim_filter(Environment& env, size_t cap, uint32_t filter);
  void release_filter(Environment& env, size_t cap, uint32_t filter);
  void bind_filter(Environment& env, size_t cap, uint32_t filter, uint32_t ring);
  void install_handler(Environment& env, size_t cap, uint32_t filter, MessageHandler* handler,
                       const Nic* reply_nic = nullptr);
  void remove_handler(Environment& env, size_t cap, uint32_t filter);
  const FilterSlot* filter(uint32_t id) const;

  // Transmit from the environment's memory; needs write on the NIC's transmit guard. Returns
  // false when the NIC refused the frame (transmit ring full; counted by the NIC).
  bool transmit(Environment& env, size_t cap, Nic& nic, uint64_t va, size_t length);
  // Same, from a host buffer the environment's code holds (its libOS's staging memory).
  bool transmit_bytes(Environment& env, size_t cap, Nic& nic, const uint8_t* frame, size_t length);

  // A timer: wakes `env` at virtual time t (scheduler model).
  void wake_at(Environment& env, uint64_t t);

  // The receive path, called by NICs for a frame of receive queue `queue` (under its lock in
  // thread mode): classify, run the handler, place into the ring, wake.
  void deliver(Nic& nic, uint32_t queue, const uint8_t* frame, size_t length);

  // Thread mode: holds every receive queue's delivery lock (of every NIC) while it lives, so
  // no frame is being delivered; e.g. to edit a demux's rules (BuiltinDemux) while traffic
  // flows. Scheduler mode: holds nothing. Recursive: a kernel call made from inside a handler
  // takes its own queue's lock again (but two queues' handlers doing so at once would wait on
  // each other: handlers do not call the kernel's set-up calls).
  class DeliveryExclusion {
   public:
    bool owns_lock() const { return !locks_.empty(); }
    void unlock() { locks_.clear(); }

   private:
    friend class Kernel;
    std::vector<std::unique_lock<std::recursive_mutex>> locks_;
  };
  DeliveryExclusion exclude_delivery();

  // Helpers for the environment's side (thread-safe with respect to the kernel's writes).
  // Fills every slot of ring `id` with consecutive buffers of `buffer_size` bytes from its area.
  void init_ring_buffers(Environment& env, uint32_t ring, uint32_t buffer_size);

  // Held while page tables and frames change, and by kernel-context code that reads them.
  std::mutex& memory_lock() { return memory_mutex_; }

 private:
  void check(Environment& env, size_t cap, const Capability& guard, uint8_t need,
             const char* what) const;
  FilterSlot& owned_slot(Environment& env, size_t cap, uint32_t filter, const char* what);
  bool place(PacketRing& ring, const uint8_t* frame, size_t length);
  // Unlocks `lock` (the memory lock), waits for the handler runs in progress, locks it again
  // and drops the mappings held on `held` frames.
  void retire(std::unique_lock<std::mutex>& lock, const std::vector<uint32_t>& held);
  uint32_t classify_serialized(const uint8_t* frame, size_t length);  // under classify_mutex_

  KernelConfig config_;
  PhysicalMemory memory_;
  VirtualClock own_clock_;
  VirtualClock* clock_;
  std::vector<std::unique_ptr<Environment>> envs_;
  std::vector<std::unique_ptr<Nic>> nics_;
  uint32_t lanes_ = 0;
  std::vector<Capability> nic_guards_;
  std::vector<std::unique_ptr<Link>> links_;
  std::vector<std::unique_ptr<PacketRing>> rings_;  // by id - 1; null once destroyed
  std::vector<FilterSlot> filters_;                 // by filter id
  Demux* demux_ = nullptr;
  std::mutex classify_mutex_;  // a demux that is not concurrent: one classify at a time
  std::mutex memory_mutex_;
};

// The largest filter id a slot can be claimed for.
inline constexpr uint32_t kMaxFilterId = 1u << 16;

}  // namespace exojit::runtime
