// SPDX-License-Identifier: MIT
// The NIC model: a receive descriptor ring, a transmit ring, and the two DMA styles of [ASH96]:
//
//   DmaMode::KernelBuffers  (Ethernet) the NIC DMAs each frame into a kernel buffer of its
//                           receive ring; the kernel demultiplexes it there and copies it once
//                           into the owner's buffer.
//   DmaMode::Direct         (AN2) the NIC demultiplexes as the frame arrives and DMAs it straight
//                           into a buffer the receiving environment supplied: no kernel copy.
//
// Receive queues (multi-queue NICs, RSS): the NIC has `queues` receive queues, each with its own
// descriptor ring, counters and delivery loop; RSS (rss.h) steers each frame to one, so a flow
// stays on one queue. In thread mode each queue delivers under its own lock, so queues run in
// parallel on different threads; with `queue_threads`, each queue's delivery loop is a kernel
// thread of its own, woken when frames arrive (the wire side only fills the ring).
//
// Every frame that cannot be placed is counted (ring full, runt, oversize, no owner, ...), never
// dropped silently. Frames reach the NIC from a Link, a pcap replay, an AF_PACKET socket or a
// test (receive_from_wire), and leave it to the Link and to transmit taps (pcap writers).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "exojit/runtime/counter.h"
#include "exojit/runtime/rss.h"

namespace exojit::runtime {

class Kernel;
class Link;

enum class DmaMode : uint8_t { KernelBuffers, Direct };

using MacAddress = std::array<uint8_t, 6>;

struct NicConfig {
  std::string name = "nic";
  MacAddress mac{0x02, 0, 0, 0, 0, 1};
  DmaMode dma = DmaMode::KernelBuffers;
  uint32_t rx_slots = 256;    // receive descriptors per queue (kernel buffers, KernelBuffers mode)
  uint32_t tx_slots = 256;    // frames queued for the wire at once
  uint32_t max_frame = 2048;  // largest frame accepted (bytes)
  // true: the kernel services the receive ring as each frame arrives (an interrupt per frame);
  // false: frames wait in the ring until service_rx() is called (polling, batching).
  bool interrupts = true;
  uint32_t queues = 1;  // receive queues (1..64)
  RssConfig rss;        // how frames are steered to them
  // Thread mode, KernelBuffers: each queue's delivery loop runs on its own kernel thread (the
  // wire side fills the ring and rings the queue's doorbell); interrupts/service_rx do not apply.
  bool queue_threads = false;
};

// A snapshot (Nic::counters() sums the queues; Nic::queue_counters(q) is one queue's receive
// side). Every frame accepted into a queue ends in exactly one of rx_delivered (to a ring or
// consumed by a handler), rx_drops_no_owner, rx_drops_owner_ring, or is still pending.
struct NicCounters {
  uint64_t rx_frames = 0;  // frames accepted into the NIC (its ring had room)
  uint64_t rx_bytes = 0;
  uint64_t rx_delivered = 0;         // frames that reached a handler or a ring
  uint64_t rx_drops_ring_full = 0;   // the NIC's receive ring was full
  uint64_t rx_drops_runt = 0;        // shorter than an Ethernet header
  uint64_t rx_drops_oversize = 0;    // longer than max_frame
  uint64_t rx_drops_no_owner = 0;    // no filter accepted it, or its owner bound no ring
  uint64_t rx_drops_owner_ring = 0;  // the owner's ring could not take it (see the ring's counters)
  uint64_t rx_handled = 0;           // consumed by a message handler
  uint64_t rx_copied_bytes = 0;      // bytes the kernel copied (KernelBuffers mode: one copy)
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_drops_ring_full = 0;  // transmit ring full: the send was refused
  uint64_t tx_drops_bad = 0;        // runt/oversize frames refused
};

class Nic {
 public:
  // A tap sees every frame at the given virtual time (ns): pcap writers, tests.
  using Tap = std::function<void(const uint8_t* frame, size_t length, uint64_t time_ns)>;

  // `first_lane`: the lane (plugins.h) of receive queue 0; queue q is first_lane + q.
  Nic(Kernel& kernel, uint32_t id, uint32_t first_lane, NicConfig config);
  ~Nic();  // stops the queue threads
  Nic(const Nic&) = delete;
  Nic& operator=(const Nic&) = delete;

  uint32_t id() const { return id_; }
  const NicConfig& config() const { return config_; }
  const MacAddress& mac() const { return config_.mac; }
  NicCounters counters() const;                  // all queues, and the transmit side
  NicCounters queue_counters(uint32_t q) const;  // one queue's receive side
  uint32_t queues() const { return uint32_t(queues_.size()); }
  uint32_t first_lane() const { return first_lane_; }
  const Rss& rss() const { return rss_; }
  Kernel& kernel() { return kernel_; }

