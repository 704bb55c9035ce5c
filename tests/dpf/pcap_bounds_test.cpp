// SPDX-License-Identifier: MIT
// The bounds compile_pcap puts on an expression before libpcap's compiler sees it (pcap.h,
// "Bounds"): each limit from both sides -- just under, accepted, libpcap's own program, and in an
// engine accepting exactly what pcap_offline_filter accepts, within a second of CPU; just over,
// an exojit::Error naming the limit -- for the disjunctions of every kind of primitive the
// weights were measured on. Then adversarial inputs (deep nesting, long tokens, NUL bytes, huge
// numbers, programs past BPF_MAXINSNS): each an Error or a filter that agrees with libpcap. And
// compile_pcap from several threads at once gives what it gives on one.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <time.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "expression_file.h"
#include "guarded.h"
#include "libpcap_reference.h"
#include "pcap_packets.h"

namespace exojit::dpf {
namespace {

const std::vector<std::vector<uint8_t>>& frames() {
  static const std::vector<std::vector<uint8_t>> out = [] {
    testing::FrameMaker m(41);
    std::vector<std::vector<uint8_t>> v;
    for (int i = 0; i < 400; ++i) v.push_back(m.next());
    return v;
  }();
  return out;
}

bool same(const std::vector<BpfInsn>& a, const std::vector<BpfInsn>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].code != b[i].code || a[i].jt != b[i].jt || a[i].jf != b[i].jf || a[i].k != b[i].k)
      return false;
  return true;
}

// The CPU a compilation at the limit may take: about 0.2 s measured; under ASan, whose malloc
// libpcap's thousands of allocations go through, up to 0.7 s.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kCpuLimit = 3.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kCpuLimit = 3.0;
#else
constexpr double kCpuLimit = 1.0;
#endif
#else
constexpr double kCpuLimit = 1.0;
#endif

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

// compile_pcap agrees with libpcap: both refuse, with libpcap's message, or the program is
// libpcap's and an engine accepts exactly where pcap_offline_filter does. Returns whether it
// compiled.
bool agrees(const std::string& expr) {
  SCOPED_TRACE(expr.size() > 120 ? expr.substr(0, 120) + "..." : expr);
  testing::LibpcapCompiled ref(expr);
  PcapFilter f;
  try {
    f = compile_pcap(expr);
  } catch (const Error& e) {
    EXPECT_FALSE(ref.ok) << e.what();
    if (!ref.ok) {
      EXPECT_EQ(std::string(e.what()), "pcap filter: " + ref.error);
    }
    return false;
  }
  EXPECT_TRUE(ref.ok) << ref.error;
  if (!ref.ok) return false;
  EXPECT_TRUE(same(f.program, ref.program()));
  Engine e;
  FilterId id = e.insert(f, {.owner = 1, .broad = true, .trusted = true});
  testing::GuardedPages guard(4096);
  size_t wrong = 0;
  for (const auto& p : frames()) {
    FilterId got = e.demux(guard.place(p.data(), p.size()), p.size());
    wrong += (got == id) != ref.accepts(p);
  }
  EXPECT_EQ(wrong, 0u) << (f.lifted.opaque ? "opaque: " + f.lifted.reason : "lifted");
  return true;
}

// compile_pcap refuses with an Error whose message names `limit`.
void refused(const std::string& expr, const std::string& limit) {
  SCOPED_TRACE(expr.size() > 120 ? expr.substr(0, 120) + "..." : expr);
  try {
    compile_pcap(expr);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(limit), std::string::npos) << e.what();
  }
}

std::string join(size_t n, const std::function<std::string(size_t)>& term,
                 const char* op = " or ") {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? op : "") + term(i);
  return s;
}

struct Shape {
  const char* name;
  size_t at_least;  // the documented count (pcap.h) that must stay accepted
  std::function<std::string(size_t)> term;
};

