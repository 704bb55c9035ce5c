// SPDX-License-Identifier: MIT
// Example: the remote increment of [ASH96], Table 6, between two simulated hosts. The client
// sends the address of a counter; the handler on the server increments it in the server
// environment's memory and replies with the new value, without waking the server environment.
#include <cstdio>
#include <cstring>

#include "handlers.h"
#include "testbed.h"

using namespace exojit::ash;
using namespace exojit::ash::examples;

int main() {
  Testbed t(exojit::runtime::Mode::Threads, kIncrementPort);
  HandlerBuilder h("remote_increment");
  remote_increment(h);
  Handler handler(h, t.server(), t.options());
  t.install(handler);
  uint8_t payload[16] = {};
  uint64_t counter = Testbed::kApp + 8;
  std::memcpy(payload, &counter, 8);
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    t.send(t.request(payload, sizeof payload));
    std::vector<uint8_t> reply;
    if (!t.take_reply(&reply) || reply.size() != kUdpHeaders + 16) {
      std::printf("remote_increment: FAILED (no reply)\n");
      return 1;
    }
    std::memcpy(&last, reply.data() + kUdpHeaders + 8, 8);
    std::printf("round trip %d: counter = %llu\n", i + 1, static_cast<unsigned long long>(last));
  }
  uint64_t in_memory = 0;
  t.server().user_copy_in(&in_memory, counter, 8);
  std::printf("handler: %llu committed, server environment woken %llu times, ring %s\n",
              static_cast<unsigned long long>(handler.counters().committed),
              static_cast<unsigned long long>(t.server().wakeups()),
              t.server_message() ? "not empty" : "empty");
  bool ok = last == 5 && in_memory == 5 && !t.server_message();
  std::printf("%s\n", ok ? "remote_increment: ok" : "remote_increment: FAILED");
  return ok ? 0 : 1;
}
