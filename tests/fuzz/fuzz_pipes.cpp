// SPDX-License-Identifier: MIT
// libFuzzer target for the pipe compiler: the input chooses a composition of up to three
// library pipes, the direction, the loop kind (widest vectors, 128-bit, scalar) and the
// alignments, and is itself the message. The compiled loop must produce exactly what the C
// references give run one after another, and must not touch a byte outside the message (the
// buffers are exactly as large as the message, so AddressSanitizer sees any overrun).
//
//   byte 0     bits 0-1: pipe count - 1 (3 = 3), bit 2: read-only, bits 3-4: loop kind
//   bytes 1-3  the pipes (mod 6: cksum bswap16 bswap32 cipher crc32c copy)
//   byte 4     bits 0-2: source alignment, bits 3-5: destination alignment
//   the rest   the message
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "exojit/pipes.h"

int exojit_fuzz_parse_outcome = 0;  // (for the corpus driver: 1 = the input ran)

namespace {

using namespace exojit::pipes;

struct Case {
  std::vector<std::string> names;
  bool read_only;
  int loop;  // 0 widest vectors, 1 128-bit, 2 scalar
  bool operator<(const Case& o) const {
    return std::tie(names, read_only, loop) < std::tie(o.names, o.read_only, o.loop);
  }
};

CompiledPipes& compiled(const Case& c) {
  static std::map<Case, std::unique_ptr<CompiledPipes>> cache;
  auto it = cache.find(c);
  if (it != cache.end()) return *it->second;
  PipeList pl;
  for (const std::string& n : c.names) library::add(pl, n);
  CompileOptions o;
  if (c.loop == 1) o.codegen.use_avx = false;
  if (c.loop == 2) o.vector_bits = 0;
  auto p = std::make_unique<CompiledPipes>(
      compile(pl, c.read_only ? Direction::ReadOnly : Direction::Write, o));
  return *cache.emplace(c, std::move(p)).first->second;
}

[[noreturn]] void mismatch(const Case& c, size_t len, const char* what) {
  std::string names;
  for (const std::string& n : c.names) names += n + " ";
  std::fprintf(stderr, "fuzz_pipes: %s differs: pipes %s(%s, loop %d), length %zu\n", what,
               names.c_str(), c.read_only ? "read-only" : "write", c.loop, len);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  if (size < 5) return 0;
  const auto& all = library::names();
  Case c;
  int count = (data[0] & 3) + 1;
  if (count == 4) count = 3;
  for (int i = 0; i < count; ++i) c.names.emplace_back(all[data[1 + i] % all.size()]);
  c.read_only = data[0] & 4;
  c.loop = (data[0] >> 3) & 3;
  if (c.loop == 3) c.loop = 0;
  exojit::vcode::CompileOptions sse;
  sse.use_avx = false;
  if (c.loop == 1 && exojit::vcode::vector_width(sse) < 128) c.loop = 2;
  const size_t sa = data[4] & 7, da = (data[4] >> 3) & 7;
  const uint8_t* msg = data + 5;
  const size_t len = size - 5;

  // Exactly sized buffers: any access past the message is an ASan report.
  std::unique_ptr<uint8_t[]> src(new uint8_t[sa + len]), dst(new uint8_t[da + len]);
  std::memcpy(src.get() + sa, msg, len);
  std::memset(dst.get(), 0xa5, da + len);

  CompiledPipes& p = compiled(c);
  p.reset();
  if (p(dst.get() + da, src.get() + sa, len) != len) mismatch(c, len, "the return value");

  std::vector<uint8_t> work(msg, msg + len);
  for (size_t i = 0; i < c.names.size(); ++i) {
    const std::string& n = c.names[i];
    uint32_t got = 0, want = 0;
    if (n == "cksum") {
      want = reference::cksum(0, work.data(), len);
      got = uint32_t(p.get(int(i), "acc"));
    } else if (n == "bswap16") {
      reference::bswap16(work.data(), len);
    } else if (n == "bswap32") {
      reference::bswap32(work.data(), len);
    } else if (n == "cipher") {
      want = reference::cipher(library::kDemoKey, work.data(), len);
      got = uint32_t(p.get(int(i), "state"));
    } else if (n == "crc32c") {
      want = reference::crc32c(0xffffffffu, work.data(), len);
      got = uint32_t(p.get(int(i), "crc"));
    }
    if (got != want) mismatch(c, len, "a persistent register");
  }
  for (size_t i = 0; i < da; ++i)
    if (dst[i] != 0xa5) mismatch(c, len, "the bytes before dst");
  if (c.read_only) {
    for (size_t i = 0; i < len; ++i)
      if (dst[da + i] != 0xa5) mismatch(c, len, "dst (read-only must not write)");
  } else if (len && std::memcmp(dst.get() + da, work.data(), len) != 0) {
    mismatch(c, len, "the output");
  }
  exojit_fuzz_parse_outcome = 1;
  return 0;
}
