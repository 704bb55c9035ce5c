// The README's demo: generates the Internet checksum function, calls it, checks it against the
// interpreter and a plain C reference, and dumps the vcode listing and the machine code.
#include <cstdio>
#include <vector>

#include "examples/cksum.h"

namespace {
uint16_t reference_cksum(const uint8_t* p, size_t n) {  // RFC 1071 §4.1, byte pairs
  uint32_t sum = 0;
  for (; n > 1; p += 2, n -= 2) sum += uint32_t(p[0] | p[1] << 8);
  if (n) sum += p[0];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}
}  // namespace

int main() {
  using namespace exojit;
  try {
    vcode::Module m;
    examples::build_cksum(m);
    vcode::Code code = vcode::compile(m);
    auto cksum = code.as<uint16_t(const uint8_t*, uint64_t)>("cksum");

    std::vector<uint8_t> packet(1501);
    for (size_t i = 0; i < packet.size(); ++i) packet[i] = uint8_t(i * 7 + 3);
    uint16_t jit = cksum(packet.data(), packet.size());
    uint16_t ref = reference_cksum(packet.data(), packet.size());
    vcode::Interpreter interp(m);
    uint16_t interp_result = interp.run<uint16_t>("cksum", packet.data(), uint64_t(packet.size()));

    std::printf("== vcode listing\n%s\n", vcode::print(m).c_str());
    const auto& sym = code.symbols().front();
    std::printf("== x86-64 machine code of @%s (%zu bytes)\n%s\n", sym.name.c_str(), sym.size,
                vcode::disassembly_text(code, sym).c_str());
    std::printf("checksum of %zu bytes: generated 0x%04x, interpreter 0x%04x, C reference 0x%04x\n",
                packet.size(), jit, interp_result, ref);
    if (jit != ref || interp_result != ref) {
      std::printf("MISMATCH\n");
      return 1;
    }
    std::printf("all three agree\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
