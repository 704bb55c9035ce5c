// SPDX-License-Identifier: MIT
// exo-spec: shows what the specializer makes of the libOS's UDP send path for one usage
// context: the declaration (static values, invariant memory), the residual LLVM IR, the machine
// code, and the code size of the generic path against the specialized one.
//
//   exo-spec --dump dst=10.0.0.2:7,size=64
//   exo-spec --dump dst=192.168.1.9:53,size=any,ttl=5,checksum=off
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/error.h"
#include "exojit/specializer/send.h"
#include "exojit/vcode/disasm.h"
#include "sender.h"

namespace {

using namespace exojit;
using namespace exojit::specializer;
using specializer::testing::Sender;

constexpr std::string_view kUsage = R"(usage: exo-spec --dump CONTEXT [--no-ir] [--no-asm]

Specializes the libOS's generic UDP send path (exo_sendto) for CONTEXT on a simulated host
10.0.0.1/24 (peer 10.0.0.2 and gateway 10.0.0.254 in its ARP table, the NIC without a link) and
prints the declaration, the residual LLVM IR, the machine code and the code sizes.

CONTEXT is a comma-separated list of KEY=VALUE:
  dst=A.B.C.D:PORT    destination (required); outside 10.0.0.0/24 it goes through the gateway
  dst=connected       the socket is connected to 10.0.0.2:7 and sends to its peer
  size=N | size=any   the application data unit: every send carries N bytes (default any)
  ttl=N               IP time to live, 1..255 (default 64)
  checksum=on|off     UDP checksums (default on)
  df=on|off           don't fragment (default off)
  mtu=N               the interface's IP MTU, 68..2034 (default 1500)
)";

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "exo-spec: %s\n%s", why.c_str(), std::string(kUsage).c_str());
  std::exit(2);
}

struct Options {
  SendContext send;
  bool connected = false;
  int ttl = 64, checksum = 1, dontfrag = 0;
  uint16_t mtu = 1500;
};

long number(std::string_view key, std::string_view v, long lo, long hi) {
  std::string s(v);
  char* end = nullptr;
  long n = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || n < lo || n > hi)
    usage_error(fmt::format("{}={}: a number in {}..{}", key, v, lo, hi));
  return n;
}

bool on_off(std::string_view key, std::string_view v) {
  if (v == "on") return true;
  if (v == "off") return false;
  usage_error(fmt::format("{}={}: on or off", key, v));
}

uint32_t ipv4(std::string_view v) {
  unsigned a, b, c, d;
  char extra;
  std::string s(v);
  if (std::sscanf(s.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4 || a > 255 || b > 255 ||
      c > 255 || d > 255)
    usage_error(fmt::format("dst: '{}' is not an IPv4 address", v));
  return libos::ipv4(uint8_t(a), uint8_t(b), uint8_t(c), uint8_t(d));
}

Options parse_context(std::string_view text) {
  Options o;
  bool have_dst = false;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) usage_error(fmt::format("'{}' in CONTEXT: KEY=VALUE", item));
    std::string_view key = item.substr(0, eq), v = item.substr(eq + 1);
    if (key == "dst") {
      have_dst = true;
      if (v == "connected") {
        o.connected = true;
        continue;
      }
      size_t colon = v.find(':');
      if (colon == std::string_view::npos) usage_error(fmt::format("dst={}: A.B.C.D:PORT", v));
      o.send.ip = ipv4(v.substr(0, colon));
      o.send.port = uint16_t(number("port", v.substr(colon + 1), 1, 65535));
    } else if (key == "size") {
      o.send.adu = v == "any" ? 0 : uint32_t(number(key, v, 1, 65507));
    } else if (key == "ttl") {
      o.ttl = int(number(key, v, 1, 255));
    } else if (key == "checksum") {
      o.checksum = on_off(key, v);
    } else if (key == "df") {
      o.dontfrag = on_off(key, v);
    } else if (key == "mtu") {
      o.mtu = uint16_t(number(key, v, 68, 2034));
    } else {
      usage_error(fmt::format("unknown CONTEXT key '{}'", key));
    }
  }
  if (!have_dst) usage_error("CONTEXT needs dst=");
  return o;
}