  // The wire side: a frame arrives (and goes to the queue RSS picks). Several threads may call
  // it at once in thread mode; frames of different queues then proceed in parallel.
  void receive_from_wire(const uint8_t* frame, size_t length);
  // The kernel side: processes up to `budget` frames waiting in the receive rings (KernelBuffers
  // mode, no queue threads), queue after queue. Returns how many were processed.
  size_t service_rx(size_t budget = ~size_t(0));
  size_t service_rx_queue(uint32_t q, size_t budget = ~size_t(0));
  uint32_t rx_pending() const;  // frames accepted and not yet delivered or dropped, all queues
  uint32_t rx_pending(uint32_t q) const;
  // Returns once every frame accepted so far has been processed (queue threads; with
  // interrupts, on return of each receive_from_wire already). Polling mode: an error.
  void wait_rx_idle() const;

  // The kernel side of a send: queues the frame for the wire. false when refused (counted).
  // Callers are the kernel (Kernel::transmit checks the capability) and message handlers.
  bool transmit(const uint8_t* frame, size_t length);
  uint32_t tx_in_flight() const { return tx_in_flight_.load(std::memory_order_relaxed); }
  // Called by the link when a frame has left the transmit ring.
  void tx_done();
  // A message handler's reply: takes a transmit slot now and goes out when the receive path
  // has finished with the current frame, so the receive path never calls into a peer's
  // receive path while it runs (no recursion between handlers, no lock held across NICs).
  bool queue_reply(const uint8_t* frame, size_t length);

  void attach(Link* link) { link_ = link; }
  Link* link() const { return link_; }
  void add_tx_tap(Tap tap) { tx_taps_.push_back(std::move(tap)); }
  void add_rx_tap(Tap tap) { rx_taps_.push_back(std::move(tap)); }

 private:
  friend class Kernel;
  struct RxDescriptor {
    uint8_t* buffer;  // kernel memory (a half frame of physical memory)
    uint32_t length;
  };
  // Receive-side counters of one queue. The wire side's (frames accepted, runts, oversize, ring
  // full) are written under the queue's producer lock, the delivery side's under its delivery
  // lock: one writer each at a time.
  struct RxCounters {
    Counter frames, bytes, delivered, drops_ring_full, drops_runt, drops_oversize, drops_no_owner,
        drops_owner_ring, handled, copied_bytes;
  };
  // One receive queue, on cache lines of its own: queues on different threads share nothing.
  struct alignas(64) RxQueue {
    uint32_t index = 0;
    std::vector<RxDescriptor> ring;
    std::atomic<uint32_t> head{0};  // filled by the wire side (release)
    std::atomic<uint32_t> tail{0};  // emptied by the delivery side (release, after delivering)
    // Thread mode: held while this queue delivers, and by every kernel call that changes what
    // delivery reads (Kernel::exclude_delivery takes all queues' locks). Recursive: a handler's
    // reply may come back on this NIC through an immediate link on the same thread.
    std::recursive_mutex delivery;
    std::mutex producer;  // queue threads: serializes the wire side's producers
    RxCounters counters;
    // Queue threads: the delivery loop sleeps on `doorbell` when `sleeping`.
    std::atomic<uint32_t> doorbell{0};
    std::atomic<bool> sleeping{false}, stop{false};
    std::thread thread;
  };
  RxQueue& queue(uint32_t q) { return *queues_[q]; }
  void receive_on(RxQueue& q, const uint8_t* frame, size_t length);
  size_t service_locked(RxQueue& q, size_t budget);
  void queue_loop(RxQueue& q);
  void stop_queue_threads();
  bool admit_tx(const uint8_t* frame, size_t length);  // checks, counts, taps; takes a slot
  void flush_replies();
  void run_taps(const std::vector<Tap>& taps, const uint8_t* frame, size_t length);

  Kernel& kernel_;
  uint32_t id_;
  uint32_t first_lane_;
  NicConfig config_;
  Rss rss_;
  std::vector<std::unique_ptr<RxQueue>> queues_;
  // Transmit side: admission, replies and the transmit counters, under tx_mutex_ in thread mode.
  std::mutex tx_mutex_;
  Counter tx_frames_, tx_bytes_, tx_drops_ring_full_, tx_drops_bad_;
  std::vector<std::vector<uint8_t>> replies_, spare_replies_;
  std::atomic<uint32_t> replies_queued_{0};  // replies_.size(), read without the lock
  std::atomic<uint32_t> tx_in_flight_{0};    // changed under the lock, read by senders without it
  Link* link_ = nullptr;
  std::mutex taps_mutex_;  // taps (a pcap writer) see one frame at a time, rx and tx alike
  std::vector<Tap> tx_taps_, rx_taps_;
};

}  // namespace exojit::runtime
