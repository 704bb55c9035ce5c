// SPDX-License-Identifier: MIT
#include "exojit/runtime/pcap_io.h"

#include <pcap/pcap.h>

#include <memory>

#include "exojit/error.h"
#include "exojit/runtime/clock.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/nic.h"

namespace exojit::runtime {

namespace {
constexpr int kSnapLen = 65535;
}

PcapWriter::PcapWriter(const std::string& path) {
  pcap_t* p =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, kSnapLen, PCAP_TSTAMP_PRECISION_NANO);
  if (!p) fail("pcap: cannot create a capture handle");
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  if (!d) {
    std::string why = pcap_geterr(p);
    pcap_close(p);
    fail("pcap: cannot write {}: {}", path, why);
  }
  pcap_ = p;
  dumper_ = d;
}

PcapWriter::~PcapWriter() {
  if (dumper_) pcap_dump_close(static_cast<pcap_dumper_t*>(dumper_));
  if (pcap_) pcap_close(static_cast<pcap_t*>(pcap_));
}

void PcapWriter::write(const uint8_t* frame, size_t length, uint64_t time_ns) {
  pcap_pkthdr h{};
  h.ts.tv_sec = time_t(time_ns / 1000000000);
  h.ts.tv_usec = suseconds_t(time_ns % 1000000000);  // nanoseconds: the file's precision
  h.caplen = uint32_t(std::min<size_t>(length, kSnapLen));
  h.len = uint32_t(length);
  pcap_dump(static_cast<u_char*>(dumper_), &h, frame);
  ++packets_;
}

void PcapWriter::record_tx(Nic& nic) {
  nic.add_tx_tap([this](const uint8_t* f, size_t n, uint64_t t) { write(f, n, t); });
}

void PcapWriter::record_rx(Nic& nic) {
  nic.add_rx_tap([this](const uint8_t* f, size_t n, uint64_t t) { write(f, n, t); });
}

void PcapWriter::flush() {
  pcap_dump_flush(static_cast<pcap_dumper_t*>(dumper_));
}

std::vector<PcapPacket> read_pcap(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> p(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err),
      pcap_close);
  if (!p) fail("pcap: cannot read {}: {}", path, err);
  std::vector<PcapPacket> out;
  pcap_pkthdr* h;
  const u_char* data;
  int rc;
  while ((rc = pcap_next_ex(p.get(), &h, &data)) == 1)
    out.push_back(PcapPacket{uint64_t(h->ts.tv_sec) * 1000000000 + uint64_t(h->ts.tv_usec),
                             std::vector<uint8_t>(data, data + h->caplen)});
  if (rc == PCAP_ERROR) fail("pcap: {}: {}", path, pcap_geterr(p.get()));
  return out;
}

size_t replay_pcap(const std::string& path, Nic& nic, ReplayTiming timing) {
  std::vector<PcapPacket> packets = read_pcap(path);
  if (timing == ReplayTiming::Immediate) {
    for (const PcapPacket& p : packets) nic.receive_from_wire(p.bytes.data(), p.bytes.size());
    return packets.size();
  }
  VirtualClock& clock = nic.kernel().clock();
  uint64_t first = packets.empty() ? 0 : packets.front().time_ns;
  uint64_t base = clock.now();
  auto shared = std::make_shared<std::vector<PcapPacket>>(std::move(packets));
  for (size_t i = 0; i < shared->size(); ++i) {
    uint64_t at = base + ((*shared)[i].time_ns >= first ? (*shared)[i].time_ns - first : 0);
    clock.at(at, [shared, i, &nic] {
      nic.receive_from_wire((*shared)[i].bytes.data(), (*shared)[i].bytes.size());
    });
  }
  return shared->size();
}

}  // namespace exojit::runtime
