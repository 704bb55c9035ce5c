// SPDX-License-Identifier: MIT
// The README's demo: generates the Internet checksum function, calls it, checks it against the
// interpreter and a plain C reference, and dumps the vcode listing and the machine code.
#include <cstdio>
#include <string>
#include <vector>

#include "examples/cksum.h"  // exojit/vcode.h

namespace {

// Disassembled with LLVM's disassembler; as bytes in a build without LLVM (EXOJIT_WITH_LLVM=OFF).
std::string machine_code(const exojit::vcode::Code& code, const exojit::vcode::Code::Symbol& s) {
#if EXOJIT_WITH_DISASM
  return exojit::vcode::disassembly_text(code, s);
#else
  std::string text;
  for (size_t i = 0; i < s.size; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof byte, "%02x%c", code.data()[s.offset + i],
                  i % 16 == 15 ? '\n' : ' ');
    text += byte;
  }
  return text + "\n(no disassembler: built without LLVM)\n";
#endif
}

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
    std::printf("== %s machine code of @%s (%zu bytes)\n%s\n",
                std::string(vcode::target_name(code.target())).c_str(), sym.name.c_str(), sym.size,
                machine_code(code, sym).c_str());
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