void print_code(const Residual& r) {
  for (const Residual::Function& f : r.functions) {
    std::printf("== %s  code 0x%lx, %zu bytes\n",
                f.name.empty() ? "exo_sendto (specialized)" : f.name.c_str(),
                static_cast<unsigned long>(f.address), f.bytes);
    for (const vcode::DisasmLine& l :
         vcode::disassemble(reinterpret_cast<const uint8_t*>(f.address), f.bytes, f.address)) {
      std::string bytes;
      for (uint8_t b : l.bytes) bytes += fmt::format("{:02x} ", b);
      std::printf("  %lx:  %-30s %s\n", static_cast<unsigned long>(l.address), bytes.c_str(),
                  l.text.c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string context;
  bool ir = true, assembly = true;
  int opt = 2;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--dump" && i + 1 < argc) {
      context = argv[++i];
    } else if (a == "--opt" && i + 1 < argc) {
      opt = int(number("--opt", argv[++i], 1, 3));
    } else if (a == "--no-ir") {
      ir = false;
    } else if (a == "--no-asm") {
      assembly = false;
    } else if (a == "--help" || a == "-h") {
      std::fputs(std::string(kUsage).c_str(), stdout);
      return 0;
    } else {
      usage_error(fmt::format("unknown argument '{}'", a));
    }
  }
  if (context.empty()) usage_error("--dump CONTEXT is required");
  Options o = parse_context(context);
  try {
    Sender net({.mtu = o.mtu, .capture = false});
    exo_stack* s = net.stack();
    int fd = exo_socket(s);
    exo_setsockopt(s, fd, EXO_SO_TTL, o.ttl);
    exo_setsockopt(s, fd, EXO_SO_CHECKSUM, o.checksum);
    exo_setsockopt(s, fd, EXO_SO_DONTFRAG, o.dontfrag);
    if (o.connected) {
      exo_connect(s, fd, Sender::kPeer, 7);
      o.send.ip = 0;
    }
    o.send.fd = fd;
    Specializer sp({.opt_level = opt, .keep_ir = true});
    Declaration d = declare_send(s, o.send);
    std::printf("; context %s\n; declaration: %s(", context.c_str(), d.function.c_str());
    const char* params[] = {"s", "fd", "data", "len", "ip", "port"};
    for (size_t i = 0; i < d.args.size() && i < std::size(params); ++i) {
      std::string arg = d.args[i].is_static
                            ? fmt::format("S {} = 0x{:x}", params[i], d.args[i].value)
                            : fmt::format("D {}", params[i]);
      std::printf("%s%s", i ? ", " : "", arg.c_str());
    }
    std::printf(")\n");
    for (const Range& r : d.invariants)
      std::printf(";   invariant %-32s %4zu bytes at 0x%lx\n", r.what.c_str(), r.size,
                  static_cast<unsigned long>(r.address));
    auto residual = sp.specialize(d);
    auto generic = sp.generic("exo_sendto");
    if (ir) std::printf("\n-- residual LLVM IR\n%s", residual->ir.c_str());
    if (assembly) {
      std::printf("\n-- x86-64 machine code\n");
      print_code(*residual);
    }
    auto native = sp.native_code("exo_sendto");
    std::printf(
        "\n-- code size: generic %zu bytes (native: exo_sendto and the %zu functions it reaches",
        native.bytes, native.functions.size() - 1);
    std::printf("), %zu bytes (the bitcode through LLVM's -O2, nothing static)\n",
                generic->code_bytes);
    std::printf(
        "-- code size: specialized %zu bytes: %.1fx smaller than native, %.1fx than LLVM's "
        "-O2\n",
        residual->code_bytes, double(native.bytes) / double(residual->code_bytes),
        double(generic->code_bytes) / double(residual->code_bytes));
    std::printf("-- specialized in %.2f ms: %zu loads from invariant memory folded, %d rounds\n",
                residual->milliseconds, residual->folded_loads, residual->rounds);
  } catch (const Error& e) {
    std::fprintf(stderr, "exo-spec: %s\n", e.what());
    return 1;
  }
  return 0;
}
