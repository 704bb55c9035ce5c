// SPDX-License-Identifier: MIT
// Example: the composed cache server of [ASH96], section 5.4. Ethernet, IPv4, UDP and cache
// layers are composed at run time into one handler: hits are answered by the handler, misses
// abort to the server environment, which loads the data, caches it and replies.
#include <cstdio>
#include <cstring>

#include "cache_server.h"
#include "handlers.h"

using namespace exojit::ash;
using namespace exojit::ash::examples;

int main() {
  Testbed t(exojit::runtime::Mode::Threads, kCachePort);
  CacheServer cache(t.server(), Testbed::kApp);
  HandlerBuilder h("cache_server");
  cache.build(h, exojit::libos::TwoHosts::kIpB, kCachePort);
  Handler handler(h, t.server(), t.options());
  t.install(handler);
  bool ok = true;
  for (uint32_t key : {7u, 7u, 9u, 7u, 9u}) {
    auto req = cache_request(t, key);
    t.send(req);
    const char* who = "handler";
    std::vector<uint8_t> reply;
    if (!t.take_reply(&reply)) {
      // A miss: the server environment serves it from its ring.
      who = "server environment (miss)";
      exojit::runtime::RingSlot* s = t.server_message();
      if (!s) return std::printf("cache_server: FAILED (lost request)\n"), 1;
      auto r = cache.serve(t.server_bytes(s), s->length);
      t.server_release();
      t.server_transmit(r.data(), r.size());
      ok = ok && t.take_reply(&reply);
    }
    bool good = reply.size() == kUdpHeaders + 4 + CacheServer::load(key).size() &&
                udp_checksums_ok(reply.data(), reply.size()) &&
                std::memcmp(reply.data() + kUdpHeaders + 4, CacheServer::load(key).data(),
                            CacheServer::load(key).size()) == 0;
    ok = ok && good;
    std::printf("key %u: %zu-byte reply from the %s%s\n", key, reply.size(), who,
                good ? "" : " (BAD)");
  }
  const HandlerCounters& c = handler.counters();
  std::printf("handler: %llu hits answered, %llu misses aborted to the server\n",
              static_cast<unsigned long long>(c.committed),
              static_cast<unsigned long long>(c.aborted_voluntary));
  ok = ok && c.committed == 3 && c.aborted_voluntary == 2;
  std::printf("%s\n", ok ? "cache_server: ok" : "cache_server: FAILED");
  return ok ? 0 : 1;
}
