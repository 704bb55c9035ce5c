// The NIC model: a receive descriptor ring, a transmit ring, and the two DMA styles of [ASH96]:
//
//   DmaMode::KernelBuffers  (Ethernet) the NIC DMAs each frame into a kernel buffer of its
//                           receive ring; the kernel demultiplexes it there and copies it once
//                           into the owner's buffer.
//   DmaMode::Direct         (AN2) the NIC demultiplexes as the frame arrives and DMAs it straight
//                           into a buffer the receiving environment supplied: no kernel copy.
//
// Every frame that cannot be placed is counted (ring full, runt, oversize, no owner, ...), never
// dropped silently. Frames reach the NIC from a Link, a pcap replay, an AF_PACKET socket or a
// test (receive_from_wire), and leave it to the Link and to transmit taps (pcap writers).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace exojit::runtime {

class Kernel;
class Link;

enum class DmaMode : uint8_t { KernelBuffers, Direct };

using MacAddress = std::array<uint8_t, 6>;

struct NicConfig {
  std::string name = "nic";
  MacAddress mac{0x02, 0, 0, 0, 0, 1};
  DmaMode dma = DmaMode::KernelBuffers;
  uint32_t rx_slots = 256;    // receive descriptors (kernel buffers, KernelBuffers mode)
  uint32_t tx_slots = 256;    // frames queued for the wire at once
  uint32_t max_frame = 2048;  // largest frame accepted (bytes)
  // true: the kernel services the receive ring as each frame arrives (an interrupt per frame);
  // false: frames wait in the ring until service_rx() is called (polling, batching).
  bool interrupts = true;
};

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

  Nic(Kernel& kernel, uint32_t id, NicConfig config);
  Nic(const Nic&) = delete;
  Nic& operator=(const Nic&) = delete;

  uint32_t id() const { return id_; }
  const NicConfig& config() const { return config_; }
  const MacAddress& mac() const { return config_.mac; }
  const NicCounters& counters() const { return counters_; }
  Kernel& kernel() { return kernel_; }

  // The wire side: a frame arrives.
  void receive_from_wire(const uint8_t* frame, size_t length);
  // The kernel side: processes up to `budget` frames waiting in the receive ring (KernelBuffers
  // mode). Returns how many were processed.
  size_t service_rx(size_t budget = ~size_t(0));
  uint32_t rx_pending() const { return rx_head_ - rx_tail_; }

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
  void count_delivery_drop() { ++counters_.rx_drops_owner_ring; }
  void receive_locked(const uint8_t* frame, size_t length);
  size_t service_locked(size_t budget);
  bool admit_tx(const uint8_t* frame, size_t length);  // checks, counts, taps; takes a slot
  void flush_replies();

  std::vector<std::vector<uint8_t>> replies_, spare_replies_;

  Kernel& kernel_;
  uint32_t id_;
  NicConfig config_;
  NicCounters counters_;
  std::vector<RxDescriptor> rx_ring_;
  uint32_t rx_head_ = 0, rx_tail_ = 0;     // filled by the wire / emptied by the kernel
  std::atomic<uint32_t> tx_in_flight_{0};  // changed under the lock, read by senders without it
  Link* link_ = nullptr;
  std::vector<Tap> tx_taps_, rx_taps_;
};

}  // namespace exojit::runtime
