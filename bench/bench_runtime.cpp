// SPDX-License-Identifier: MIT
// bench_runtime: the runtime's receive path and a UDP round trip between two simulated hosts,
// against a real UDP round trip over Linux loopback sockets, in the same run.
//
//   runtime/rx_to_ring/builtin             one 60-byte frame from the wire through the NIC's
//                                          receive ring (kernel buffer), the built-in demux and
//                                          the copy into the environment's packet ring; the
//                                          environment drains the ring every 32 frames
//   runtime/rx/queues/<Q>                  (Q = 1, 2) the same receive path in thread mode over a
//                                          NIC with Q receive queues, one thread per queue: each
//                                          thread plays the wire for 8 flows RSS steers to its
//                                          queue (a two-queue NIC in both rows, the hash computed
//                                          per frame; with Q = 1 the indirection table sends
//                                          every flow to queue 0), delivers on arrival
//                                          into its own environment's ring and drains it every
//                                          32 frames. items_per_second: frames, all queues
//   runtime/rx/queues/2/one_ring           the same 2 queues delivering to ONE environment's
//                                          ring (one filter): the filter's counters, the ring's
//                                          lock and header are shared lines (the scaling limit,
//                                          runtime/README.md); the drains take a lock
//   runtime/rx/queues/<Q>/ash              (Q = 1, 2) the same Q queues, every flow to ONE filter
//                                          whose ASH consumes the frame (it adds 1 to a counter
//                                          in the environment's memory, one line per queue): one
//                                          handler on every queue at once, its run state per
//                                          lane; no ring
//   runtime/rx/queues/2/ash_serialized     the same handler behind a run lock (a wrapper that
//                                          is not concurrent(): one run at a time, as every ASH
//                                          ran before its run state was per lane)
//   runtime/udp_pingpong/sim               64-byte UDP round trip through the libOS, NICs and a
//                                          link of two simulated hosts, scheduler model (one
//                                          host thread)
//   runtime/udp_pingpong/sim_threads       the same with each host's environment on a real host
//                                          thread, woken by the kernel (futex)
//   runtime/udp_pingpong/loopback_sockets  64-byte UDP round trip over 127.0.0.1, echo on a
//                                          second thread (Linux sockets)
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "exojit/ash/handler.h"
#include "exojit/libos/two_hosts.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"
#include "ratio_main.h"

