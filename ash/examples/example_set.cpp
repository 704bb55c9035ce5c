// SPDX-License-Identifier: MIT
#include "example_set.h"

#include "cache_server.h"
#include "exojit/error.h"
#include "handlers.h"

namespace exojit::ash::examples {

const std::vector<std::string_view>& example_names() {
  static const std::vector<std::string_view> n{"remote_write", "remote_increment", "udp_echo",
                                               "cache_server"};
  return n;
}

std::unique_ptr<Handler> make_example(std::string_view name, Testbed& t, Sandbox s, bool harden) {
  HandlerBuilder h{std::string(name)};
  if (name == "cache_server") {
    CacheServer cache(t.server(), Testbed::kApp);
    cache.build(h, libos::TwoHosts::kIpB, kCachePort);
  } else {
    build(name, h);  // fails for unknown names
  }
  HandlerOptions o = t.options(s);
  o.harden = harden;
  return std::make_unique<Handler>(h, t.server(), o);
}

}  // namespace exojit::ash::examples