std::string addr(size_t i) {
  return fmt::format("10.0.{}.{}", i >> 8 & 255, i & 255);
}

// The disjunctions the weights were measured on, each at the most terms the cost allows, then
// one more.
TEST(DpfPcapBounds, CostLimitFromBothSides) {
  const Shape shapes[] = {
      {"port N", 125, [](size_t i) { return fmt::format("port {}", i + 1); }},
      // A bare value costs what its primitive does: `port 1 or 2` is `port 1 or port 2`.
      {"port N or M", 125,
       [](size_t i) { return i ? std::to_string(i + 1) : std::string("port 1"); }},
      {"portrange", 60, [](size_t i) { return fmt::format("portrange {}-{}", i + 1, i + 11); }},
      {"tcp port N", 250, [](size_t i) { return fmt::format("tcp port {}", i + 1); }},
      {"src or dst port N", 117, [](size_t i) { return fmt::format("src or dst port {}", i + 1); }},
      {"host A", 150, [](size_t i) { return "host " + addr(i); }},
      {"src host A", 333, [](size_t i) { return "src host " + addr(i); }},
      {"net N/24", 150, [](size_t i) { return fmt::format("net 10.{}.{}.0/24", i >> 8, i & 255); }},
      {"IPv6 host", 545, [](size_t i) { return fmt::format("host 2001:db8::{:x}", i + 1); }},
      {"vlan N", 857, [](size_t i) { return fmt::format("vlan {}", i % 4000 + 1); }},
      {"tcp", 2000, [](size_t) { return std::string("tcp"); }},
      {"ip[k] = v", 750, [](size_t i) { return fmt::format("ip[{}] = {}", i % 60, i & 255); }},
      {"proto N", 750, [](size_t i) { return fmt::format("proto {}", i % 250 + 1); }},
      {"connection", 64,
       [](size_t i) { return fmt::format("(tcp and host {} and port {})", addr(i), i + 1000); }},
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE(s.name);
    size_t n = 1;
    while (measure_pcap(join(n + 1, s.term)).cost <= kMaxPcapCost) ++n;
    EXPECT_GE(n, s.at_least);  // realistic filters keep fitting
    std::string under = join(n, s.term), over = join(n + 1, s.term);
    double t0 = thread_cpu_seconds();
    std::vector<BpfInsn> prog = compile_pcap_bpf(under);
    double cpu = thread_cpu_seconds() - t0;
    EXPECT_LT(cpu, kCpuLimit) << n << " terms";
    EXPECT_FALSE(prog.empty());
    EXPECT_TRUE(agrees(under));
    refused(over, "kMaxPcapCost");
    std::printf("%-18s %4zu terms accepted: cost %zu, %.3f s CPU, %zu instructions\n", s.name, n,
                measure_pcap(under).cost, cpu, prog.size());
  }
}

// Every expression of the corpus and of the everyday lists, and the everyday test's long
// generated disjunctions, are far inside the bounds.
TEST(DpfPcapBounds, RealisticExpressionsFit) {
  std::vector<std::string> all = testing::read_expressions(PCAP_CORPUS);
  for (const char* f : {"pcap_everyday.txt", "pcap_arithmetic_edges.txt", "pcap_odd_inputs.txt",
                        "pcap_random_primitives.txt"}) {
    std::vector<std::string> more = testing::read_expressions(std::string(PCAP_DATA_DIR "/") + f);
    all.insert(all.end(), more.begin(), more.end());
  }
  ASSERT_GT(all.size(), 650u);
  all.push_back(join(100, [](size_t i) { return "host " + addr(i); }));
  all.push_back(join(60, [](size_t i) { return fmt::format("port {}", 6000 + i); }));
  all.push_back("udp and (" + join(60, [](size_t i) { return fmt::format("port {}", 6000 + i); }) +
                ") and (" +
                join(40, [](size_t i) { return fmt::format("net 10.{}.0.0/16", i + 1); }) + ")");
  size_t most = 0;
  for (const std::string& x : all) {
    PcapSize m = measure_pcap(x);
    EXPECT_LE(m.cost, kMaxPcapCost) << x;
    EXPECT_LE(m.nesting, 64u) << x;
    EXPECT_LE(m.bytes, 4096u) << x;
    most = std::max(most, m.cost);
  }
  std::printf("%zu expressions, the costliest %zu (kMaxPcapCost %zu)\n", all.size(), most,
              kMaxPcapCost);
}

