// SPDX-License-Identifier: MIT
// Two simulated hosts (libos::TwoHosts) set up for the ASH examples: on host B a server
// environment with application pages at kApp and a UDP filter (its port) bound to a packet
// ring of its own, where an ASH can be installed; on host A a client environment whose replies
// arrive in its own ring. Also the plain C++ servers of the ring path (the environment doing
// the same work as the handler after being woken).
#pragma once

#include <cstdint>
#include <vector>

#include "exojit/ash/handler.h"
#include "exojit/libos/two_hosts.h"
#include "exojit/runtime/ring.h"

namespace exojit::ash::examples {

class Testbed {
 public:
  static constexpr uint64_t kApp = 0x20000000;
  static constexpr size_t kAppPages = 16;
  static constexpr uint64_t kRingVa = 0x30000000;  // ring page, then 32 KiB of buffers

  Testbed(runtime::Mode mode, uint16_t server_port);

  libos::TwoHosts net;
  uint32_t server_filter = 0, server_ring = 0, client_filter = 0, client_ring = 0;

  runtime::Environment& server() { return net.env_b; }
  runtime::Environment& client() { return net.env_a; }
  HandlerOptions options(Sandbox s = Sandbox::Checked) const;
  void install(Handler& h);  // on the server's filter, replies on its NIC
  void uninstall();

  // Client: a UDP request to the server's port (immediate links deliver it at once in thread
  // mode), and its replies.
  std::vector<uint8_t> request(const uint8_t* payload, size_t n) const;
  void send(const std::vector<uint8_t>& frame);
  bool take_reply(std::vector<uint8_t>* out);  // false when none has arrived

  // Server environment side: the oldest message in its ring (nullptr if none), and release.
  runtime::RingSlot* server_message();
  void server_release();
  uint8_t* server_bytes(const runtime::RingSlot* s);  // host view of a ring buffer (one page)
  bool server_transmit(const uint8_t* frame, size_t n);

 private:
  uint16_t port_;
};

// The ring-path servers: the same logic as the handlers, in plain C++ in the environment.
// Each handles one request frame and returns the reply (empty: no reply).
std::vector<uint8_t> serve_increment(runtime::Environment& env, const uint8_t* f, size_t n);
std::vector<uint8_t> serve_echo(const uint8_t* f, size_t n);

}  // namespace exojit::ash::examples
