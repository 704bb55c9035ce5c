// SPDX-License-Identifier: MIT
#include "exojit/runtime/kernel.h"

#include <algorithm>
#include <cstring>

#include "exojit/error.h"
#include "exojit/grace_period.h"

namespace exojit::runtime {

namespace {
std::string perm_names(uint8_t need) {
  std::string s;
  if (need & kPermWrite) s += "write ";
  if (need & kPermAlloc) s += "alloc ";
  if (need & kPermGrant) s += "grant ";
  if (s.empty()) return "no permission";
  s.pop_back();
  return s;
}
}  // namespace

Kernel::Kernel(KernelConfig config)
    : config_(config), memory_(config.frames), clock_(config.clock ? config.clock : &own_clock_) {}

Kernel::~Kernel() {
  // Queue threads deliver into filter slots and rings: stopped before those go.
  for (auto& nic : nics_) nic->stop_queue_threads();
}

Environment& Kernel::create_environment(std::string name, Capability initial) {
  auto env = std::make_unique<Environment>(*this, uint32_t(envs_.size() + 1), std::move(name),
                                           config_.tlb_entries);
  if (initial.valid()) env->caps_.push_back(initial);
  envs_.push_back(std::move(env));
  return *envs_.back();
}

Nic& Kernel::add_nic(NicConfig config, Capability tx_guard) {
  if (!tx_guard.valid()) fail("NIC {}: transmit guard is not a valid capability", config.name);
  if (config.queues > kMaxLanes - lanes_)
    fail("NIC {}: {} more receive queues, {} of {} lanes left", config.name, config.queues,
         kMaxLanes - lanes_, kMaxLanes);
  nics_.push_back(std::make_unique<Nic>(*this, uint32_t(nics_.size()), lanes_, std::move(config)));
  lanes_ += nics_.back()->queues();
  nic_guards_.push_back(tx_guard);
  return *nics_.back();
}

Link& Kernel::connect(Nic& a, Nic& b, LinkConfig config) {
  if (&a == &b) fail("a link joins two different NICs");
  if (a.link() || b.link())
    fail("NIC {} already has a link", a.link() ? a.config().name : b.config().name);
  if (threaded() && !config.immediate)
    fail("thread mode needs immediate links (real threads do not share the virtual clock)");
  links_.push_back(std::make_unique<Link>(*clock_, a, b, config));
  a.attach(links_.back().get());
  b.attach(links_.back().get());
  return *links_.back();
}

void Kernel::check(Environment& env, size_t cap, const Capability& guard, uint8_t need,
                   const char* what) const {
  if (cap >= env.caps_.size())
    fail("environment {}: no capability #{} (it holds {}) for {}", env.name(), cap,
         env.caps_.size(), what);
  const Capability& c = env.caps_[cap];
  if (!c.dominates(guard, need))
    fail("environment {}: capability #{} {} does not dominate {} guarded by {} with {}", env.name(),
         cap, c.str(), what, guard.str(), perm_names(need));
}

size_t Kernel::grant(Environment& from, size_t cap, Environment& to, Capability refined) {
  // Capability lists are read by kernel calls of any thread: edited under both locks.
  auto delivery = exclude_delivery();
  std::lock_guard<std::mutex> memory(memory_mutex_);
  if (cap >= from.caps_.size())
    fail("environment {}: no capability #{} to grant from", from.name(), cap);
  const Capability& c = from.caps_[cap];
  if (!c.may_refine_to(refined))
    fail(
        "environment {}: capability #{} {} cannot be refined to {} (needs grant, a dominated "
        "name and no added permission)",
        from.name(), cap, c.str(), refined.str());
  to.caps_.push_back(refined);
  return to.caps_.size() - 1;
}

uint32_t Kernel::alloc_frame(Environment& env, size_t cap, Capability guard) {
  std::lock_guard<std::mutex> lock(memory_mutex_);
  check(env, cap, guard, kPermAlloc, "a new frame");
  return memory_.alloc(guard);
}

void Kernel::free_frame(Environment& env, size_t cap, uint32_t frame) {
  std::lock_guard<std::mutex> lock(memory_mutex_);
  if (!memory_.allocated(frame)) fail("frame {} is not allocated", frame);
  check(env, cap, memory_.guard(frame), kPermAlloc, "a frame");
  memory_.free(frame);  // refuses a frame still mapped, or held for running handlers
}

// After a translation was removed or reduced (the page table's generation moved, so new handler
// runs translate again): waits for the runs in progress (a grace period: each run is a read
// section), then lets the held frames go. The memory lock is not held meanwhile: a run in
// progress may need it (a software-TLB rebuild, a HandlerContext copy).
void Kernel::retire(std::unique_lock<std::mutex>& lock, const std::vector<uint32_t>& held) {
  lock.unlock();
  grace::synchronize();
  lock.lock();
  for (uint32_t f : held) memory_.drop_mapping(f);
}

void Kernel::map_page(Environment& env, size_t cap, uint64_t va, uint32_t frame, uint8_t bits) {
  std::unique_lock<std::mutex> lock(memory_mutex_);
  if (!memory_.allocated(frame)) fail("frame {} is not allocated", frame);
  check(env, cap, memory_.guard(frame), (bits & kPteWrite) ? kPermWrite : 0, "a frame");
  const Pte* old = env.mmu_.lookup(va);
  if (!old) return env.mmu_.map(va, frame, bits);
  std::vector<uint32_t> held{old->frame};
  memory_.add_mapping(held[0]);  // the page may be in use by a handler: hold its old frame
  try {
    env.mmu_.map(va, frame, bits);
  } catch (...) {
    memory_.drop_mapping(held[0]);
    throw;
  }
  retire(lock, held);
}

void Kernel::unmap_page(Environment& env, size_t cap, uint64_t va) {
  std::unique_lock<std::mutex> lock(memory_mutex_);
  const Pte* p = env.mmu_.lookup(va);
  if (!p) fail("environment {}: page 0x{:x} is not mapped", env.name(), va);
  check(env, cap, memory_.guard(p->frame), 0, "a mapped frame");
  std::vector<uint32_t> held{p->frame};
  memory_.add_mapping(held[0]);
  try {
    env.mmu_.unmap(va);
  } catch (...) {
    memory_.drop_mapping(held[0]);
    throw;
  }
  retire(lock, held);
}

void Kernel::protect_page(Environment& env, size_t cap, uint64_t va, uint8_t bits) {
  std::unique_lock<std::mutex> lock(memory_mutex_);
  const Pte* p = env.mmu_.lookup(va);
  if (!p) fail("environment {}: page 0x{:x} is not mapped", env.name(), va);
  check(env, cap, memory_.guard(p->frame), (bits & kPteWrite) ? kPermWrite : 0, "a mapped frame");
  std::vector<uint32_t> held{p->frame};
  memory_.add_mapping(held[0]);
  try {
    env.mmu_.protect(va, bits);
  } catch (...) {
    memory_.drop_mapping(held[0]);
    throw;
  }
  retire(lock, held);
}

void Kernel::revoke(Environment& env, size_t cap) {
  auto delivery = exclude_delivery();
  std::unique_lock<std::mutex> lock(memory_mutex_);
  if (cap >= env.caps_.size() || !env.caps_[cap].valid())
    fail("environment {}: no capability #{} to revoke", env.name(), cap);
  env.caps_[cap] = Capability{};
  // Handlers of slots the environment can no longer write: removed (a run in progress ends
  // before this returns).
  for (FilterSlot& s : filters_)
    if (s.owner == &env && s.handler && env.find_cap(s.guard, kPermWrite) < 0) {
      s.handler = nullptr;
      s.handler_may_transmit = false;
    }
  for (FilterSlot& s : filters_)
    if (s.owner == &env && s.reply_nic &&
        env.find_cap(nic_guards_.at(s.reply_nic->id()), kPermWrite) < 0)
      s.handler_may_transmit = false;  // replies need the NIC's transmit capability
  // Pages: unmapped when no capability left dominates the frame's guard, read-only when none
  // does with write. Pinned pages belong to kernel objects and stay.
  std::vector<uint32_t> held;
  std::vector<std::pair<uint64_t, uint8_t>> changes;  // va, new bits (0: unmap)
  env.mmu_.each_page([&](uint64_t va, const Pte& p) {
    if (p.pins) return;
    const Capability& guard = memory_.guard(p.frame);
    if (env.find_cap(guard, 0) < 0)
      changes.emplace_back(va, 0);
    else if ((p.bits & kPteWrite) && env.find_cap(guard, kPermWrite) < 0)
      changes.emplace_back(va, uint8_t(p.bits & ~kPteWrite));
  });
  for (auto [va, bits] : changes) {
    uint32_t frame = env.mmu_.lookup(va)->frame;
    held.push_back(frame);
    memory_.add_mapping(frame);
    if (bits)
      env.mmu_.protect(va, bits);
    else
      env.mmu_.unmap(va);
  }
  if (delivery.owns_lock()) delivery.unlock();
  retire(lock, held);
}

void Kernel::alloc_pages(Environment& env, size_t cap, uint64_t va, size_t pages, uint8_t bits) {
  std::lock_guard<std::mutex> lock(memory_mutex_);
  if (cap >= env.caps_.size()) fail("environment {}: no capability #{}", env.name(), cap);
  if (pages > memory_.free_frames())
    fail("environment {}: {} pages asked, {} frames free", env.name(), pages,
         memory_.free_frames());
  for (size_t i = 0; i < pages; ++i)
    if (env.mmu_.lookup(va + i * kPageSize))
      fail("environment {}: page 0x{:x} is already mapped", env.name(), va + i * kPageSize);
  Capability guard = env.caps_[cap];
  check(env, cap, guard, kPermAlloc | ((bits & kPteWrite) ? kPermWrite : 0), "new pages");
  for (size_t i = 0; i < pages; ++i) env.mmu_.map(va + i * kPageSize, memory_.alloc(guard), bits);
}

uint32_t Kernel::create_ring(Environment& env, size_t cap, uint64_t ring_va, uint32_t slots,
                             uint64_t area_va, uint64_t area_len) {
  auto lock = exclude_delivery();
  if (cap >= env.caps_.size()) fail("environment {}: no capability #{}", env.name(), cap);
  Capability guard = env.caps_[cap];
  check(env, cap, guard, kPermAlloc, "a new packet ring");
  if (slots == 0 || slots > kMaxRingSlots || (slots & (slots - 1)))
    fail("ring of {} slots: a power of two from 1 to {}", slots, kMaxRingSlots);
  if (ring_va & (kPageSize - 1)) fail("ring page 0x{:x} is not page aligned", ring_va);
  if (area_va & (kPageSize - 1)) fail("buffer area 0x{:x} is not page aligned", area_va);
  if (area_len == 0 || area_len > (uint64_t(1) << 30))
    fail("buffer area of {} bytes (1 byte .. 1 GiB)", area_len);
  std::lock_guard<std::mutex> memory(memory_mutex_);
  AddressSpace& as = env.mmu_;
  if (as.check_range(ring_va, kPageSize, kRead | kWrite) != kVaLimit)
    fail("ring page 0x{:x} is not mapped read-write", ring_va);
  if (uint64_t bad = as.check_range(area_va, area_len, kRead | kWrite); bad != kVaLimit)
    fail("buffer area: 0x{:x} is not mapped read-write", bad);
  auto r = std::make_unique<PacketRing>();
  r->id = uint32_t(rings_.size() + 1);
  r->owner = &env;
  r->guard = guard;
  r->ring_va = ring_va;
  r->header = reinterpret_cast<RingHeader*>(as.walk(ring_va, kWrite));
  r->area_va = area_va;
  r->area_len = area_len;
  for (uint64_t p = area_va; p < area_va + area_len; p += kPageSize) {
    r->area_pages.push_back(as.walk(p, kWrite));
    as.pin(p);
  }
  as.pin(ring_va);
  std::memset(r->header, 0, kPageSize);
  r->header->slots = slots;
  rings_.push_back(std::move(r));
  return rings_.back()->id;
}

PacketRing& Kernel::ring(uint32_t id) {
  if (id == 0 || id > rings_.size() || !rings_[id - 1]) fail("no packet ring {}", id);
  return *rings_[id - 1];
}

void Kernel::destroy_ring(Environment& env, size_t cap, uint32_t id) {
  auto lock = exclude_delivery();
  PacketRing& r = ring(id);
  if (r.owner != &env) fail("environment {}: ring {} is not its own", env.name(), id);
  check(env, cap, r.guard, kPermAlloc, "a packet ring");
  std::lock_guard<std::mutex> memory(memory_mutex_);
  for (FilterSlot& s : filters_)
    if (s.ring == &r) fail("ring {} is still bound to a filter", id);
  env.mmu_.unpin(r.ring_va);
  for (uint64_t p = r.area_va; p < r.area_va + r.area_len; p += kPageSize) env.mmu_.unpin(p);
  rings_[id - 1].reset();
}

void Kernel::init_ring_buffers(Environment& env, uint32_t id, uint32_t buffer_size) {
  PacketRing& r = ring(id);
  if (r.owner != &env) fail("environment {}: ring {} is not its own", env.name(), id);
  uint32_t slots = r.header->slots;
  if (buffer_size == 0 || uint64_t(buffer_size) * slots > r.area_len)
    fail("{} buffers of {} bytes do not fit the {}-byte area", slots, buffer_size, r.area_len);
  RingSlot* s = ring_slots(r.header);
  for (uint32_t i = 0; i < slots; ++i)
    s[i] = RingSlot{r.area_va + uint64_t(i) * buffer_size, buffer_size, 0};
}

void Kernel::claim_filter(Environment& env, size_t cap, uint32_t filter) {
  auto lock = exclude_delivery();
  if (filter == 0 || filter >= kMaxFilterId) fail("filter id {} (1..{})", filter, kMaxFilterId - 1);
  if (cap >= env.caps_.size()) fail("environment {}: no capability #{}", env.name(), cap);
  check(env, cap, env.caps_[cap], kPermAlloc, "a filter slot");
  if (filter < filters_.size() && filters_[filter].owner)
    fail("filter slot {} is already claimed by environment {}", filter,
         filters_[filter].owner->name());
  if (filter >= filters_.size()) filters_.resize(filter + 1);
  filters_[filter] = FilterSlot{};
  filters_[filter].owner = &env;
  filters_[filter].guard = env.caps_[cap];
}

FilterSlot& Kernel::owned_slot(Environment& env, size_t cap, uint32_t filter, const char* what) {
  if (filter >= filters_.size() || !filters_[filter].owner)
    fail("filter slot {} is not claimed", filter);
  check(env, cap, filters_[filter].guard, kPermWrite, what);
  return filters_[filter];
}

void Kernel::release_filter(Environment& env, size_t cap, uint32_t filter) {
  auto lock = exclude_delivery();
  FilterSlot& s = owned_slot(env, cap, filter, "a filter slot");
  s = FilterSlot{};
  if (lock.owns_lock()) lock.unlock();
  grace::synchronize();  // a handler that was installed there may be destroyed now
}

void Kernel::bind_filter(Environment& env, size_t cap, uint32_t filter, uint32_t ring_id) {
  auto lock = exclude_delivery();
  PacketRing& r = ring(ring_id);
  check(env, cap, r.guard, kPermWrite, "a packet ring");
  owned_slot(env, cap, filter, "a filter slot").ring = &r;
}

void Kernel::install_handler(Environment& env, size_t cap, uint32_t filter, MessageHandler* handler,
                             const Nic* reply_nic) {
  auto lock = exclude_delivery();
  if (!handler) fail("install_handler: no handler");
  FilterSlot& s = owned_slot(env, cap, filter, "a handler slot");
  // The handler runs with the installer's authority alone: it must be made for the installing
  // environment, and skipping the memory checks is the machine owner's decision (root).
  MessageHandler::Binding b = handler->binding();
  if (b.env && b.env != &env)
    fail("environment {}: the handler was made for environment {}", env.name(), b.env->name());
  if (b.needs_root && !(env.caps_[cap].length() == 0 && env.caps_[cap].has(kPermAll)))
    fail(
        "environment {}: the handler needs the root capability (unchecked, unhardened or past "
        "the limits an environment may choose)",
        env.name());
  bool may_transmit = false;
  if (reply_nic) {
    const Capability& g = nic_guards_.at(reply_nic->id());
    if (env.find_cap(g, kPermWrite) < 0)
      fail("environment {}: no capability for the transmit side of NIC {} ({})", env.name(),
           reply_nic->config().name, g.str());
    may_transmit = true;
  }
  s.handler = handler;
  s.handler_may_transmit = may_transmit;
  s.reply_nic = reply_nic;
}

void Kernel::remove_handler(Environment& env, size_t cap, uint32_t filter) {
  auto lock = exclude_delivery();
  owned_slot(env, cap, filter, "a handler slot").handler = nullptr;
  if (lock.owns_lock()) lock.unlock();
  grace::synchronize();  // then the handler may be destroyed
}

const FilterSlot* Kernel::filter(uint32_t id) const {
  return id < filters_.size() && filters_[id].owner ? &filters_[id] : nullptr;
}

bool Kernel::transmit(Environment& env, size_t cap, Nic& nic, uint64_t va, size_t length) {
  check(env, cap, nic_guards_.at(nic.id()), kPermWrite, "a NIC's transmit side");
  if (length == 0 || length > nic.config().max_frame) return nic.transmit(nullptr, length);
  if (uint8_t* p = env.mmu_.translate_span(va, length, kRead)) return nic.transmit(p, length);
  uint8_t staging[65536];
  if (env.mmu_.copy_in(staging, va, length) != kVaLimit)
    fail("environment {}: transmit from 0x{:x} ({} bytes): not readable", env.name(), va, length);
  return nic.transmit(staging, length);
}

bool Kernel::transmit_bytes(Environment& env, size_t cap, Nic& nic, const uint8_t* frame,
                            size_t length) {
  check(env, cap, nic_guards_.at(nic.id()), kPermWrite, "a NIC's transmit side");
  return nic.transmit(frame, length);
}

void Kernel::wake_at(Environment& env, uint64_t t) {
  clock_->at(t, [&env] { env.wake(); });
}

bool Kernel::place(PacketRing& r, const uint8_t* frame, size_t length) {
  RingHeader* h = r.header;
  // The header lives in the environment's memory: read what the environment may have written
  // once, and check it before use.
  uint32_t slots = r.header->slots;
  uint32_t consumed = std::atomic_ref<uint32_t>(h->consumed).load(std::memory_order_acquire);
  uint32_t produced = h->produced;
  if (slots == 0 || slots > kMaxRingSlots || (slots & (slots - 1)) ||
      produced - consumed >= slots) {
    ++r.counters.drops_full;
    ++h->dropped;
    return false;
  }
  RingSlot* slot = &ring_slots(h)[produced & (slots - 1)];
  uint64_t va = slot->buffer, cap = slot->capacity;
  if (va < r.area_va || cap > r.area_len || va - r.area_va > r.area_len - cap) {
    ++r.counters.drops_bad_buffer;
    ++h->dropped;
    return false;
  }
  if (length > cap) {
    ++r.counters.drops_too_big;
    ++h->dropped;
    return false;
  }
  // Copy page by page through the pinned view of the area.
  uint64_t off = va - r.area_va;
  size_t done = 0;
  while (done < length) {
    uint64_t in_page = (off + done) & (kPageSize - 1);
    size_t chunk = std::min<uint64_t>(length - done, kPageSize - in_page);
    std::memcpy(r.area_pages[(off + done) >> kPageShift] + in_page, frame + done, chunk);
    done += chunk;
  }
  slot->length = uint32_t(length);
  std::atomic_ref<uint32_t>(h->produced).store(produced + 1, std::memory_order_release);
  ++r.counters.delivered;
  r.counters.bytes += length;
  return true;
}

Kernel::DeliveryExclusion Kernel::exclude_delivery() {
  DeliveryExclusion e;
  if (!threaded()) return e;
  for (auto& nic : nics_)  // always in the same order: NICs, then queues
    for (auto& q : nic->queues_) e.locks_.emplace_back(q->delivery);
  return e;
}

uint32_t Kernel::classify_serialized(const uint8_t* frame, size_t length) {
  std::lock_guard<std::mutex> lock(classify_mutex_);
  return demux_->classify(frame, length);
}

void Kernel::deliver(Nic& nic, uint32_t queue, const uint8_t* frame, size_t length) {
  Nic::RxCounters& nc = nic.queue(queue).counters;
  // Filter counters are shared by the queues in thread mode only.
  auto bump = [threads = threaded()](SharedCounter& c) {
    if (threads)
      c.add(1);
    else
      c.add_alone(1);
  };
  uint32_t id = !demux_                               ? 0
                : !threaded() || demux_->concurrent() ? demux_->classify(frame, length)
                                                      : classify_serialized(frame, length);
  FilterSlot* s = id < filters_.size() && filters_[id].owner ? &filters_[id] : nullptr;
  if (!s) {
    ++nc.drops_no_owner;
    return;
  }
  bump(s->counters.matched);
  if (MessageHandler* handler = s->handler) {
    // A handler that is not concurrent runs on one queue's thread at a time (its run state);
    // which queue's does not matter. A concurrent one runs on every lane at once (plugins.h).
    std::unique_lock<std::mutex> one_run(handler->run_lock_, std::defer_lock);
    if (threaded() && !handler->concurrent()) one_run.lock();
    // The run is a read section: unmap, protect, revoke and handler removal wait for it to end
    // (grace::synchronize) before letting go of what it may touch. The announcement is ordered
    // before the run's reads of page tables by the compiler barrier here, and on the processor
    // by the writers' membarrier (grace_period.h).
    grace::ReadSection run;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // Replies go out on the NIC the message came in on: only the one whose capability was
    // checked at install.
    HandlerContext ctx(*this, *s->owner, nic, s->handler_may_transmit && s->reply_nic == &nic,
                       nic.first_lane() + queue);
    if (handler->handle(ctx, Message{frame, uint32_t(length), id}) == HandlerVerdict::Consumed) {
      bump(s->counters.handled);
      ++nc.handled;
      ++nc.delivered;
      return;
    }
    bump(s->counters.declined);
  }
  if (!s->ring) {
    ++nc.drops_no_owner;
    return;
  }
  bool placed;
  {
    std::unique_lock<std::mutex> ring_lock(s->ring->producers, std::defer_lock);
    if (threaded()) ring_lock.lock();
    placed = place(*s->ring, frame, length);
  }
  if (!placed) {
    ++nc.drops_owner_ring;
    return;
  }
  ++nc.delivered;
  if (nic.config_.dma == DmaMode::KernelBuffers) nc.copied_bytes += length;
  s->owner->wake();
}

}  // namespace exojit::runtime
