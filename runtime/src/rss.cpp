#include "exojit/runtime/rss.h"

#include <cstring>

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

std::optional<RssInput> rss_input(const uint8_t* f, size_t length) {
  if (length < kEthernetHeader) return std::nullopt;
  size_t l3 = kEthernetHeader;
  uint16_t type = be16(f + 12);
  if (type == kVlan) {
    if (length < kEthernetHeader + 4) return std::nullopt;
    type = be16(f + 16);
    l3 += 4;
  }
  RssInput in{};
  const uint8_t* ip = f + l3;
  size_t left = length - l3;
  uint8_t proto;
  size_t l4;
  if (type == kIpv4) {
    if (left < 20 || (ip[0] >> 4) != 4) return std::nullopt;
    size_t ihl = size_t(ip[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > left) return std::nullopt;
    std::memcpy(in.bytes.data(), ip + 12, 8);  // source, destination
    in.length = 8;
    bool fragment = (be16(ip + 6) & 0x3fff) != 0;  // more fragments, or an offset
    if (fragment) return in;
    proto = ip[9];
    l4 = ihl;
  } else if (type == kIpv6) {
    if (left < 40 || (ip[0] >> 4) != 6) return std::nullopt;
    std::memcpy(in.bytes.data(), ip + 8, 32);
    in.length = 32;
    proto = ip[6];
    l4 = 40;
  } else {
    return std::nullopt;
  }
  if ((proto == kTcp || proto == kUdp) && left - l4 >= 4) {
    std::memcpy(in.bytes.data() + in.length, ip + l4, 4);  // source port, destination port
    in.length = uint8_t(in.length + 4);
  }
  return in;
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
}

std::optional<uint32_t> Rss::hash(const uint8_t* frame, size_t length) const {
  std::optional<RssInput> in = rss_input(frame, length);
  if (!in) return std::nullopt;
  return toeplitz_hash(config_.key, in->bytes.data(), in->length);
}

uint32_t Rss::queue(const uint8_t* frame, size_t length) const {
  if (queues_ == 1) return 0;
  std::optional<uint32_t> h = hash(frame, length);
  const std::vector<uint16_t>& t = config_.indirection;
  return h ? t[*h & (t.size() - 1)] : t[0];
}

}  // namespace exojit::runtime
