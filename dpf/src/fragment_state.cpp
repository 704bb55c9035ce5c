// SPDX-License-Identifier: MIT
// Remembered values and held packets (fragment_state.h).
#include <algorithm>

#include "fragment_state_p.h"

namespace exojit::dpf::detail {

bool FragmentState::recorded(uint32_t id, uint64_t value, uint64_t now) const {
  auto it = values_.find(id);
  if (it == values_.end()) return false;
  auto v = it->second.expiry.find(value);
  return v != it->second.expiry.end() && v->second > now;
}

void FragmentState::remember(uint32_t id, uint64_t value, uint64_t expiry) {
  if (capacity_ == 0) return;
  Values& v = values_[id];
  v.expiry[value] = expiry;
  v.order.emplace_back(value, expiry);
  // The oldest entries go (an entry refreshed since then is newer in the map: it stays).
  while (v.order.size() > capacity_) {
    auto [old, when] = v.order.front();
    v.order.pop_front();
    auto it = v.expiry.find(old);
    if (it != v.expiry.end() && it->second == when) v.expiry.erase(it);
  }
}

void FragmentState::pop_front(Pool& p) {
  p.bytes -= p.packets.front().packet.size();
  p.packets.pop_front();
  ++evicted_;
}

bool FragmentState::hold(uint32_t owner, Held h, const OwnerLimits& limits, uint64_t now) {
  if (limits.held_packets == 0 || h.packet.size() > limits.held_bytes) return false;
  Pool& p = pools_[owner];
  while (!p.packets.empty() && p.packets.front().expiry <= now) pop_front(p);
  while (!p.packets.empty() && (p.packets.size() + 1 > limits.held_packets ||
                                p.bytes + h.packet.size() > limits.held_bytes))
    pop_front(p);
  h.seq = ++seq_;
  p.bytes += h.packet.size();
  p.packets.push_back(std::move(h));
  return true;
}

std::vector<FragmentState::Held> FragmentState::take_waiting(uint32_t owner, uint32_t id,
                                                             uint64_t value, uint64_t now) {
  std::vector<Held> out;
  auto it = pools_.find(owner);
  if (it == pools_.end()) return out;
  Pool& p = it->second;
  for (auto h = p.packets.begin(); h != p.packets.end();) {
    bool expired = h->expiry <= now;
    bool waits =
        h->id == id && std::find(h->waits.begin(), h->waits.end(), value) != h->waits.end();
    if (!expired && !waits) {
      ++h;
      continue;
    }
    p.bytes -= h->packet.size();
    if (expired)
      ++evicted_;
    else
      out.push_back(std::move(*h));
    h = p.packets.erase(h);
  }
  return out;
}

void FragmentState::put_back(uint32_t owner, Held h) {
  Pool& p = pools_[owner];
  auto at = std::upper_bound(p.packets.begin(), p.packets.end(), h.seq,
                             [](uint64_t s, const Held& x) { return s < x.seq; });
  p.bytes += h.packet.size();
  p.packets.insert(at, std::move(h));
}

void FragmentState::drop(uint32_t owner, uint32_t id) {
  values_.erase(id);
  auto it = pools_.find(owner);
  if (it == pools_.end()) return;
  Pool& p = it->second;
  for (auto h = p.packets.begin(); h != p.packets.end();) {
    if (h->id != id) {
      ++h;
      continue;
    }
    p.bytes -= h->packet.size();
    h = p.packets.erase(h);
  }
}

size_t FragmentState::held_packets(uint32_t owner) const {
  auto it = pools_.find(owner);
  return it == pools_.end() ? 0 : it->second.packets.size();
}

size_t FragmentState::held_bytes(uint32_t owner) const {
  auto it = pools_.find(owner);
  return it == pools_.end() ? 0 : it->second.bytes;
}

}  // namespace exojit::dpf::detail
