// SPDX-License-Identifier: MIT
#include "exojit/runtime/nic.h"

#include <cstring>
#include <mutex>

#include "exojit/error.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/link.h"

namespace exojit::runtime {

namespace {
constexpr size_t kEthernetHeader = 14;
constexpr uint32_t kMaxQueues = 64;

// Takes `m` in thread mode only: the scheduler model has one thread.
template <typename Mutex>
std::unique_lock<Mutex> lock_if(bool threaded, Mutex& m) {
  std::unique_lock<Mutex> l(m, std::defer_lock);
  if (threaded) l.lock();
  return l;
}
}  // namespace

Nic::Nic(Kernel& kernel, uint32_t id, uint32_t first_lane, NicConfig config)
    : kernel_(kernel),
      id_(id),
      first_lane_(first_lane),
      config_(std::move(config)),
      rss_(config_.rss, config_.queues ? config_.queues : 1) {
  if (config_.max_frame < kEthernetHeader || config_.max_frame > 65536)
    fail("NIC {}: max_frame {} (14..65536)", config_.name, config_.max_frame);
  if (config_.rx_slots == 0 || config_.rx_slots > 65536 || config_.tx_slots == 0)
    fail("NIC {}: {} receive / {} transmit slots", config_.name, config_.rx_slots,
         config_.tx_slots);
  if (config_.queues == 0 || config_.queues > kMaxQueues)
    fail("NIC {}: {} receive queues (1..{})", config_.name, config_.queues, kMaxQueues);
  if (config_.queue_threads && !kernel_.threaded())
    fail("NIC {}: queue threads need a kernel in thread mode", config_.name);
  if (config_.queue_threads && config_.dma != DmaMode::KernelBuffers)
    fail("NIC {}: queue threads need kernel receive buffers (Direct DMA delivers on arrival)",
         config_.name);
  for (uint32_t q = 0; q < config_.queues; ++q) {
    queues_.push_back(std::make_unique<RxQueue>());
    queues_.back()->index = q;
  }
  if (config_.dma == DmaMode::KernelBuffers) {
    // Receive buffers are kernel-owned physical frames, as many buffers per frame as fit.
    uint32_t per_frame = std::max<uint32_t>(1, uint32_t(kPageSize / config_.max_frame));
    uint32_t frame_bytes = per_frame == 1 ? uint32_t(kPageSize) : config_.max_frame;
    uint32_t frames_per_buffer = uint32_t((config_.max_frame + kPageSize - 1) / kPageSize);
    Capability kernel_guard = Capability::make({0xff, 0x4e, uint8_t(id)}, kPermAll);
    uint64_t need = uint64_t(config_.queues) * ((config_.rx_slots + per_frame - 1) / per_frame) *
                    frames_per_buffer;
    if (need > kernel_.memory().free_frames())
      fail("NIC {}: {} queues of {} receive buffers need {} frames, {} free", config_.name,
           config_.queues, config_.rx_slots, need, kernel_.memory().free_frames());
    for (auto& rq : queues_) {
      std::vector<RxDescriptor>& ring = rq->ring;
      ring.reserve(config_.rx_slots);
      while (ring.size() < config_.rx_slots) {
        if (frames_per_buffer > 1) {
          // Large frames need contiguous frames: take them one buffer at a time.
          uint32_t first = kernel_.memory().alloc(kernel_guard);
          for (uint32_t i = 1; i < frames_per_buffer; ++i)
            if (kernel_.memory().alloc(kernel_guard) != first + i)
              fail("NIC {}: no contiguous physical memory for {}-byte buffers", config_.name,
                   config_.max_frame);
          ring.push_back(RxDescriptor{kernel_.memory().frame_data(first), 0});
          continue;
        }
        uint8_t* base = kernel_.memory().frame_data(kernel_.memory().alloc(kernel_guard));
        for (uint32_t i = 0; i < per_frame && ring.size() < config_.rx_slots; ++i)
          ring.push_back(RxDescriptor{base + i * frame_bytes, 0});
      }
    }
  }
  if (config_.queue_threads)
    for (auto& rq : queues_) rq->thread = std::thread([this, q = rq.get()] { queue_loop(*q); });
}

Nic::~Nic() {
  stop_queue_threads();
}

void Nic::stop_queue_threads() {
  for (auto& rq : queues_) {
    if (!rq->thread.joinable()) continue;
    rq->stop.store(true, std::memory_order_seq_cst);
    rq->doorbell.fetch_add(1, std::memory_order_seq_cst);
    rq->doorbell.notify_one();
    rq->thread.join();
  }
}

NicCounters Nic::queue_counters(uint32_t q) const {
  if (q >= queues_.size()) fail("NIC {}: no receive queue {}", config_.name, q);
  const RxCounters& c = queues_[q]->counters;
  NicCounters n;
  n.rx_frames = c.frames;
  n.rx_bytes = c.bytes;
  n.rx_delivered = c.delivered;
  n.rx_drops_ring_full = c.drops_ring_full;
  n.rx_drops_runt = c.drops_runt;
  n.rx_drops_oversize = c.drops_oversize;
  n.rx_drops_no_owner = c.drops_no_owner;
  n.rx_drops_owner_ring = c.drops_owner_ring;
  n.rx_handled = c.handled;
  n.rx_copied_bytes = c.copied_bytes;
  return n;
}

NicCounters Nic::counters() const {
  NicCounters n;
  for (uint32_t q = 0; q < queues_.size(); ++q) {
    NicCounters c = queue_counters(q);
    n.rx_frames += c.rx_frames;
    n.rx_bytes += c.rx_bytes;
    n.rx_delivered += c.rx_delivered;
    n.rx_drops_ring_full += c.rx_drops_ring_full;
    n.rx_drops_runt += c.rx_drops_runt;
    n.rx_drops_oversize += c.rx_drops_oversize;
    n.rx_drops_no_owner += c.rx_drops_no_owner;
    n.rx_drops_owner_ring += c.rx_drops_owner_ring;
    n.rx_handled += c.rx_handled;
    n.rx_copied_bytes += c.rx_copied_bytes;
  }
  n.tx_frames = tx_frames_;
  n.tx_bytes = tx_bytes_;
  n.tx_drops_ring_full = tx_drops_ring_full_;
  n.tx_drops_bad = tx_drops_bad_;
  return n;
}

uint32_t Nic::rx_pending(uint32_t q) const {
  if (q >= queues_.size()) fail("NIC {}: no receive queue {}", config_.name, q);
  const RxQueue& rq = *queues_[q];
  return rq.head.load(std::memory_order_acquire) - rq.tail.load(std::memory_order_acquire);
}

uint32_t Nic::rx_pending() const {
  uint32_t n = 0;
  for (uint32_t q = 0; q < queues_.size(); ++q) n += rx_pending(q);
  return n;
}

void Nic::wait_rx_idle() const {
  if (!config_.queue_threads && !config_.interrupts)
    fail("NIC {}: polling mode: frames wait for service_rx, not for a queue thread", config_.name);
  while (rx_pending() != 0) std::this_thread::yield();
}

void Nic::run_taps(const std::vector<Tap>& taps, const uint8_t* frame, size_t length) {
  if (taps.empty()) return;
  auto lock = lock_if(kernel_.threaded(), taps_mutex_);
  uint64_t now = kernel_.clock().now();
  for (const Tap& t : taps) t(frame, length, now);
}

void Nic::receive_from_wire(const uint8_t* frame, size_t length) {
  // RSS reads only the frame (and the configuration, fixed at construction).
  RxQueue& q = queue(length >= kEthernetHeader ? rss_.queue(frame, length) : 0);
  receive_on(q, frame, length);
  flush_replies();
}

void Nic::receive_on(RxQueue& q, const uint8_t* frame, size_t length) {
  // The wire side of a queue: its delivery lock (delivery happens here or in service_rx), or
  // its producer lock when a queue thread delivers.
  bool threaded = kernel_.threaded();
  std::unique_lock<std::recursive_mutex> delivering(q.delivery, std::defer_lock);
  std::unique_lock<std::mutex> producing(q.producer, std::defer_lock);
  if (threaded) config_.queue_threads ? producing.lock() : delivering.lock();
  run_taps(rx_taps_, frame, length);
  if (length < kEthernetHeader) {
    ++q.counters.drops_runt;
    return;
  }
  if (length > config_.max_frame) {
    ++q.counters.drops_oversize;
    return;
  }
  if (config_.dma == DmaMode::Direct) {
    ++q.counters.frames;
    q.counters.bytes += length;
    kernel_.deliver(*this, q.index, frame, length);  // straight into the owner's buffer
    return;
  }
  uint32_t head = q.head.load(std::memory_order_relaxed);
  if (head - q.tail.load(std::memory_order_acquire) >= q.ring.size()) {
    ++q.counters.drops_ring_full;
    return;
  }
  ++q.counters.frames;
  q.counters.bytes += length;
  RxDescriptor& d = q.ring[head % q.ring.size()];
  std::memcpy(d.buffer, frame, length);  // the NIC's DMA into a kernel buffer
  d.length = uint32_t(length);
  if (config_.queue_threads) {
    // Publish, then ring the doorbell if the queue's thread sleeps (seq_cst on both sides: the
    // thread either sees the new head or we see it sleeping).
    q.head.store(head + 1, std::memory_order_seq_cst);
    if (q.sleeping.load(std::memory_order_seq_cst)) {
      q.doorbell.fetch_add(1, std::memory_order_seq_cst);
      q.doorbell.notify_one();
    }
    return;
  }
  q.head.store(head + 1, std::memory_order_release);
  if (config_.interrupts) service_locked(q, ~size_t(0));
}

void Nic::queue_loop(RxQueue& q) {
  constexpr size_t kBudget = 64;  // frames per pass, then the replies go out
  unsigned idle = 0;
  while (!q.stop.load(std::memory_order_acquire)) {
    if (q.head.load(std::memory_order_acquire) != q.tail.load(std::memory_order_relaxed)) {
      service_locked(q, kBudget);
      flush_replies();
      idle = 0;
      continue;
    }
    if (++idle < 64) {  // a burst usually follows: poll a little before sleeping
      std::this_thread::yield();
      continue;
    }
    uint32_t bell = q.doorbell.load(std::memory_order_seq_cst);
    q.sleeping.store(true, std::memory_order_seq_cst);
    if (q.head.load(std::memory_order_seq_cst) == q.tail.load(std::memory_order_relaxed) &&
        !q.stop.load(std::memory_order_seq_cst))
      q.doorbell.wait(bell, std::memory_order_seq_cst);
    q.sleeping.store(false, std::memory_order_relaxed);
    idle = 0;
  }
}

size_t Nic::service_rx(size_t budget) {
  size_t n = 0;
  for (auto& q : queues_) n += service_rx_queue(q->index, budget - n);
  return n;
}

size_t Nic::service_rx_queue(uint32_t q, size_t budget) {
  if (q >= queues_.size()) fail("NIC {}: no receive queue {}", config_.name, q);
  if (config_.queue_threads) fail("NIC {}: its queue threads service the rings", config_.name);
  size_t n = service_locked(*queues_[q], budget);
  flush_replies();
  return n;
}

size_t Nic::service_locked(RxQueue& q, size_t budget) {
  auto lock = lock_if(kernel_.threaded(), q.delivery);
  size_t n = 0;
  uint32_t tail = q.tail.load(std::memory_order_relaxed);
  while (n < budget && tail != q.head.load(std::memory_order_acquire)) {
    RxDescriptor& d = q.ring[tail % q.ring.size()];
    kernel_.deliver(*this, q.index, d.buffer, d.length);
    q.tail.store(++tail, std::memory_order_release);  // the buffer is the wire's again
    ++n;
  }
  return n;
}

bool Nic::admit_tx(const uint8_t* frame, size_t length) {
  if (!frame || length < kEthernetHeader || length > config_.max_frame) {
    ++tx_drops_bad_;
    return false;
  }
  if (tx_in_flight_ >= config_.tx_slots) {
    ++tx_drops_ring_full_;
    return false;
  }
  ++tx_frames_;
  tx_bytes_ += length;
  run_taps(tx_taps_, frame, length);
  ++tx_in_flight_;
  return true;
}

void Nic::tx_done() {
  --tx_in_flight_;
}

bool Nic::transmit(const uint8_t* frame, size_t length) {
  {
    auto lock = lock_if(kernel_.threaded(), tx_mutex_);
    if (!admit_tx(frame, length)) return false;
  }
  // Outside the lock: an immediate link runs the peer's receive path on this thread.
  if (link_)
    link_->send(*this, frame, length);  // the link calls tx_done() when the frame has left
  else
    tx_done();  // no wire: the frame leaves at once (the taps saw it)
  return true;
}

bool Nic::queue_reply(const uint8_t* frame, size_t length) {
  auto lock = lock_if(kernel_.threaded(), tx_mutex_);
  if (!admit_tx(frame, length)) return false;
  std::vector<uint8_t> buf;
  if (!spare_replies_.empty()) {
    buf = std::move(spare_replies_.back());
    spare_replies_.pop_back();
  }
  buf.assign(frame, frame + length);
  replies_.push_back(std::move(buf));
  replies_queued_.fetch_add(1, std::memory_order_release);
  return true;
}

void Nic::flush_replies() {
  // Checked without the lock first: receive paths of other queues must not share the transmit
  // lock's cache line per frame. A reply queued after this load is flushed by its own thread.
  while (replies_queued_.load(std::memory_order_acquire) != 0) {
    std::vector<uint8_t> f;
    {
      auto lock = lock_if(kernel_.threaded(), tx_mutex_);
      if (replies_.empty()) return;
      f = std::move(replies_.front());
      replies_.erase(replies_.begin());
      replies_queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (link_)
      link_->send(*this, f.data(), f.size());
    else
      tx_done();
    auto lock = lock_if(kernel_.threaded(), tx_mutex_);
    spare_replies_.push_back(std::move(f));
  }
}

}  // namespace exojit::runtime
