// SPDX-License-Identifier: MIT
// exo-sim: two simulated hosts running the libOS over a modelled link. A UDP ping-pong, then a
// bulk transfer; prints round-trip latency (virtual and host time), throughput, and the counters
// of every ring, NIC and link, drops included. --pcap FILE writes the wire (host A's side).
// --queues N gives each NIC N receive queues (RSS); --flows F spreads the bulk transfer over F
// sockets (flows), and the report shows how RSS spread the frames over the queues.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "exojit/error.h"
#include "exojit/libos/two_hosts.h"
#include "exojit/runtime/pcap_io.h"

using namespace exojit::runtime;
using exojit::libos::TwoHosts;

namespace {

struct Options {
  int rounds = 1000;
  uint32_t payload = 64;
  uint64_t bulk = 4 << 20;
  uint32_t datagram = 8192;
  double latency_us = 10;
  double bandwidth_mbps = 1000;
  double loss = 0;
  uint16_t mtu = 1500;
  bool direct = false;
  uint32_t queues = 1;
  uint32_t flows = 1;
  std::string pcap;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: exo-sim [options]\n"
               "  --rounds N          ping-pong round trips (default 1000)\n"
               "  --payload BYTES     ping-pong payload (default 64)\n"
               "  --bulk BYTES        bulk transfer size (default 4194304; 0: none)\n"
               "  --datagram BYTES    bulk datagram size (default 8192: fragmented)\n"
               "  --latency-us X      one-way link latency (default 10)\n"
               "  --bandwidth-mbps X  link bandwidth (default 1000; 0: unlimited)\n"
               "  --loss P            frame loss probability (default 0)\n"
               "  --mtu N             IP MTU (default 1500)\n"
               "  --dma direct|kernel NIC receive DMA: AN2-style or Ethernet-style (default)\n"
               "  --queues N          receive queues per NIC, steered by RSS (default 1; 1..64)\n"
               "  --flows N           bulk transfer over N sockets (default 1; 1..32)\n"
               "  --pcap FILE         write host A's wire (both directions) to FILE\n");
}

[[noreturn]] void bad(const std::string& why) {
  std::fprintf(stderr, "exo-sim: %s\n", why.c_str());
  usage(stderr);
  std::exit(2);
}

double number(const char* opt, const char* v) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (!*v || *end || d < 0) bad(std::string(opt) + ": not a non-negative number: '" + v + "'");
  return d;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) bad("unknown option or missing value: '" + a + "'");
    const char* v = argv[++i];
    if (a == "--rounds")
      o.rounds = int(number(argv[i - 1], v));
    else if (a == "--payload")
      o.payload = uint32_t(number(argv[i - 1], v));
    else if (a == "--bulk")
      o.bulk = uint64_t(number(argv[i - 1], v));
    else if (a == "--datagram")
      o.datagram = uint32_t(number(argv[i - 1], v));
    else if (a == "--latency-us")
      o.latency_us = number(argv[i - 1], v);
    else if (a == "--bandwidth-mbps")
      o.bandwidth_mbps = number(argv[i - 1], v);
    else if (a == "--loss")
      o.loss = number(argv[i - 1], v);
    else if (a == "--mtu")
      o.mtu = uint16_t(number(argv[i - 1], v));
    else if (a == "--dma") {
      if (std::string(v) != "direct" && std::string(v) != "kernel") bad("--dma: direct or kernel");
      o.direct = std::string(v) == "direct";
    } else if (a == "--queues")
      o.queues = uint32_t(number(argv[i - 1], v));
    else if (a == "--flows")
      o.flows = uint32_t(number(argv[i - 1], v));
    else if (a == "--pcap")
      o.pcap = v;
    else
      bad("unknown option '" + a + "'");
  }
  if (o.payload == 0 || o.payload > 65507) bad("--payload: 1..65507");
  if (o.datagram == 0 || o.datagram > 65507) bad("--datagram: 1..65507");
  if (o.loss > 1) bad("--loss: a probability, 0..1");
  if (o.queues < 1 || o.queues > 64) bad("--queues: 1..64");
  if (o.flows < 1 || o.flows > 32) bad("--flows: 1..32");
  return o;
}

