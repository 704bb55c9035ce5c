// SPDX-License-Identifier: MIT
// One simulated machine for the ash tests: a kernel (scheduler model), a NIC whose transmitted
// frames are recorded, and an environment with application pages at kApp, read-write.
#pragma once

#include <cstring>
#include <vector>

#include "exojit/ash/handler.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::ash::testing {

using namespace exojit::runtime;

inline const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);

struct Machine {
  static constexpr uint64_t kApp = 0x20000000;
  static constexpr size_t kAppPages = 4;

  Kernel kernel;
  BuiltinDemux demux;
  Nic& nic;
  Environment& env;
  std::vector<std::vector<uint8_t>> sent;

  explicit Machine(Mode mode = Mode::Scheduler)
      : kernel(KernelConfig{.mode = mode}),
        nic(kernel.add_nic(NicConfig{.name = "n0", .mac = {2, 0, 0, 0, 0, 2}}, kNicGuard)),
        env(kernel.create_environment("app", Capability::root())) {
    kernel.set_demux(&demux);
    kernel.alloc_pages(env, 0, kApp, kAppPages, kPteRead | kPteWrite);
    nic.add_tx_tap([this](const uint8_t* f, size_t n, uint64_t) { sent.emplace_back(f, f + n); });
  }

  HandlerOptions options(Sandbox s = Sandbox::Checked, Engine e = Engine::Native) const {
    HandlerOptions o;
    o.region = Region{kApp, kAppPages * kPageSize};
    o.sandbox = s;
    o.engine = e;
    return o;
  }

  // Host view of application memory (one page at a time).
  uint8_t* app(uint64_t va) { return env.mmu().walk(va, kRead); }
  template <typename T>
  T read(uint64_t va) {
    T v;
    env.user_copy_in(&v, va, sizeof v);
    return v;
  }
  template <typename T>
  void write(uint64_t va, T v) {
    env.user_copy_out(va, &v, sizeof v);
  }

  // Runs the handler on one message directly (the kernel's delivery, without the demux).
  Outcome run(Handler& h, const std::vector<uint8_t>& msg, bool may_transmit = true) {
    HandlerContext ctx(kernel, env, nic, may_transmit);
    h.handle(ctx, Message{msg.data(), uint32_t(msg.size()), 1});
    nic.service_rx(0);  // sends queued replies
    return h.last_outcome();
  }
};

}  // namespace exojit::ash::testing
