// SPDX-License-Identifier: MIT
// dpf-match: demultiplexes the packets of a capture file with DPF.
//
//   dpf-match [-w OUT.pcap] FILTERS PCAP
//   dpf-match [-w OUT.pcap] -e EXPRESSION PCAP
//
// FILTERS holds one filter per line, in DPF syntax or in the tcpdump syntax after a `pcap:`
// prefix; a filter's id is its line number (from 1; blank and `#` comment lines count). With -e,
// one tcpdump expression (as tcpdump takes it) is the only filter, id 1. Any expression libpcap
// compiles for Ethernet: lifted to DPF filters, or run as its classic-BPF program (engine.h,
// insert_bpf). PCAP is a capture file of Ethernet frames (read with libpcap). Prints one line
// per packet: its number (from 1) and the id of the filter that accepts it, 0 when none does;
// when several accept, the most specific wins (engine.h). -w writes the accepted packets, with
// their capture headers, to OUT.pcap (as `tcpdump -w` does).
#include <fmt/format.h>
#include <pcap/pcap.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter_file.h"
#include "exojit/dpf/pcap.h"
#include "exojit/error.h"

namespace {

constexpr const char* kUsage =
    "usage: dpf-match [-w OUT.pcap] FILTERS PCAP\n"
    "       dpf-match [-w OUT.pcap] -e EXPRESSION PCAP\n";

struct Options {
  std::string filters, expression, capture, write;
  bool has_expression = false;
};

// Nothing but the forms of kUsage (false: a usage error).
bool parse_options(int argc, char** argv, Options* o) {
  std::vector<std::string> operands;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-e" || a == "-w") && i + 1 < argc) {
      (a == "-e" ? o->expression : o->write) = argv[++i];
      o->has_expression = o->has_expression || a == "-e";
    } else if (a.size() > 1 && a[0] == '-') {
      return false;
    } else {
      operands.push_back(a);
    }
  }
  if (operands.size() != (o->has_expression ? 1u : 2u)) return false;
  if (!o->has_expression) o->filters = operands[0];
  o->capture = operands.back();
  return true;
}

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
  Options o;
  if (!parse_options(argc, argv, &o)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  pcap_t* pcap = nullptr;
  pcap_dumper_t* out_file = nullptr;
  auto close = [&] {
    if (out_file) pcap_dump_close(out_file), out_file = nullptr;
    if (pcap) pcap_close(pcap), pcap = nullptr;
  };
  try {
    exojit::dpf::Engine engine;
    if (o.has_expression) {
      try {
        // As a filter file inserts its lines: one user's choice, broad allowed.
        engine.insert(exojit::dpf::compile_pcap(o.expression), {.share = 1, .broad = true});
      } catch (const exojit::Error& e) {
        exojit::fail("-e: {}", e.what());
      }
    } else {
      try {
        exojit::dpf::insert_all(engine,
                                exojit::dpf::parse_filter_file(read_file(o.filters.c_str())));
      } catch (const exojit::Error& e) {
        exojit::fail("{}: {}", o.filters, e.what());
      }
    }
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap = pcap_open_offline(o.capture.c_str(), err);
    if (!pcap) exojit::fail("{}: {}", o.capture, err);
    if (pcap_datalink(pcap) != DLT_EN10MB) {
      const char* name = pcap_datalink_val_to_name(pcap_datalink(pcap));
      exojit::fail("{}: link type {}, not Ethernet", o.capture, name ? name : "unknown");
    }
    if (!o.write.empty()) {
      out_file = pcap_dump_open(pcap, o.write.c_str());
      if (!out_file) exojit::fail("{}: {}", o.write, pcap_geterr(pcap));
    }
    pcap_pkthdr* header;
    const u_char* data;
    unsigned long n = 0;
    int rc;
    std::string out;
    while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
      // Only the captured bytes exist: the filters see caplen bytes.
      exojit::dpf::FilterId id = engine.demux(data, header->caplen);
      out += fmt::format("{} {}\n", ++n, id);
      if (id != 0 && out_file) pcap_dump(reinterpret_cast<u_char*>(out_file), header, data);
      if (out.size() > 1 << 16) std::fputs(out.c_str(), stdout), out.clear();
    }
    std::fputs(out.c_str(), stdout);
    if (rc == PCAP_ERROR) exojit::fail("{}: {}", o.capture, pcap_geterr(pcap));
    if (out_file && (pcap_dump_flush(out_file) != 0 || std::ferror(pcap_dump_file(out_file))))
      exojit::fail("{}: write failed", o.write);
    close();
  } catch (const exojit::Error& e) {
    close();
    std::fflush(stdout);
    std::fprintf(stderr, "dpf-match: %s\n", e.what());
    return 1;
  }
  return 0;
}