void print_counters(const char* name, TwoHosts& net, exojit::libos::Host& h, Nic& nic) {
  const NicCounters& n = nic.counters();
  const RingCounters& r = h.ring().counters;
  const exo_counters& s = h.stack()->counters;
  const LinkCounters& l = net.link.counters(nic);
  std::printf("host %s\n", name);
  std::printf(
      "  nic  rx %llu frames (%llu bytes), delivered %llu; drops: nic ring full %llu, "
      "runt %llu, oversize %llu, no owner %llu, owner ring %llu; tx %llu frames, drops: "
      "ring full %llu, bad %llu\n",
      (unsigned long long)n.rx_frames, (unsigned long long)n.rx_bytes,
      (unsigned long long)n.rx_delivered, (unsigned long long)n.rx_drops_ring_full,
      (unsigned long long)n.rx_drops_runt, (unsigned long long)n.rx_drops_oversize,
      (unsigned long long)n.rx_drops_no_owner, (unsigned long long)n.rx_drops_owner_ring,
      (unsigned long long)n.tx_frames, (unsigned long long)n.tx_drops_ring_full,
      (unsigned long long)n.tx_drops_bad);
  std::printf(
      "  ring delivered %llu (%llu bytes); drops: full %llu, bad buffer %llu, too big %llu\n",
      (unsigned long long)r.delivered, (unsigned long long)r.bytes,
      (unsigned long long)r.drops_full, (unsigned long long)r.drops_bad_buffer,
      (unsigned long long)r.drops_too_big);
  if (nic.queues() > 1)
    for (uint32_t q = 0; q < nic.queues(); ++q) {
      NicCounters c = nic.queue_counters(q);
      std::printf(
          "  queue %u rx %llu frames, delivered %llu; drops: ring full %llu, no owner %llu, "
          "owner ring %llu\n",
          q, (unsigned long long)c.rx_frames, (unsigned long long)c.rx_delivered,
          (unsigned long long)c.rx_drops_ring_full, (unsigned long long)c.rx_drops_no_owner,
          (unsigned long long)c.rx_drops_owner_ring);
    }
  std::printf("  link sent %llu, delivered %llu, lost %llu\n", (unsigned long long)l.sent,
              (unsigned long long)l.delivered, (unsigned long long)l.lost);
  std::printf(
      "  stack ip rx %llu, fragments sent %llu / received %llu / reassembled %llu, "
      "udp rx %llu, socket queue full %llu, arp requests %llu, tx ring full %llu, "
      "no buffer %llu, bad (ip %llu, udp %llu, frag %llu)\n",
      (unsigned long long)s.ip_rx, (unsigned long long)s.tx_fragments,
      (unsigned long long)s.frag_rx, (unsigned long long)s.frag_reassembled,
      (unsigned long long)s.udp_rx, (unsigned long long)s.udp_queue_full,
      (unsigned long long)s.arp_requests_sent, (unsigned long long)s.tx_drops_ring_full,
      (unsigned long long)s.tx_no_buffer,
      (unsigned long long)(s.ip_bad_header + s.ip_bad_checksum + s.ip_bad_length),
      (unsigned long long)(s.udp_bad_length + s.udp_bad_checksum), (unsigned long long)s.frag_bad);
}

