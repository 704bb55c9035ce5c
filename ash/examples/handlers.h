// SPDX-License-Identifier: MIT
// The example handlers of [ASH96], shared by the example programs, the tests, bench_ash and
// `vdump --ash NAME`, and the frames they read.
//
//   remote_write      Figure 3: [Ethernet][dst u64 LE][len u32 LE][data] -> data copied to dst
//   remote_increment  Table 6: UDP payload [va u64 LE][u64] -> *va += 1, reply with the new value
//   udp_echo          a UDP echo: the datagram goes back with addresses and ports swapped
//   cache_server      section 5.4: composed Ethernet/IPv4/UDP/cache layers (compose.h); hits
//                     are answered by the handler, misses abort to the server environment
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/ash/builder.h"
#include "exojit/runtime/nic.h"

namespace exojit::ash::examples {

inline constexpr uint16_t kIncrementPort = 7001;
inline constexpr uint16_t kEchoPort = 7;
inline constexpr uint16_t kCachePort = 8080;
inline constexpr uint16_t kClientPort = 40000;
inline constexpr size_t kUdpHeaders = 42;  // Ethernet 14 + IPv4 20 + UDP 8

void remote_write(HandlerBuilder& h);
void remote_increment(HandlerBuilder& h);
void udp_echo(HandlerBuilder& h);

// Builds the named example ("remote_write", ...) into h; an unknown name is an Error listing
// the names. cache_server is built by compose (see cache_server.h).
void build(std::string_view name, HandlerBuilder& h);
const std::vector<std::string_view>& names();

// Frames.
std::vector<uint8_t> udp_frame(const runtime::MacAddress& src_mac,
                               const runtime::MacAddress& dst_mac, uint32_t src_ip, uint32_t dst_ip,
                               uint16_t src_port, uint16_t dst_port, const uint8_t* payload,
                               size_t n, bool udp_checksum = true);
std::vector<uint8_t> remote_write_frame(const runtime::MacAddress& dst_mac, uint64_t dst_va,
                                        const uint8_t* data, uint32_t n);
// RFC 1071 over [p, p+n), big-endian words, folded, not complemented; plus an initial sum.
uint32_t ones_sum(const uint8_t* p, size_t n, uint32_t sum = 0);
// True when the frame's IPv4 header checksum and UDP checksum (if not 0) verify.
bool udp_checksums_ok(const uint8_t* frame, size_t n);

}  // namespace exojit::ash::examples
