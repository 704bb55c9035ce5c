// SPDX-License-Identifier: MIT
// Fuzz target: messages from the wire run through every example handler, natively and through
// the vcode interpreter (the reference semantics). Both must reach the same outcome, leave the
// same application memory and send the same replies; nothing may crash or touch memory outside
// the handler's region (ASan in the fuzzing build).
//
// Input: byte 0 picks the handler, the rest is the message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "cache_server.h"
#include "example_set.h"
#include "handlers.h"

namespace {

using namespace exojit;
using namespace exojit::ash;
using namespace exojit::ash::examples;

struct Side {
  Testbed t{runtime::Mode::Scheduler, kIncrementPort};
  std::vector<std::unique_ptr<Handler>> handlers;
  std::vector<std::vector<uint8_t>> sent;
  explicit Side(Engine e) {
    CacheServer cache(t.server(), Testbed::kApp);
    for (uint32_t k = 0; k < 8; ++k) cache.put(k, CacheServer::load(k));
    for (std::string_view name : example_names()) {
      HandlerBuilder h{std::string(name)};
      if (name == "cache_server")
        cache.build(h, libos::TwoHosts::kIpB, kCachePort);
      else
        build(name, h);
      HandlerOptions o = t.options();
      o.engine = e;
      handlers.push_back(std::make_unique<Handler>(h, t.server(), o));
    }
    t.net.nic_b.add_tx_tap(
        [this](const uint8_t* f, size_t n, uint64_t) { sent.emplace_back(f, f + n); });
  }
  Outcome run(size_t which, const uint8_t* msg, size_t n) {
    runtime::HandlerContext ctx(t.net.kernel_b, t.server(), t.net.nic_b, true);
    Handler& h = *handlers[which];
    h.handle(ctx, runtime::Message{msg, uint32_t(n), 1});
    t.net.nic_b.service_rx(0);
    return h.last_outcome();
  }
  std::vector<uint8_t> memory() {
    std::vector<uint8_t> m(Testbed::kAppPages * runtime::kPageSize);
    t.server().user_copy_in(m.data(), Testbed::kApp, m.size());
    return m;
  }
};

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "fuzz_ash_messages: native and interpreter differ: %s\n", what);
  std::abort();
}

}  // namespace

// Inputs a handler committed (the corpus runner prints it: mutations must not all abort).
size_t exojit_ash_fuzz_committed = 0;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Side native(Engine::Native), interp(Engine::Interpreter);
  if (size < 1 || size > 2049) return 0;
  size_t which = data[0] % native.handlers.size();
  Outcome a = native.run(which, data + 1, size - 1);
  Outcome b = interp.run(which, data + 1, size - 1);
  if (a != b) mismatch("outcome");
  exojit_ash_fuzz_committed += a == Outcome::Committed;
  if (native.sent != interp.sent) mismatch("replies");
  native.sent.clear();
  interp.sent.clear();
  if (native.memory() != interp.memory()) mismatch("application memory");
  return 0;
}