int run(const Options& o) {
  exojit::libos::TwoHostsConfig c;
  c.link.latency_ns = uint64_t(o.latency_us * 1000);
  c.link.bits_per_second = uint64_t(o.bandwidth_mbps * 1e6);
  c.link.loss = o.loss;
  c.mtu = o.mtu;
  c.dma = o.direct ? DmaMode::Direct : DmaMode::KernelBuffers;
  c.queues = o.queues;
  TwoHosts net(c);
  std::unique_ptr<PcapWriter> pcap;
  if (!o.pcap.empty()) {
    pcap = std::make_unique<PcapWriter>(o.pcap);
    pcap->record_tx(net.nic_a);
    pcap->record_rx(net.nic_a);
  }
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b), sbulk = exo_socket(b);
  exo_bind(b, sb, 7);
  exo_bind(b, sbulk, 9);
  exo_connect(a, sa, TwoHosts::kIpB, 7);
  for (int fd : {sb, sbulk}) exo_setsockopt(b, fd, EXO_SO_NONBLOCK, 1);
  exo_setsockopt(a, sa, EXO_SO_NONBLOCK, 1);

  // B: echo on port 7, count on port 9.
  uint64_t bulk_received = 0, bulk_datagrams = 0, last_bulk_ns = 0;
  std::vector<uint8_t> buf(65536);
  net.env_b.set_body([&](Environment&) {
    uint32_t ip;
    uint16_t port;
    int n;
    while ((n = exo_recvfrom(b, sb, buf.data(), uint32_t(buf.size()), &ip, &port)) > 0)
      exo_sendto(b, sb, buf.data(), uint32_t(n), ip, port);
    while ((n = exo_recvfrom(b, sbulk, buf.data(), uint32_t(buf.size()), nullptr, nullptr)) > 0) {
      bulk_received += uint64_t(n);
      ++bulk_datagrams;
      last_bulk_ns = net.clock.now();
    }
    return Step::Block;
  });

  // A: the ping-pong. A lost frame (with --loss) is retried after a timeout.
  std::vector<uint8_t> msg(o.payload, 0x5a);
  int done = 0, lost = 0;
  bool started = false;
  uint64_t sent_at = 0, v_total = 0, v_min = ~0ull, v_max = 0, timeout = 0;
  auto send_ping = [&] {
    sent_at = net.clock.now();
    exo_sendto(a, sa, msg.data(), o.payload, 0, 0);
    timeout = sent_at + 1000000 + 4 * c.link.latency_ns;  // 1 ms + 4 one-way latencies
    net.kernel_a.wake_at(net.env_a, timeout);
  };
  net.env_a.set_body([&](Environment&) {
    if (!started) {
      started = true;
      send_ping();
      return Step::Block;
    }
    std::vector<uint8_t> back(65536);
    if (exo_recvfrom(a, sa, back.data(), uint32_t(back.size()), nullptr, nullptr) > 0) {
      uint64_t rtt = net.clock.now() - sent_at;
      v_total += rtt, v_min = std::min(v_min, rtt), v_max = std::max(v_max, rtt);
      if (++done == o.rounds) return Step::Exit;
      send_ping();
    } else if (net.clock.now() >= timeout) {
      ++lost;
      send_ping();
    }
    return Step::Block;
  });
  auto h0 = std::chrono::steady_clock::now();
  net.scheduler.run([&] { return done >= o.rounds; });
  double host_ns = double(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - h0)
          .count());
  std::printf("ping-pong: %d round trips of %u bytes (%d retried after a loss)\n", done, o.payload,
              lost);
  if (done)
    std::printf(
        "  round trip, virtual: mean %.2f us, min %.2f us, max %.2f us\n"
        "  round trip, host time: %.0f ns (the simulation's own cost)\n",
        double(v_total) / done / 1000, double(v_min) / 1000, double(v_max) / 1000, host_ns / done);

  // Bulk: A sends as fast as its NIC's transmit ring allows; when it is full, A sleeps until
  // about one frame has left.
  if (o.bulk) {
    std::vector<int> socks;  // one flow each (its own source port)
    for (uint32_t f = 0; f < o.flows; ++f) socks.push_back(exo_socket(a));
    if (socks.back() < 0) throw exojit::Error("--flows: the libOS has no socket left");
    std::vector<uint8_t> chunk(o.datagram, 0xa5);
    uint64_t sent = 0, start = net.clock.now(), refused = 0, timer_at = 0;
    // Time for one datagram's frames to leave the NIC: how long A sleeps when refused.
    uint64_t frames = (o.datagram + 8 + (o.mtu - 20u) / 8 * 8 - 1) / ((o.mtu - 20u) / 8 * 8);
    uint64_t frame_ns =
        frames *
        (c.link.bits_per_second ? (o.mtu + 14ull) * 8 * 1000000000 / c.link.bits_per_second : 1000);
    net.env_a.exited = false;
    net.env_a.runnable = true;
    net.env_a.set_body([&](Environment& env) {
      while (sent < o.bulk) {
        uint32_t n = uint32_t(std::min<uint64_t>(o.datagram, o.bulk - sent));
        int s = socks[size_t(sent / o.datagram % socks.size())];
        int rc = exo_sendto(a, s, chunk.data(), n, TwoHosts::kIpB, 9);
        if (rc == -ENOBUFS) {
          ++refused;
          exo_stack_poll(a);
          if (timer_at <= net.clock.now()) {  // one timer at a time
            timer_at = net.clock.now() + frame_ns;
            net.kernel_a.wake_at(env, timer_at);
          }
          return Step::Block;
        }
        if (rc < 0) throw exojit::Error("bulk send failed: " + std::to_string(rc));
        sent += n;
      }
      return Step::Exit;
    });
    auto b0 = std::chrono::steady_clock::now();
    net.scheduler.run();
    double bulk_host_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
    double secs = double(last_bulk_ns - start) / 1e9;
    std::printf(
        "bulk: %llu bytes in %u-byte datagrams; %llu bytes in %llu datagrams arrived "
        "(%.1f%%); sends refused while the transmit ring was full: %llu\n",
        (unsigned long long)o.bulk, o.datagram, (unsigned long long)bulk_received,
        (unsigned long long)bulk_datagrams, 100.0 * double(bulk_received) / double(o.bulk),
        (unsigned long long)refused);
    if (secs > 0)
      std::printf(
          "  throughput, virtual: %.1f Mb/s of UDP payload over %.3f ms\n"
          "  host time: %.1f ms (%.0f ns per datagram)\n",
          double(bulk_received) * 8 / secs / 1e6, secs * 1e3, bulk_host_s * 1e3,
          bulk_host_s * 1e9 / double(std::max<uint64_t>(bulk_datagrams, 1)));
  }
  if (o.queues > 1)
    std::printf("receive queues: %u per NIC, RSS over addresses and ports (%u bulk flow%s)\n",
                o.queues, o.flows, o.flows == 1 ? "" : "s");
  print_counters("A (10.0.0.1)", net, net.a, net.nic_a);
  print_counters("B (10.0.0.2)", net, net.b, net.nic_b);
  if (pcap) {
    pcap->flush();
    std::printf("wrote %llu frames to %s\n", (unsigned long long)pcap->packets(), o.pcap.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exo-sim: %s\n", e.what());
    return 1;
  }
}
