// SPDX-License-Identifier: MIT
// Receive-side scaling (RSS), as multi-queue NICs do it: a Toeplitz hash over the flow's
// IPv4/IPv6 addresses and, when the frame carries them, its TCP/UDP ports, with a 40-byte secret
// key; the hash's low bits index an indirection table whose entries are receive queues. Every
// frame of a flow thus lands on the same queue (in order), and flows spread over the queues.
//
// The hash and its inputs follow Microsoft's RSS specification ("RSS hashing functions",
// "RSS hashing types"), and the default key is the one its verification suite publishes
// ("Verifying the RSS hash calculation"; tests/runtime/rss_test.cpp checks those vectors):
//   IPv4 / IPv6 with TCP or UDP   source address, destination address, source port, dest port
//   IPv4 / IPv6 otherwise         source address, destination address
// IPv4 fragments (even the first) hash by addresses only, as the specification requires (the
// later ones have no ports). IPv6 hashes by ports only when the next header is TCP or UDP itself
// (no extension headers parsed: the NDIS_HASH_*_IPV6 types, not the _EX ones). Frames that are
// not IP (ARP, ...) or too short to hold the fields go to the default queue, indirection entry 0.
// One 802.1Q tag is skipped.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace exojit::runtime {

inline constexpr size_t kRssKeySize = 40;
using RssKey = std::array<uint8_t, kRssKeySize>;

// Microsoft's verification key (also the default of many NIC drivers).
inline constexpr RssKey kMicrosoftRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

// The Toeplitz hash of input[0..n) (n <= 36: the key covers 36 input bytes plus a 32-bit window).
// Bit b of the input (most significant bit of input[0] first) selects the key's 32-bit window
// starting at bit b; the hash is the XOR of the selected windows.
uint32_t toeplitz_hash(const RssKey& key, const uint8_t* input, size_t n);

// Where a frame's hash input lies (the fields above, in that order), or nullopt when the frame
// is not hashed (not IP, truncated). Pointers into the frame: nothing is copied.
struct RssFields {
  const uint8_t* addresses;  // source then destination
  uint8_t address_bytes;     // 8 (IPv4) or 32 (IPv6)
  const uint8_t* ports;      // source then destination port (4 bytes); nullptr: none hashed
};
std::optional<RssFields> rss_fields(const uint8_t* frame, size_t length);

struct RssConfig {
  RssKey key = kMicrosoftRssKey;
  // Queue of each hash value's low bits; a power of two of at most 512 entries, each below the
  // NIC's number of queues. Empty: 128 entries spreading the queues round-robin.
  std::vector<uint16_t> indirection;
};

// The steering a NIC applies: RssConfig validated for `queues` queues.
class Rss {
 public:
  Rss(RssConfig config, uint32_t queues);  // bad configuration: exojit::Error
  const RssConfig& config() const { return config_; }
  uint32_t queues() const { return queues_; }
  // The hash of a frame (nullopt: not hashed) and the queue it goes to (a single queue: no
  // hash computed, there is nothing to steer).
  std::optional<uint32_t> hash(const uint8_t* frame, size_t length) const;
  uint32_t queue(const uint8_t* frame, size_t length) const {
    return queues_ == 1 ? 0 : steer(frame, length);
  }
  // toeplitz_hash with this key, by table: one lookup per input byte (36 tables of 256 windows
  // XORed together, built from the key), the bit-serial definition's result at a tenth of its cost.
  uint32_t toeplitz(const uint8_t* input, size_t n) const;

 private:
  RssConfig config_;
  uint32_t queues_;
  std::vector<std::array<uint32_t, 256>> tables_;  // [byte position][byte value]
  uint32_t steer(const uint8_t* frame, size_t length) const;
};

}  // namespace exojit::runtime
