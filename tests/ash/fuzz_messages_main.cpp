// SPDX-License-Identifier: MIT
// Without libFuzzer: runs the message fuzz target on valid requests for each example handler
// and on seeded random mutations of them (byte flips, truncations, random tails).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "handlers.h"
#include "testbed.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern size_t exojit_ash_fuzz_committed;

int main() {
  using namespace exojit::ash::examples;
  Testbed t(exojit::runtime::Mode::Scheduler, kIncrementPort);
  std::vector<std::vector<uint8_t>> seeds;
  uint8_t inc[16] = {};
  uint64_t va = Testbed::kApp + 24;
  std::memcpy(inc, &va, 8);
  uint8_t data[64];
  for (size_t i = 0; i < sizeof data; ++i) data[i] = uint8_t(i);
  auto with_handler = [&](uint8_t which, std::vector<uint8_t> f) {
    f.insert(f.begin(), which);
    seeds.push_back(std::move(f));
  };
  with_handler(0, remote_write_frame(t.net.nic_b.mac(), Testbed::kApp + 4090, data, 64));
  with_handler(1, t.request(inc, sizeof inc));
  with_handler(2, t.request(data, 33));
  uint8_t key[4] = {0, 0, 0, 3};
  with_handler(3, t.request(key, 4));
  std::mt19937 rng(12345);
  size_t runs = 0;
  for (int round = 0; round < 500; ++round)
    for (const auto& s : seeds) {
      std::vector<uint8_t> m = s;
      int kind = int(rng() % 4);
      if (kind == 0 && m.size() > 1) m.resize(1 + rng() % (m.size() - 1));
      if (kind == 1)
        for (int k = 0; k < 3; ++k) m[1 + rng() % (m.size() - 1)] ^= uint8_t(1u << (rng() % 8));
      if (kind == 2)
        for (int k = int(rng() % 40); k > 0; --k) m.push_back(uint8_t(rng()));
      if (kind == 3) m[1 + 14 + rng() % 40 % (m.size() - 15)] = uint8_t(rng());
      LLVMFuzzerTestOneInput(m.data(), m.size());
      ++runs;
    }
  std::printf("fuzz_ash_messages: %zu inputs (%zu committed), 0 failures\n", runs,
              exojit_ash_fuzz_committed);
  return 0;
}
