// SPDX-License-Identifier: MIT
// A DPF engine as the runtime's demultiplexer: the ids DPF gives its filters are the kernel's
// filter slots, so an environment claims the slot of its DPF filter and installs its ASH there.
//
//   dpf::Engine engine;
//   ash::DpfDemux demux(engine);
//   kernel.set_demux(&demux);
//   uint32_t id = engine.insert(dpf::parse_filter("(12:16 == 0x800) && ..."));
//   kernel.claim_filter(env, cap, id);
//   kernel.install_handler(env, cap, id, &handler, &nic);
#pragma once

#include "exojit/dpf/engine.h"
#include "exojit/runtime/plugins.h"

namespace exojit::ash {

class DpfDemux : public runtime::Demux {
 public:
  explicit DpfDemux(dpf::Engine& engine) : engine_(engine) {}
  uint32_t classify(const uint8_t* packet, size_t length) override {
    return engine_.demux(packet, length);
  }
  // Engine::demux runs on any number of threads while another changes the engine (dpf/README.md,
  // "Concurrency"): every receive queue classifies at once.
  bool concurrent() const override { return true; }

 private:
  dpf::Engine& engine_;
};

}  // namespace exojit::ash
