// dpf-match: demultiplexes the packets of a capture file with DPF.
//
//   dpf-match FILTERS PCAP
//
// FILTERS holds one filter per line, in DPF syntax or in the tcpdump syntax after a `pcap:`
// prefix; a filter's id is its line number (from 1; blank and `#` comment lines count). PCAP is
// a capture file of Ethernet frames (read with libpcap). Prints one line per packet: its number
// (from 1) and the id of the filter that accepts it, 0 when none does; when several accept, the
// most specific wins (engine.h).
#include <fmt/format.h>
#include <pcap/pcap.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter_file.h"
#include "exojit/error.h"

namespace {

constexpr const char* kUsage = "usage: dpf-match FILTERS PCAP\n";

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) exojit::fail("cannot open {}: {}", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc != 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  try {
    exojit::dpf::Engine engine;
    try {
      exojit::dpf::insert_all(engine, exojit::dpf::parse_filter_file(read_file(argv[1])));
    } catch (const exojit::Error& e) {
      exojit::fail("{}: {}", argv[1], e.what());
    }
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t* pcap = pcap_open_offline(argv[2], err);
    if (!pcap) exojit::fail("{}: {}", argv[2], err);
    if (pcap_datalink(pcap) != DLT_EN10MB) {
      std::string name = pcap_datalink_val_to_name(pcap_datalink(pcap))
                             ? pcap_datalink_val_to_name(pcap_datalink(pcap))
                             : "unknown";
      pcap_close(pcap);
      exojit::fail("{}: link type {}, not Ethernet", argv[2], name);
    }
    pcap_pkthdr* header;
    const u_char* data;
    unsigned long n = 0;
    int rc;
    std::string out;
    while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
      // Only the captured bytes exist: the filters see caplen bytes.
      out += fmt::format("{} {}\n", ++n, engine.demux(data, header->caplen));
      if (out.size() > 1 << 16) std::fputs(out.c_str(), stdout), out.clear();
    }
    std::fputs(out.c_str(), stdout);
    std::string why = rc == PCAP_ERROR ? pcap_geterr(pcap) : "";
    pcap_close(pcap);
    if (rc == PCAP_ERROR) exojit::fail("{}: {}", argv[2], why);
  } catch (const exojit::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "dpf-match: %s\n", e.what());
    return 1;
  }
  return 0;
}
