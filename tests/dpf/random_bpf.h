// SPDX-License-Identifier: MIT
// Random valid classic-BPF programs for the JIT's differential tests: every instruction, forward
// jumps only, and scratch memory read only after the program's first instructions wrote it (so
// that libpcap 1.10's bpf_filter, whose scratch memory starts as stack garbage, is a fair
// reference). Offsets cluster around small packets so that bounds checks go both ways.
#pragma once

#include <exojit/dpf/bpf.h>

#include <random>
#include <vector>

namespace exojit::dpf::testing {

// Opcode values (libpcap's pcap/bpf.h spells them BPF_LD|BPF_H|BPF_ABS etc.).
namespace op {
inline constexpr uint16_t kLdW = 0x20, kLdH = 0x28, kLdB = 0x30, kLdIndW = 0x40, kLdIndH = 0x48,
                          kLdIndB = 0x50, kLdLen = 0x80, kLdxLen = 0x81, kLdImm = 0x00,
                          kLdxImm = 0x01, kLdMem = 0x60, kLdxMem = 0x61, kLdxMsh = 0xb1, kSt = 0x02,
                          kStx = 0x03, kJa = 0x05, kJeq = 0x15, kJgt = 0x25, kJge = 0x35,
                          kJset = 0x45, kSrcX = 0x08, kAlu = 0x04, kNeg = 0x84, kTax = 0x07,
                          kTxa = 0x87, kRetK = 0x06, kRetA = 0x16;
// ALU operations (add sub mul div or and lsh rsh mod xor).
inline constexpr uint16_t kAluOps[] = {0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0};
}  // namespace op

inline BpfInsn stmt(uint16_t code, uint32_t k) {
  return BpfInsn{code, 0, 0, k};
}
inline BpfInsn jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return BpfInsn{code, jt, jf, k};
}

inline uint32_t random_k(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0:
      return uint32_t(rng());
    case 1:
      return 0xffffffffu - uint32_t(rng() % 8);
    case 2:
      return uint32_t(rng() % 256);
    default:
      return uint32_t(rng() % 16);
  }
}

inline uint32_t random_offset(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return 0xffffffffu - uint32_t(rng() % 8);  // wraps when added to X or a length
    case 1:
      return uint32_t(rng() % 70000);
    default:
      return uint32_t(rng() % 72);
  }
}

inline std::vector<BpfInsn> random_bpf(std::mt19937_64& rng, size_t body = 40) {
  std::vector<BpfInsn> p;
  std::vector<uint32_t> written;  // scratch words the prologue writes
  for (uint32_t w = 0; w < kBpfMemWords; ++w)
    if (rng() % 5 == 0) {
      p.push_back(stmt(op::kLdImm, random_k(rng)));
      p.push_back(stmt(op::kSt, w));
      written.push_back(w);
    }
  size_t n_body = 1 + rng() % body;
  size_t total = p.size() + n_body + 3;  // three rets at the end
  while (p.size() < total - 3) {
    size_t pc = p.size();
    auto forward = [&] {  // a jump offset landing inside the program
      size_t room = total - pc - 1;
      return uint8_t(rng() % std::min<size_t>(room, 256));
    };
    switch (rng() % 13) {
      case 0: {
        static constexpr uint16_t loads[] = {op::kLdW, op::kLdH, op::kLdB};
        p.push_back(stmt(loads[rng() % 3], random_offset(rng)));
        break;
      }
      case 1: {
        static constexpr uint16_t loads[] = {op::kLdIndW, op::kLdIndH, op::kLdIndB};
        p.push_back(stmt(loads[rng() % 3], random_offset(rng)));
        break;
      }
      case 2:
        p.push_back(stmt(op::kLdxMsh, random_offset(rng)));
        break;
      case 3: {
        static constexpr uint16_t others[] = {op::kLdLen, op::kLdxLen, op::kLdImm, op::kLdxImm};
        p.push_back(stmt(others[rng() % 4], random_k(rng)));
        break;
      }
      case 4:
        if (!written.empty()) {
          const uint16_t load = rng() % 2 ? op::kLdMem : op::kLdxMem;
          p.push_back(stmt(load, written[rng() % written.size()]));
          break;
        }
        [[fallthrough]];
      case 5: {
        const uint16_t store = rng() % 2 ? op::kSt : op::kStx;
        p.push_back(stmt(store, uint32_t(rng() % kBpfMemWords)));
        break;
      }
      case 6:
      case 7: {
        uint16_t o = op::kAluOps[rng() % std::size(op::kAluOps)];
        uint32_t k = random_k(rng);
        if (o == 0x60 || o == 0x70) k %= 32;            // lsh, rsh: constant counts below 32
        if ((o == 0x30 || o == 0x90) && k == 0) k = 1;  // div, mod: no constant 0
        p.push_back(stmt(op::kAlu | o, k));
        break;
      }
      case 8:
        p.push_back(stmt(op::kAlu | op::kSrcX | op::kAluOps[rng() % std::size(op::kAluOps)], 0));
        break;
      case 9: {
        static constexpr uint16_t misc[] = {op::kNeg, op::kTax, op::kTxa};
        p.push_back(stmt(misc[rng() % 3], 0));
        break;
      }
      case 10:
        p.push_back(stmt(op::kJa, forward()));
        break;
      case 11:
        if (rng() % 6 == 0) {
          p.push_back(rng() % 2 ? stmt(op::kRetA, 0) : stmt(op::kRetK, random_k(rng)));
          break;
        }
        [[fallthrough]];
      default: {
        static constexpr uint16_t jumps[] = {op::kJeq, op::kJgt, op::kJge, op::kJset};
        uint16_t code = uint16_t(jumps[rng() % 4] | (rng() % 3 == 0 ? op::kSrcX : 0));
        p.push_back(jump(code, random_k(rng), forward(), forward()));
      }
    }
  }
  p.push_back(stmt(op::kRetK, 0));
  p.push_back(stmt(op::kRetA, 0));
  p.push_back(stmt(op::kRetK, 1 + uint32_t(rng() % 0xffff)));
  return p;
}

}  // namespace exojit::dpf::testing