TEST(DpfPcapBounds, BytesLimitFromBothSides) {
  std::string under = "tcp" + std::string(kMaxPcapExpressionBytes - 3, ' ');
  ASSERT_EQ(under.size(), kMaxPcapExpressionBytes);
  EXPECT_TRUE(agrees(under));
  refused(under + " ", "kMaxPcapExpressionBytes");
  // A long token: one word, just under and over.
  std::string word = "host " + std::string(kMaxPcapExpressionBytes - 5, 'a');
  agrees(word);  // libpcap: unknown host
  refused(word + "a", "kMaxPcapExpressionBytes");
}

TEST(DpfPcapBounds, NestingLimitFromBothSides) {
  auto parens = [](size_t n) { return std::string(n, '(') + "tcp" + std::string(n, ')'); };
  EXPECT_TRUE(agrees(parens(kMaxPcapNesting)));
  refused(parens(kMaxPcapNesting + 1), "kMaxPcapNesting");
  refused(parens(100000), "kMaxPcapExpressionBytes");  // the first limit it passes
  auto loads = [](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += "ether[";
    return s + "0" + std::string(n, ']') + " = 0";
  };
  agrees(loads(kMaxPcapNesting));  // libpcap runs out of registers, or compiles it
  refused(loads(kMaxPcapNesting + 1), "kMaxPcapNesting");
  // Parentheses and brackets together, closed and reopened: only the depth counts.
  EXPECT_EQ(measure_pcap("((tcp)) and (ip[(ip[0] & 0xf)] = 1)").nesting, 4u);
  EXPECT_EQ(measure_pcap(")))tcp").nesting, 0u);
  agrees(")))tcp");
}

TEST(DpfPcapBounds, AdversarialInputsGetAnErrorOrAFilterThatAgrees) {
  const std::string exprs[] = {
      std::string(5000, '!') + "tcp",
      [] {
        std::string s;
        for (int i = 0; i < 2000; ++i) s += "not ";
        return s + "tcp";
      }(),
      "ip[0] = " + std::string(1000, '9'),
      "ip[0] = 0x" + std::string(60000, '0') + "1",
      "port " + std::string(60000, 'x'),
      "ether host " + std::string(60000, 'f'),
      "ip[0] = 4294967296",
      "ip[0] = 4294967295",
      "ether[0:4294967295]",
      "ether[0:4294967295] = 0",
      "ether[4294967295] = 0",
      "ether[4294967295:4] = 0",
      "len > 99999999999999999999",
      "vlan 4294967296",
      "mpls 4294967295",
      "ip[-1] = 0",
      "ip[0] = -2147483648",
      "ip[0:3] = 1",
      "ip[0] / 0 = 1",
      "ip[0] % 0 = 1",
      "ip[0] << 4294967295 = 0",
      "portrange 65535-0",
      "\xff\xfe\x80 tcp",
      "tcp \x01\x02",
      // libpcap issue #112: its optimizer looped on this before 1.x; 1.10 compiles it.
      "(ip[12:4] = 0x0a0a0a0a or ip[16:4] = 0x0a0a0a0a) and (not ((ip[12:4] = 0x0a0a0a0b or "
      "ip[16:4] = 0x0a0a0a0b)))",
      // A program past BPF_MAXINSNS (4096): opaque (the lift takes 4096), run by the JIT. (Not
      // 34 or more `ip6 protochain` alternatives: the JIT rejects a packet after 64 backward
      // jumps, as libpcap >= 1.11 does, where this test's libpcap 1.10 goes on.)
      join(700, [](size_t i) { return fmt::format("vlan {}", i + 1); }),
  };
  for (const std::string& x : exprs) agrees(x);
  PcapFilter big = compile_pcap(exprs[std::size(exprs) - 1]);
  EXPECT_GT(big.program.size(), 4096u);
  EXPECT_TRUE(big.lifted.opaque);
  // Past the cost, however cheap each token: 6,000 `!` and `-`.
  refused(std::string(kMaxPcapCost, '!') + "tcp", "kMaxPcapCost");
  refused(std::string(kMaxPcapCost, '-') + "ip[0] = 1", "kMaxPcapCost");
  // NUL bytes anywhere in the string_view.
  for (std::string_view x : {std::string_view("tcp\0 or udp", 11), std::string_view("\0", 1),
                             std::string_view("tcp\0", 4), std::string_view("\0tcp", 4)})
    refused(std::string(x), "NUL byte");
}

