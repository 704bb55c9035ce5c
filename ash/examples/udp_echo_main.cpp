// SPDX-License-Identifier: MIT
// Example: a UDP echo answered by a handler (message initiation from the kernel's delivery).
#include <cstdio>
#include <cstring>

#include "handlers.h"
#include "testbed.h"

using namespace exojit::ash;
using namespace exojit::ash::examples;

int main() {
  Testbed t(exojit::runtime::Mode::Threads, kEchoPort);
  HandlerBuilder h("udp_echo");
  udp_echo(h);
  Handler handler(h, t.server(), t.options());
  t.install(handler);
  const char text[] = "hello, echo";
  t.send(t.request(reinterpret_cast<const uint8_t*>(text), sizeof text));
  std::vector<uint8_t> reply;
  bool ok = t.take_reply(&reply) && reply.size() == kUdpHeaders + sizeof text &&
            std::memcmp(reply.data() + kUdpHeaders, text, sizeof text) == 0 &&
            udp_checksums_ok(reply.data(), reply.size());
  std::printf("echoed \"%s\" (%zu-byte frame, checksums %s)\n",
              ok ? reinterpret_cast<const char*>(reply.data() + kUdpHeaders) : "", reply.size(),
              ok ? "valid" : "?");
  std::printf("%s\n", ok ? "udp_echo: ok" : "udp_echo: FAILED");
  return ok ? 0 : 1;
}
