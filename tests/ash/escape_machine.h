// SPDX-License-Identifier: MIT
// A small machine for trying to escape the sandbox (the regression tests of the attack classes
// and the escape fuzzer share it): 32 frames of physical memory, an attacker environment whose
// handler region has two read-write pages, a read-only page and an unmapped hole, a victim
// environment with pages full of a pattern, and host canary buffers around nothing in
// particular. `intact()` compares the whole physical memory and the canaries with a snapshot:
// any byte changed outside the attacker's own writable region pages is an escape.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "exojit/ash/handler.h"
#include "exojit/runtime/kernel.h"

namespace exojit::ash::testing {

using namespace exojit::runtime;

struct EscapeMachine {
  static constexpr uint64_t kApp = 0x20000000;  // region: rw, rw, r, hole
  static constexpr size_t kRegionPages = 4;
  static constexpr uint64_t kVictim = 0x30000000;  // the victim's pages (another environment)
  static inline const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);

  Kernel kernel;
  Nic& nic;
  Environment& attacker;
  Environment& victim;
  std::array<uint8_t, 4096> canary_low{}, canary_high{};
  std::vector<uint8_t> memory_before;
  std::array<uint8_t, 4096> canary_before{};
  std::vector<std::vector<uint8_t>> sent;

  explicit EscapeMachine(Mode mode = Mode::Scheduler)
      : kernel(KernelConfig{.frames = 32, .mode = mode}),
        nic(kernel.add_nic(NicConfig{.name = "n0", .mac = {2, 0, 0, 0, 0, 2}, .rx_slots = 8},
                           kNicGuard)),
        attacker(kernel.create_environment("attacker", Capability::make({1}, kPermAll))),
        victim(kernel.create_environment("victim", Capability::make({2}, kPermAll))) {
    kernel.alloc_pages(attacker, 0, kApp, 2, kPteRead | kPteWrite);
    kernel.alloc_pages(attacker, 0, kApp + 2 * kPageSize, 1, kPteRead);
    kernel.alloc_pages(victim, 0, kVictim, 2, kPteRead | kPteWrite);
    for (size_t p = 0; p < 2; ++p) {
      std::memset(host(attacker, kApp + p * kPageSize), 0x5a, kPageSize);
      std::memset(host(victim, kVictim + p * kPageSize), 0x77, kPageSize);
    }
    std::memset(host(attacker, kApp + 2 * kPageSize), 0x3c, kPageSize);
    canary_low.fill(0xcc);
    canary_high.fill(0xcc);
    nic.add_tx_tap([this](const uint8_t* f, size_t n, uint64_t) { sent.emplace_back(f, f + n); });
    snapshot();
  }

  static uint8_t* host(Environment& env, uint64_t va) { return env.mmu().walk(va, kRead); }

  HandlerOptions options(Engine e = Engine::Native) const {
    HandlerOptions o;
    o.region = Region{kApp, kRegionPages * kPageSize};
    o.engine = e;
    return o;
  }

  // Addresses an attacker would aim at: inside, at the edges of and outside its region, the
  // victim's pages, the canaries, physical memory itself, and the extremes.
  std::vector<uint64_t> targets() const {
    return {kApp,
            kApp + 8,
            kApp + kPageSize - 4,
            kApp + 2 * kPageSize,
            kApp + 3 * kPageSize,
            kApp + kRegionPages * kPageSize - 8,
            kApp + kRegionPages * kPageSize,
            kApp - 8,
            kVictim,
            reinterpret_cast<uint64_t>(canary_low.data()),
            reinterpret_cast<uint64_t>(canary_high.data() + 64),
            reinterpret_cast<uint64_t>(const_cast<Kernel&>(kernel).memory().bytes()),
            0,
            uint64_t(INT64_MIN),
            uint64_t(INT64_MAX),
            ~uint64_t(0)};
  }

  void snapshot() {
    const PhysicalMemory& m = kernel.memory();
    memory_before.assign(m.bytes(), m.bytes() + m.size_bytes());
    canary_before = canary_low;
  }

  // "" when nothing changed outside the attacker's writable region pages (their frames, found
  // through the page table now and at the snapshot: both are the same frames here), else what.
  std::string intact() {
    PhysicalMemory& m = kernel.memory();
    std::vector<const uint8_t*> allowed;
    for (size_t p = 0; p < kRegionPages; ++p)
      if (uint8_t* h = attacker.mmu().walk(kApp + p * kPageSize, kWrite)) allowed.push_back(h);
    for (uint64_t off = 0; off < m.size_bytes(); off += kPageSize) {
      const uint8_t* frame = m.bytes() + off;
      bool writable = false;
      for (const uint8_t* a : allowed) writable |= a == frame;
      if (!writable && std::memcmp(frame, memory_before.data() + off, kPageSize) != 0)
        return fmt::format("physical frame {} changed", off / kPageSize);
    }
    if (canary_low != canary_before || canary_high != canary_before) return "a host canary changed";
    return "";
  }

  // The bytes of the attacker's writable pages (to compare engines).
  std::vector<uint8_t> writable_bytes() {
    std::vector<uint8_t> v;
    for (size_t p = 0; p < 2; ++p) {
      const uint8_t* h = host(attacker, kApp + p * kPageSize);
      v.insert(v.end(), h, h + kPageSize);
    }
    return v;
  }

  // Puts back what writable_bytes() returned.
  void restore_writable(const std::vector<uint8_t>& bytes) {
    for (size_t p = 0; p < 2; ++p)
      std::memcpy(host(attacker, kApp + p * kPageSize), bytes.data() + p * kPageSize, kPageSize);
  }

  Outcome run(Handler& h, const std::vector<uint8_t>& msg) {
    HandlerContext ctx(kernel, attacker, nic, true);
    h.handle(ctx, Message{msg.data(), uint32_t(msg.size()), 1});
    nic.service_rx(0);
    return h.last_outcome();
  }
};
}  // namespace exojit::ash::testing