namespace exojit::bench {
namespace {

using namespace exojit::runtime;
using libos::TwoHosts;

constexpr uint32_t kPayload = 64;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_runtime: %s\n", what);
  std::exit(1);
}

void bm_rx_to_ring(benchmark::State& state) {
  Kernel k({.frames = 1024});
  BuiltinDemux demux;
  k.set_demux(&demux);
  Nic& nic = k.add_nic({}, Capability::make({0x4e}, kPermWrite));
  Environment& env = k.create_environment("app", Capability::make({1}, kPermAll));
  constexpr uint32_t kSlots = 64, kBuf = 2048;
  k.alloc_pages(env, 0, 0x100000, 1 + kSlots * kBuf / 4096, kPteRead | kPteWrite);
  uint32_t ring = k.create_ring(env, 0, 0x100000, kSlots, 0x101000, kSlots * kBuf);
  k.init_ring_buffers(env, ring, kBuf);
  demux.add({0x0806, 0, 0, 0});  // other rules present, the UDP one is the most specific
  demux.add({0x0800, 0, 0, 0});
  uint32_t id = demux.add({0x0800, 0, 17, 7});
  k.claim_filter(env, 0, id);
  k.bind_filter(env, 0, id, ring);
  std::vector<uint8_t> f(60, 0);
  f[12] = 0x08, f[14] = 0x45, f[14 + 3] = 46, f[14 + 9] = 17, f[14 + 20 + 3] = 7;
  RingHeader* h = reinterpret_cast<RingHeader*>(env.mmu().translate(0x100000, kRead | kWrite));
  uint32_t n = 0;
  for (auto _ : state) {
    nic.receive_from_wire(f.data(), f.size());
    if (++n % 32 == 0)  // the environment drains what arrived and gives the buffers back
      while (RingSlot* s = ring_peek(h)) ring_release(h, s->buffer, s->capacity);
  }
  if (k.ring(ring).counters.drops_full || nic.counters().rx_drops_ring_full)
    die("rx_to_ring dropped");
  state.counters["ns_per_packet"] = benchmark::Counter(
      double(state.iterations()), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Where the rows' frames go: a ring per queue, one shared ring, or one filter's ASH.
enum class Into : uint8_t { Rings, OneRing, Ash, AshSerialized };

// The handler of the ash rows: counter[q] += 1 for the queue q the frame names (payload byte 0),
// each counter on its own line of the environment's page; commit.
constexpr uint64_t kAshPage = 0x400000;
void count_per_queue(ash::HandlerBuilder& h) {
  using ash::Reg, ash::RegClass, ash::Type;
  Reg q = h.getreg(Type::U8, RegClass::Var), off = h.getreg(Type::U64, RegClass::Var),
      p = h.getreg(Type::P, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  h.peek(q, 14 + 28);
  h.cvt(off, q);
  h.and_(off, off, 63);
  h.lsh(off, off, 6);
  h.set(p, int64_t(kAshPage));
  h.add(p, p, off);
  h.ld(v, p, 0);
  h.add(v, v, 1);
  h.st(v, p, 0);
  h.commit();
  h.finish();
}

// The same handler run one call at a time by the kernel (not concurrent(): its run lock).
class Serialized : public MessageHandler {
 public:
  explicit Serialized(MessageHandler& h) : h_(h) {}
  HandlerVerdict handle(HandlerContext& c, const Message& m) override { return h_.handle(c, m); }
  Binding binding() const override { return h_.binding(); }

 private:
  MessageHandler& h_;
};

// The machine of runtime/rx/queues/<Q>: built once per Q, shared by the row's threads.
struct QueuesMachine {
  static constexpr uint32_t kSlots = 128, kBuf = 2048, kFlows = 8;
  Kernel kernel{{.frames = 2048, .mode = Mode::Threads}};
  BuiltinDemux demux;
  Nic* nic;
  std::vector<RingHeader*> rings;
  std::vector<uint32_t> ring_ids;
  std::vector<std::vector<std::vector<uint8_t>>> flows;  // by queue: frames RSS steers there
  std::mutex drain;                                      // one_ring: the environment's side
  std::unique_ptr<ash::Handler> handler;
  std::unique_ptr<Serialized> serialized;

  QueuesMachine(uint32_t queues, Into into) {
    kernel.set_demux(&demux);
    // The same two-queue NIC for every row, RSS on (a hash per frame); with Q = 1 its
    // indirection table sends every flow to queue 0 (ethtool -X equal 1), one thread serves it.
    RssConfig rss;
    if (queues == 1) rss.indirection.assign(128, 0);
    nic = &kernel.add_nic({.rx_slots = 64, .queues = 2, .rss = rss},
                          Capability::make({0x4e}, kPermWrite));
    flows.resize(queues);
    if (into == Into::Ash || into == Into::AshSerialized) {
      Environment& env = kernel.create_environment("app", Capability::make({1}, kPermAll));
      kernel.alloc_pages(env, 0, kAshPage, 1, kPteRead | kPteWrite);
      uint32_t id = demux.add({0x0800, 0, 17, 1000});
      kernel.claim_filter(env, 0, id);
      ash::HandlerBuilder h("count_per_queue");
      count_per_queue(h);
      handler = std::make_unique<ash::Handler>(
          h, env, ash::HandlerOptions{.region = {kAshPage, kPageSize}});
      MessageHandler* run = handler.get();
      if (into == Into::AshSerialized)
        run = (serialized = std::make_unique<Serialized>(*run)).get();
      kernel.install_handler(env, 0, id, run);
      for (uint32_t q = 0; q < queues; ++q) add_flows(q, 1000);
      return;
    }
    bool one_ring = into == Into::OneRing;
    for (uint32_t q = 0; q < queues; ++q) {
      if (one_ring && q > 0) {  // the first environment's ring and port for every queue
        rings.push_back(rings[0]);
        ring_ids.push_back(ring_ids[0]);
        add_flows(q, 1000);
        continue;
      }
      Environment& env = kernel.create_environment("app" + std::to_string(q),
                                                   Capability::make({uint8_t(q + 1)}, kPermAll));
      kernel.alloc_pages(env, 0, 0x100000, 1 + kSlots * kBuf / 4096, kPteRead | kPteWrite);
      uint32_t ring = kernel.create_ring(env, 0, 0x100000, kSlots, 0x101000, kSlots * kBuf);
      kernel.init_ring_buffers(env, ring, kBuf);
      uint16_t port = uint16_t(1000 + q);
      uint32_t id = demux.add({0x0800, 0, 17, port});
      kernel.claim_filter(env, 0, id);
      kernel.bind_filter(env, 0, id, ring);
      rings.push_back(reinterpret_cast<RingHeader*>(env.mmu().translate(0x100000, kRead | kWrite)));
      ring_ids.push_back(ring);
      add_flows(q, port);
    }
  }

  // Flows (source address, source port) to `port` that RSS sends to queue q.
  void add_flows(uint32_t q, uint16_t port) {
    for (uint32_t src = 1; flows[q].size() < kFlows; ++src) {
      std::vector<uint8_t> f(60, 0);
      f[12] = 0x08, f[14] = 0x45, f[14 + 3] = 46, f[14 + 9] = 17;
      f[14 + 12] = 10, f[14 + 14] = uint8_t(src >> 8), f[14 + 15] = uint8_t(src);
      f[14 + 16] = 10, f[14 + 19] = 1;
      f[14 + 20] = uint8_t((40000 + src) >> 8), f[14 + 21] = uint8_t(40000 + src);
      f[14 + 22] = uint8_t(port >> 8), f[14 + 23] = uint8_t(port);
      f[14 + 28] = uint8_t(q);  // the ash rows' counter (RSS reads no payload)
      if (nic->rss().queue(f.data(), f.size()) == q) flows[q].push_back(std::move(f));
    }
  }
};

// A thread of an ash row: its queue's flows, every frame consumed by the handler.
void bm_rx_queues_ash(benchmark::State& state, QueuesMachine& m) {
  uint32_t q = uint32_t(state.thread_index());
  const std::vector<std::vector<uint8_t>>& flows = m.flows[q];
  uint32_t n = 0;
  for (auto _ : state) {
    const std::vector<uint8_t>& f = flows[n++ % flows.size()];
    m.nic->receive_from_wire(f.data(), f.size());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  NicCounters c = m.nic->queue_counters(q);
  if (c.rx_handled != c.rx_frames || c.rx_drops_ring_full)
    die("rx/queues/ash: a frame not consumed");
}

void bm_rx_queues(benchmark::State& state, uint32_t queues, Into into) {
  static std::array<std::array<std::unique_ptr<QueuesMachine>, 4>, 3> machines;
  static std::mutex building;
  QueuesMachine* m;
  {
    std::lock_guard<std::mutex> lock(building);
    auto& slot = machines[queues][size_t(into)];
    if (!slot) slot = std::make_unique<QueuesMachine>(queues, into);
    m = slot.get();
  }
  if (m->handler) {
    bm_rx_queues_ash(state, *m);
    return;
  }
  bool one_ring = into == Into::OneRing;
  auto drain = [m, one_ring](RingHeader* h) {
    std::unique_lock<std::mutex> lock(m->drain, std::defer_lock);
    if (one_ring) lock.lock();
    while (RingSlot* s = ring_peek(h)) ring_release(h, s->buffer, s->capacity);
  };
  uint32_t q = uint32_t(state.thread_index());
  const std::vector<std::vector<uint8_t>>& flows = m->flows[q];
  RingHeader* h = m->rings[q];
  uint32_t n = 0;
  for (auto _ : state) {
    const std::vector<uint8_t>& f = flows[n % flows.size()];
    m->nic->receive_from_wire(f.data(), f.size());
    if (++n % 32 == 0) drain(h);  // the environment gives the buffers back
  }
  drain(h);
  state.SetItemsProcessed(int64_t(state.iterations()));
  PacketRing& ring = m->kernel.ring(m->ring_ids[q]);
  uint64_t ring_drops;
  {
    std::lock_guard<std::mutex> lock(ring.producers);  // the other queue may still deliver
    ring_drops = ring.counters.drops_full;
  }
  NicCounters c = m->nic->queue_counters(q);
  if (ring_drops || c.rx_drops_ring_full || c.rx_drops_no_owner) die("rx/queues dropped");
}

// B echoes every datagram on port 7 back to its sender.
Environment::Body echo_body(exo_stack* b, int sb) {
  return [b, sb](Environment&) {
    uint8_t buf[2048];
    uint32_t ip;
    uint16_t port;
    int n;
    while ((n = exo_recvfrom(b, sb, buf, sizeof buf, &ip, &port)) > 0)
      exo_sendto(b, sb, buf, uint32_t(n), ip, port);
    return Step::Block;
  };
}

void bm_pingpong_sim(benchmark::State& state) {
  TwoHosts net({.static_arp = true});
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  exo_bind(b, sb, 7);
  exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1);
  exo_connect(a, sa, TwoHosts::kIpB, 7);
  exo_setsockopt(a, sa, EXO_SO_NONBLOCK, 1);
  net.env_b.set_body(echo_body(b, sb));
  net.scheduler.set_slices({&net.env_b});  // A is driven by this thread
  uint8_t msg[kPayload] = {1, 2, 3}, back[2048];
  for (auto _ : state) {
    if (exo_sendto(a, sa, msg, kPayload, 0, 0) != int(kPayload)) die("sim: send failed");
    while (exo_recvfrom(a, sa, back, sizeof back, nullptr, nullptr) < 0)
      if (!net.scheduler.step()) die("sim: the reply never came");
  }
}

void bm_pingpong_sim_threads(benchmark::State& state) {
  TwoHosts net({.mode = Mode::Threads, .static_arp = true});
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  exo_bind(b, sb, 7);
  exo_connect(a, sa, TwoHosts::kIpB, 7);
  ThreadRunner runner(net.kernel_b);
  runner.start(net.env_b, [&](Environment&) {
    uint8_t buf[2048];
    uint32_t ip;
    uint16_t port;
    while (!runner.stopping()) {
      int n = exo_recvfrom(b, sb, buf, sizeof buf, &ip, &port);  // blocking: sleeps in wait()
      if (n > 0) exo_sendto(b, sb, buf, uint32_t(n), ip, port);
    }
  });
  uint8_t msg[kPayload] = {1, 2, 3}, back[2048];
  for (auto _ : state) {
    if (exo_sendto(a, sa, msg, kPayload, 0, 0) != int(kPayload)) die("threads: send failed");
    if (exo_recvfrom(a, sa, back, sizeof back, nullptr, nullptr) != int(kPayload))
      die("threads: bad reply");
  }
  runner.stop();
}

void bm_pingpong_loopback(benchmark::State& state) {
  int server = socket(AF_INET, SOCK_DGRAM, 0), client = socket(AF_INET, SOCK_DGRAM, 0);
  if (server < 0 || client < 0) die("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind() failed");
  socklen_t len = sizeof addr;
  getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  if (connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("connect() failed");
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    char buf[2048];
    while (!stop.load()) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n > 0) sendto(server, buf, size_t(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  });
  char msg[kPayload] = {1, 2, 3}, back[2048];
  for (auto _ : state) {
    if (send(client, msg, kPayload, 0) != ssize_t(kPayload)) die("send() failed");
    if (recv(client, back, sizeof back, 0) != ssize_t(kPayload)) die("recv() failed");
  }
  stop.store(true);
  send(client, msg, 1, 0);  // unblocks the echo thread
  echo.join();
  close(client);
  close(server);
}

}  // namespace
}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  benchmark::RegisterBenchmark("runtime/rx_to_ring/builtin", bm_rx_to_ring);
  for (uint32_t q : {1u, 2u})
    benchmark::RegisterBenchmark(("runtime/rx/queues/" + std::to_string(q)).c_str(), bm_rx_queues,
                                 q, Into::Rings)
        ->Threads(int(q))
        ->UseRealTime();
  benchmark::RegisterBenchmark("runtime/rx/queues/2/one_ring", bm_rx_queues, 2u, Into::OneRing)
      ->Threads(2)
      ->UseRealTime();
  for (uint32_t q : {1u, 2u})
    benchmark::RegisterBenchmark(("runtime/rx/queues/" + std::to_string(q) + "/ash").c_str(),
                                 bm_rx_queues, q, Into::Ash)
        ->Threads(int(q))
        ->UseRealTime();
  benchmark::RegisterBenchmark("runtime/rx/queues/2/ash_serialized", bm_rx_queues, 2u,
                               Into::AshSerialized)
      ->Threads(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark("runtime/udp_pingpong/sim", bm_pingpong_sim);
  benchmark::RegisterBenchmark("runtime/udp_pingpong/sim_threads", bm_pingpong_sim_threads);
  benchmark::RegisterBenchmark("runtime/udp_pingpong/loopback_sockets", bm_pingpong_loopback);
  return run_benchmarks_with_ratios(
      argc, argv,
      {Ratio{"runtime/udp_pingpong/loopback_sockets", "runtime/udp_pingpong/sim", 0, 10,
             "host time per round trip"},
       // Real time per frame (wall time over the frames of all threads): the speed-up of two
       // queues on two threads over one.
       Ratio{"runtime/rx/queues/1", "runtime/rx/queues/2", 0, 1.7,
             "frames per second, 2 queues over 1"},
       Ratio{"runtime/rx/queues/1", "runtime/rx/queues/2/one_ring", 0, 0,
             "the same into one shared ring"},
       Ratio{"runtime/rx/queues/1/ash", "runtime/rx/queues/2/ash", 0, 0,
             "frames per second, one ASH on 2 queues over 1"},
       Ratio{"runtime/rx/queues/2/ash_serialized", "runtime/rx/queues/2/ash", 0, 0,
             "frames per second, 2 queues: runs at once over one at a time"}});
}
