// SPDX-License-Identifier: MIT
// The command-line tools: dpf-match on a capture file written with libpcap (its answers checked
// against libpcap and the filters evaluated one by one), and vdump --dpf.
#include <exojit/dpf/filter.h>
#include <exojit/dpf/pcap.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "packets.h"

namespace exojit::dpf {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return out + (status == 0 ? "" : "exit status " + std::to_string(status) + "\n");
}

// Disjoint filters (at most one accepts a packet), by line; blank and comment lines count.
const char* kFilters[] = {
    "# web and DNS",
    "(12:16 == 0x800) && (23:8 == 6) && SHIFT(14) && SHIFT((0:8 & 0xf) << 2) && (2:16 == 80)",
    "pcap: udp dst port 53",
    "",
    "pcap: arp",
    "(12:16 == 0x86dd) && (20:8 == 6) && (56:16 == 443)",
};

TEST(DpfTools, DpfMatchNamesTheAcceptingLine) {
  fs::path dir = fs::temp_directory_path() / ("dpf_tools_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "filters.txt") << [] {
    std::string s;
    for (const char* l : kFilters) s += std::string(l) + "\n";
    return s;
  }();
  // A capture: every kind of generated packet.
  std::mt19937_64 rng(4);
  std::vector<Bytes> packets;
  for (int i = 0; i < 300; ++i) packets.push_back(testing::random_packet(rng));
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* dump = pcap_dump_open(dead, (dir / "capture.pcap").c_str());
  ASSERT_NE(dump, nullptr) << pcap_geterr(dead);
  for (const Bytes& p : packets) {
    pcap_pkthdr h{};
    h.caplen = h.len = bpf_u_int32(p.size());
    pcap_dump(reinterpret_cast<u_char*>(dump), &h, p.data());
  }
  pcap_dump_close(dump);
  // Expected: line 2 and 6 evaluated on their own, lines 3 and 5 by libpcap.
  std::vector<bpf_program> bpf(2);
  ASSERT_EQ(pcap_compile(dead, &bpf[0], "udp dst port 53", 1, PCAP_NETMASK_UNKNOWN), 0);
  ASSERT_EQ(pcap_compile(dead, &bpf[1], "arp", 1, PCAP_NETMASK_UNKNOWN), 0);
  Filter web = parse_filter(kFilters[1]), v6 = parse_filter(kFilters[5]);
  std::string want;
  size_t matched = 0;
  for (size_t i = 0; i < packets.size(); ++i) {
    const Bytes& p = packets[i];
    pcap_pkthdr h{};
    h.caplen = h.len = bpf_u_int32(p.size());
    int line = matches(web, p.data(), p.size())             ? 2
               : pcap_offline_filter(&bpf[0], &h, p.data()) ? 3
               : pcap_offline_filter(&bpf[1], &h, p.data()) ? 5
               : matches(v6, p.data(), p.size())            ? 6
                                                            : 0;
    matched += line != 0;
    want += std::to_string(i + 1) + " " + std::to_string(line) + "\n";
  }
  for (bpf_program& b : bpf) pcap_freecode(&b);
  pcap_close(dead);
  EXPECT_GT(matched, 40u);
  EXPECT_EQ(run(std::string(DPF_MATCH) + " " + (dir / "filters.txt").string() + " " +
                (dir / "capture.pcap").string()),
            want);
  // Errors: a bad filter names its line; a missing capture file.
  std::ofstream(dir / "bad.txt") << "# ok\n(12:16 == 0x800)\npcap: vlan 3 and\n";
  std::string bad = (dir / "bad.txt").string();
  EXPECT_EQ(
      run(std::string(DPF_MATCH) + " " + bad + " " + (dir / "capture.pcap").string() + " 2>&1"),
      "dpf-match: " + bad + ": line 3: pcap filter: can't parse filter expression: syntax error\n" +
          "exit status 256\n");
  EXPECT_NE(run(std::string(DPF_MATCH) + " " + (dir / "filters.txt").string() + " " +
                (dir / "missing.pcap").string() + " 2>&1")
                .find("dpf-match: " + (dir / "missing.pcap").string() + ": "),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(DpfTools, VdumpPrintsTrieAndCode) {
  std::string out = run(std::string(VDUMP) + " --dpf " + EXAMPLES "/table3.txt");
  EXPECT_NE(out.find("6 filters, merged trie:"), std::string::npos) << out;
  EXPECT_NE(out.find("26:32 == one of 4 keys (hash table)"), std::string::npos) << out;
  EXPECT_NE(out.find("func @dpf_demux(%pkt: p t0, %len: u64 t1) -> u64 {"), std::string::npos);
  EXPECT_NE(out.find("movbe"), std::string::npos);  // the disassembly
  EXPECT_NE(run(std::string(VDUMP) + " --dpf /nonexistent 2>&1").find("cannot open"),
            std::string::npos);
}

}  // namespace
}  // namespace exojit::dpf
