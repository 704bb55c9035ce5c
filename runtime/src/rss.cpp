// SPDX-License-Identifier: MIT
#include "exojit/runtime/rss.h"

#include "exojit/error.h"

namespace exojit::runtime {

namespace {
constexpr size_t kEthernetHeader = 14;
constexpr uint16_t kVlan = 0x8100, kIpv4 = 0x0800, kIpv6 = 0x86dd;
constexpr uint8_t kTcp = 6, kUdp = 17;

uint16_t be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
}  // namespace

uint32_t toeplitz_hash(const RssKey& key, const uint8_t* input, size_t n) {
  if (n > kRssKeySize - 4) fail("Toeplitz hash of {} bytes (at most {})", n, kRssKeySize - 4);
  uint32_t result = 0;
  for (size_t i = 0; i < n; ++i) {
    // Key bits [8i, 8i + 40): the windows of the byte's eight bits.
    uint64_t k = uint64_t(key[i]) << 32 | uint64_t(key[i + 1]) << 24 | uint64_t(key[i + 2]) << 16 |
                 uint64_t(key[i + 3]) << 8 | key[i + 4];
    for (int bit = 0; bit < 8; ++bit)
      if (input[i] & (0x80 >> bit)) result ^= uint32_t(k >> (8 - bit));
  }
  return result;
}

std::optional<RssFields> rss_fields(const uint8_t* f, size_t length) {
  if (length < kEthernetHeader) return std::nullopt;
  size_t l3 = kEthernetHeader;
  uint16_t type = be16(f + 12);
  if (type == kVlan) {
    if (length < kEthernetHeader + 4) return std::nullopt;
    type = be16(f + 16);
    l3 += 4;
  }
  const uint8_t* ip = f + l3;
  size_t left = length - l3;
  uint8_t proto;
  size_t l4;
  RssFields r{};
  if (type == kIpv4) {
    if (left < 20 || (ip[0] >> 4) != 4) return std::nullopt;
    size_t ihl = size_t(ip[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > left) return std::nullopt;
    r = {ip + 12, 8, nullptr};
    bool fragment = (be16(ip + 6) & 0x3fff) != 0;  // more fragments, or an offset
    if (fragment) return r;
    proto = ip[9];
    l4 = ihl;
  } else if (type == kIpv6) {
    if (left < 40 || (ip[0] >> 4) != 6) return std::nullopt;
    r = {ip + 8, 32, nullptr};
    proto = ip[6];
    l4 = 40;
  } else {
    return std::nullopt;
  }
  if ((proto == kTcp || proto == kUdp) && left - l4 >= 4) r.ports = ip + l4;
  return r;
}

Rss::Rss(RssConfig config, uint32_t queues) : config_(std::move(config)), queues_(queues) {
  if (queues == 0 || queues > 1024) fail("RSS over {} queues (1..1024)", queues);
  std::vector<uint16_t>& t = config_.indirection;
  if (t.empty()) {
    t.resize(128);
    for (size_t i = 0; i < t.size(); ++i) t[i] = uint16_t(i % queues);
  }
  if (t.size() > 512 || (t.size() & (t.size() - 1)))
    fail("RSS indirection table of {} entries (a power of two, at most 512)", t.size());
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] >= queues)
      fail("RSS indirection entry {} names queue {} (the NIC has {})", i, t[i], queues);
  // The hash is linear in its input (XOR): a byte's contribution depends on its position and
  // value only, and is the XOR of its set bits' key windows.
  tables_.resize(kRssKeySize - 4);
  for (size_t pos = 0; pos < tables_.size(); ++pos) {
    uint32_t window[8];
    uint8_t one[kRssKeySize - 4] = {};
    for (int bit = 0; bit < 8; ++bit) {
      one[pos] = uint8_t(0x80 >> bit);
      window[bit] = toeplitz_hash(config_.key, one, pos + 1);
    }
    std::array<uint32_t, 256>& table = tables_[pos];
    table[0] = 0;
    for (unsigned v = 1; v < 256; ++v) {
      int low = __builtin_ctz(v);  // v = (v with its lowest bit cleared) + that bit
      table[v] = table[v & (v - 1)] ^ window[7 - low];
    }
  }
}

uint32_t Rss::toeplitz(const uint8_t* input, size_t n) const {
  if (n > tables_.size()) fail("Toeplitz hash of {} bytes (at most {})", n, tables_.size());
  uint32_t h = 0;
  for (size_t i = 0; i < n; ++i) h ^= tables_[i][input[i]];
  return h;
}

std::optional<uint32_t> Rss::hash(const uint8_t* frame, size_t length) const {
  std::optional<RssFields> in = rss_fields(frame, length);
  if (!in) return std::nullopt;
  // Table lookups straight from the frame (the input's byte positions run on into the ports).
  uint32_t h = 0;
  size_t n = in->address_bytes;
  for (size_t i = 0; i < n; ++i) h ^= tables_[i][in->addresses[i]];
  if (in->ports)
    for (size_t i = 0; i < 4; ++i) h ^= tables_[n + i][in->ports[i]];
  return h;
}

uint32_t Rss::steer(const uint8_t* frame, size_t length) const {
  std::optional<uint32_t> h = hash(frame, length);
  const std::vector<uint16_t>& t = config_.indirection;
  return h ? t[*h & (t.size() - 1)] : t[0];
}

}  // namespace exojit::runtime
