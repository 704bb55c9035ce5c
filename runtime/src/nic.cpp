#include "exojit/runtime/nic.h"

#include <cstring>
#include <mutex>

#include "exojit/error.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/link.h"

namespace exojit::runtime {

namespace {
constexpr size_t kEthernetHeader = 14;

// Takes the kernel's delivery lock in thread mode only: the scheduler model has one thread.
struct DeliveryLock {
  explicit DeliveryLock(Kernel& k) : lock_(k.delivery_lock(), std::defer_lock) {
    if (k.threaded()) lock_.lock();
  }
  std::unique_lock<std::recursive_mutex> lock_;
};
}  // namespace

Nic::Nic(Kernel& kernel, uint32_t id, NicConfig config)
    : kernel_(kernel), id_(id), config_(std::move(config)) {
  if (config_.max_frame < kEthernetHeader || config_.max_frame > 65536)
    fail("NIC {}: max_frame {} (14..65536)", config_.name, config_.max_frame);
  if (config_.rx_slots == 0 || config_.rx_slots > 65536 || config_.tx_slots == 0)
    fail("NIC {}: {} receive / {} transmit slots", config_.name, config_.rx_slots,
         config_.tx_slots);
  if (config_.dma == DmaMode::KernelBuffers) {
    // Receive buffers are kernel-owned physical frames, as many buffers per frame as fit.
    uint32_t per_frame = std::max<uint32_t>(1, uint32_t(kPageSize / config_.max_frame));
    uint32_t frame_bytes = per_frame == 1 ? uint32_t(kPageSize) : config_.max_frame;
    uint32_t frames_per_buffer = uint32_t((config_.max_frame + kPageSize - 1) / kPageSize);
    Capability kernel_guard = Capability::make({0xff, 0x4e, uint8_t(id)}, kPermAll);
    rx_ring_.reserve(config_.rx_slots);
    while (rx_ring_.size() < config_.rx_slots) {
      if (frames_per_buffer > 1) {
        // Large frames need contiguous frames: take them one buffer at a time.
        uint32_t first = kernel_.memory().alloc(kernel_guard);
        for (uint32_t i = 1; i < frames_per_buffer; ++i)
          if (kernel_.memory().alloc(kernel_guard) != first + i)
            fail("NIC {}: no contiguous physical memory for {}-byte buffers", config_.name,
                 config_.max_frame);
        rx_ring_.push_back(RxDescriptor{kernel_.memory().frame_data(first), 0});
        continue;
      }
      uint8_t* base = kernel_.memory().frame_data(kernel_.memory().alloc(kernel_guard));
      for (uint32_t i = 0; i < per_frame && rx_ring_.size() < config_.rx_slots; ++i)
        rx_ring_.push_back(RxDescriptor{base + i * frame_bytes, 0});
    }
  }
}

void Nic::receive_from_wire(const uint8_t* frame, size_t length) {
  receive_locked(frame, length);
  flush_replies();
}

void Nic::receive_locked(const uint8_t* frame, size_t length) {
  DeliveryLock lock(kernel_);
  uint64_t now = kernel_.clock().now();
  for (const Tap& t : rx_taps_) t(frame, length, now);
  if (length < kEthernetHeader) {
    ++counters_.rx_drops_runt;
    return;
  }
  if (length > config_.max_frame) {
    ++counters_.rx_drops_oversize;
    return;
  }
  if (config_.dma == DmaMode::Direct) {
    ++counters_.rx_frames;
    counters_.rx_bytes += length;
    kernel_.deliver(*this, frame, length);  // straight into the owner's buffer
    return;
  }
  if (rx_head_ - rx_tail_ >= rx_ring_.size()) {
    ++counters_.rx_drops_ring_full;
    return;
  }
  ++counters_.rx_frames;
  counters_.rx_bytes += length;
  RxDescriptor& d = rx_ring_[rx_head_ % rx_ring_.size()];
  std::memcpy(d.buffer, frame, length);  // the NIC's DMA into a kernel buffer
  d.length = uint32_t(length);
  ++rx_head_;
  if (config_.interrupts) service_locked(~size_t(0));
}

size_t Nic::service_rx(size_t budget) {
  size_t n = service_locked(budget);
  flush_replies();
  return n;
}

size_t Nic::service_locked(size_t budget) {
  DeliveryLock lock(kernel_);
  size_t n = 0;
  while (n < budget && rx_tail_ != rx_head_) {
    RxDescriptor& d = rx_ring_[rx_tail_ % rx_ring_.size()];
    kernel_.deliver(*this, d.buffer, d.length);
    ++rx_tail_;
    ++n;
  }
  return n;
}

bool Nic::admit_tx(const uint8_t* frame, size_t length) {
  if (!frame || length < kEthernetHeader || length > config_.max_frame) {
    ++counters_.tx_drops_bad;
    return false;
  }
  if (tx_in_flight_ >= config_.tx_slots) {
    ++counters_.tx_drops_ring_full;
    return false;
  }
  ++counters_.tx_frames;
  counters_.tx_bytes += length;
  uint64_t now = kernel_.clock().now();
  for (const Tap& t : tx_taps_) t(frame, length, now);
  ++tx_in_flight_;
  return true;
}

void Nic::tx_done() {
  DeliveryLock lock(kernel_);
  --tx_in_flight_;
}

bool Nic::transmit(const uint8_t* frame, size_t length) {
  {
    DeliveryLock lock(kernel_);
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
  DeliveryLock lock(kernel_);
  if (!admit_tx(frame, length)) return false;
  std::vector<uint8_t> buf;
  if (!spare_replies_.empty()) {
    buf = std::move(spare_replies_.back());
    spare_replies_.pop_back();
  }
  buf.assign(frame, frame + length);
  replies_.push_back(std::move(buf));
  return true;
}

void Nic::flush_replies() {
  for (;;) {
    std::vector<uint8_t> f;
    {
      DeliveryLock lock(kernel_);
      if (replies_.empty()) return;
      f = std::move(replies_.front());
      replies_.erase(replies_.begin());
    }
    if (link_)
      link_->send(*this, f.data(), f.size());
    else
      tx_done();
    DeliveryLock lock(kernel_);
    spare_replies_.push_back(std::move(f));
  }
}

}  // namespace exojit::runtime
