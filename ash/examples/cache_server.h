// SPDX-License-Identifier: MIT
// The composed server of [ASH96], section 5.4, over UDP: a request carries a 4-byte key
// (big-endian); the reply carries the key and the cached bytes. The handler is composed of the
// library Ethernet, IPv4 and UDP layers and a cache layer: a hit is answered by the handler
// (reply built from headers and the cached data through a checksum pipe), a miss aborts to the
// server environment, which loads the data, installs it in the cache and replies itself.
//
// The cache lives in the server environment's memory at `base`: 64 entries of
// [key u32][length u32][address u64] (indexed by key mod 64), data from base + 4096 on.
#pragma once

#include <cstdint>
#include <vector>

#include "exojit/ash/compose.h"
#include "exojit/runtime/environment.h"
#include "testbed.h"

namespace exojit::ash::examples {

class CacheServer {
 public:
  static constexpr uint32_t kEntries = 64;

  CacheServer(runtime::Environment& env, uint64_t base);

  void put(uint32_t key, const std::vector<uint8_t>& data);
  bool cached(uint32_t key);
  // The data a miss loads ("from disk"): deterministic, 64..511 bytes.
  static std::vector<uint8_t> load(uint32_t key);

  // Composes Ethernet/IPv4/UDP/cache into h (finished).
  void build(HandlerBuilder& h, uint32_t ip, uint16_t port);
  // The ring path: one request frame, the reply (a miss is loaded and installed first).
  std::vector<uint8_t> serve(const uint8_t* f, size_t n);
  // The reply to a hit, built in C++ (the same bytes the handler sends).
  std::vector<uint8_t> reply(const uint8_t* request, uint32_t key);

 private:
  runtime::Environment& env_;
  uint64_t base_, next_data_;
};

std::vector<uint8_t> cache_request(const Testbed& t, uint32_t key);

}  // namespace exojit::ash::examples