TEST(DpfPcapBounds, RefusalsLeaveTheCompilerAsItWas) {
  std::vector<BpfInsn> before = compile_pcap_bpf("tcp port 80 and host 10.0.0.1");
  for (const std::string& bad :
       {std::string("tcp port"), std::string(300, '('), std::string(70000, ' '),
        join(200, [](size_t i) { return fmt::format("port {}", i + 1); }),
        std::string("host nosuchhostname.invalid"), std::string("tcp\0", 4)})
    EXPECT_THROW(compile_pcap(bad), Error);
  EXPECT_TRUE(same(compile_pcap_bpf("tcp port 80 and host 10.0.0.1"), before));
}

// libpcap's compiler kept state in globals before 1.8 and a pcap_t is not for concurrent use:
// compile_pcap compiles one expression at a time. Several threads at once get what one gets.
TEST(DpfPcapBounds, ThreadsCompilingAtOnceGetWhatOneThreadGets) {
  std::vector<std::string> exprs = {
      "tcp port 80",
      "udp and (port 53 or port 67)",
      "host 10.0.0.1 and not port 22",
      "ip6 and tcp[tcpflags] & tcp-syn != 0",
      "vlan 100 and tcp port 80",
      "ip6 protochain 6",
      "tcp port",
      "host nosuchhostname.invalid",
      "ip[2:2] - ((ip[0]&0xf)<<2) > 40",
      join(60, [](size_t i) { return fmt::format("port {}", 6000 + i); }),
      join(100, [](size_t i) { return "host " + addr(i); }),
      std::string(300, '(') + "tcp" + std::string(300, ')'),
      "ether[0:4294967295] = 0",
      "portrange 6000-6010 or net 192.168.0.0/16",
  };
  auto result = [](const std::string& x) {
    try {
      std::vector<BpfInsn> p = compile_pcap_bpf(x);
      std::string s;
      for (const BpfInsn& i : p) s += fmt::format("{:x}.{:x}.{:x}.{:x};", i.code, i.jt, i.jf, i.k);
      return s;
    } catch (const Error& e) {
      return std::string("error: ") + e.what();
    }
  };
  std::vector<std::string> want;
  for (const std::string& x : exprs) want.push_back(result(x));
  constexpr size_t kThreads = 6;
  std::vector<std::vector<std::string>> got(kThreads, std::vector<std::string>(exprs.size()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (size_t j = 0; j < exprs.size(); ++j) {
          size_t k = (j + t * 5 + size_t(round)) % exprs.size();  // each thread its own order
          got[t][k] = result(exprs[k]);
        }
    });
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < kThreads; ++t)
    for (size_t k = 0; k < exprs.size(); ++k) EXPECT_EQ(got[t][k], want[k]) << exprs[k];
}

}  // namespace
}  // namespace exojit::dpf
