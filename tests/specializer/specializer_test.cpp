// SPDX-License-Identifier: MIT
// The specializer: the embedded bitcode, declarations, the cache, and the residual code's
// safety check.
#include "exojit/specializer/specializer.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "exojit/error.h"
#include "exojit/specializer/send.h"
#include "sender.h"

namespace exojit::specializer {
namespace {

using testing::Sender;

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Specializer, EmbedsTheLibosSendPathAsBitcode) {
  Specializer sp;
  auto f = sp.functions();
  for (const char* name : {"exo_sendto", "exo_cksum_add", "exo_route_lookup", "exo_arp_lookup"})
    EXPECT_TRUE(has(f, name)) << name;
  // The layers' internal entry points keep their C++ names.
  for (const char* name : {"exo_ip_output", "exo_eth_output_ip", "exo_buf_alloc"})
    EXPECT_TRUE(std::any_of(f.begin(), f.end(), [&](const std::string& n) {
      return n.find(name) != n.npos;
    })) << name;
}

TEST(Specializer, SpecializedCodeIsSmallerThanTheGenericCode) {
  Sender net;
  Specializer sp;
  int fd = exo_socket(net.stack());
  auto r = sp.specialize(
      declare_send(net.stack(), {.fd = fd, .ip = Sender::kPeer, .port = 7, .adu = 64}));
  auto g = sp.generic("exo_sendto");
  EXPECT_GT(r->folded_loads, 10u);
  EXPECT_GT(r->code_bytes, 0u);
  EXPECT_GT(g->code_bytes, 3 * r->code_bytes);
  EXPECT_NE(r->entry, nullptr);
  // The generic path that runs: the native code of exo_sendto and what it reaches.
  Specializer::NativeCode native = sp.native_code("exo_sendto");
  EXPECT_GT(native.functions.size(), 5u);
  EXPECT_GT(native.bytes, 3 * r->code_bytes);
  EXPECT_THROW(sp.native_code("exo_frobnicate"), Error);
}

// Partial evaluation leaves one function that does only what depends on the data: no libOS
// function is left out of line, no lookup, no ARP miss path; the only calls are the kernel's
// buffer mapping and transmit (each once), plus LLVM intrinsics (the payload's copy).
TEST(Specializer, ResidualCodeKeepsOnlyTheDataDependentWork) {
  Sender net;
  Specializer sp({.keep_ir = true});
  int fd = exo_socket(net.stack());
  auto r = sp.specialize(
      declare_send(net.stack(), {.fd = fd, .ip = Sender::kPeer, .port = 7, .adu = 64}));
  ASSERT_EQ(r->functions.size(), 1u) << r->ir;
  size_t calls = 0, defines = 0;
  for (size_t at = 0; (at = r->ir.find('\n', at)) != std::string::npos; ++at) {
    std::string line = r->ir.substr(at + 1, r->ir.find('\n', at + 1) - at - 1);
    if (line.rfind("define ", 0) == 0) ++defines;
    if (line.find(" call ") != std::string::npos && line.find("@llvm.") == std::string::npos)
      ++calls;
  }
  EXPECT_EQ(defines, 1u) << r->ir;
  EXPECT_EQ(calls, 2u) << r->ir;
}

TEST(Specializer, TwoSpecializersShareTheJit) {
  Sender net;
  Specializer a, b({.host_cpu = false});
  int fd = exo_socket(net.stack());
  Declaration d = declare_send(net.stack(), {.fd = fd, .ip = Sender::kPeer, .port = 7});
  auto ra = a.specialize(d), rb = b.specialize(d);
  EXPECT_NE(ra->entry, rb->entry);
}

TEST(Specializer, CacheReturnsTheSameSpecialization) {
  Sender net;
  Specializer sp;
  int fd = exo_socket(net.stack());
  SendContext c{.fd = fd, .ip = Sender::kPeer, .port = 7, .adu = 64};
  auto a = sp.specialize(declare_send(net.stack(), c));
  auto b = sp.specialize(declare_send(net.stack(), c));
  EXPECT_EQ(a, b);
  EXPECT_EQ(sp.stats().specialized, 1u);
  EXPECT_EQ(sp.stats().cache_hits, 1u);
  // Another static value, or other invariant contents: another specialization.
  c.adu = 65;
  EXPECT_NE(sp.specialize(declare_send(net.stack(), c)), a);
  c.adu = 64;
  ASSERT_EQ(exo_setsockopt(net.stack(), fd, EXO_SO_TTL, 9), 0);
  EXPECT_NE(sp.specialize(declare_send(net.stack(), c)), a);
  EXPECT_EQ(sp.stats().specialized, 3u);
  sp.forget(a->key);
  EXPECT_EQ(sp.stats().cached, 2u);
}

TEST(Specializer, RefusesResidualCodeThatWritesInvariantMemory) {
  Sender net;
  Specializer sp;
  int fd = exo_socket(net.stack());
  exo_sock* k = &net.stack()->sockets[fd];
  // exo_bind writes the socket it would have us believe is invariant.
  Declaration d{"exo_bind", {S(net.stack()), S(fd), S(uint16_t(4000))}, {invariant(k, "socket")}};
  try {
    sp.specialize(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory declared invariant"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(k->bound, 0);
}

TEST(Specializer, BadDeclarationsAreClearErrors) {
  Sender net;
  Specializer sp;
  auto message = [&](const Declaration& d) {
    try {
      sp.specialize(d);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"exo_frobnicate", {}, {}}).find("defines no function @exo_frobnicate"),
            std::string::npos);
  EXPECT_NE(message({"exo_sendto", {D, D}, {}}).find("takes 6 parameters, the declaration gives 2"),
            std::string::npos);
  EXPECT_NE(message({"exo_sendto", {D, D, D, D, D, D}, {invariant(nullptr, 4, "null")}})
                .find("is empty or wraps"),
            std::string::npos);
  EXPECT_THROW(Specializer({.opt_level = 7}), Error);
}

TEST(Specializer, UnspecializableContextsAreClearErrors) {
  Sender net;
  Specializer sp;
  exo_stack* s = net.stack();
  int fd = exo_socket(s);
  auto message = [&](const SendContext& c) {
    try {
      declare_send(s, c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({.fd = 63, .ip = Sender::kPeer, .port = 7}).find("socket 63 is not open"),
            std::string::npos);
  EXPECT_NE(message({.fd = fd}).find("has no destination"), std::string::npos);
  EXPECT_NE(message({.fd = fd, .ip = libos::ipv4(10, 0, 0, 9), .port = 7})
                .find("next hop 10.0.0.9 is not resolved"),
            std::string::npos);
  EXPECT_NE(message({.fd = fd, .ip = Sender::kPeer, .port = 7, .adu = 70000}).find("ADU"),
            std::string::npos);
}

}  // namespace
}  // namespace exojit::specializer
