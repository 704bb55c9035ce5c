// SPDX-License-Identifier: MIT
// See rte_bpf.h.
#include "rte_bpf.h"

#include <exojit/error.h>
#include <pcap/pcap.h>
#include <rte_bpf.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include <cstring>

namespace exojit::bench {
namespace {

// The EAL once per process, in a plain process: no hugepages, no devices, no shared files.
void init_eal() {
  static const int status = [] {
    const char* args[] = {"bench_demux", "--no-huge",   "--no-pci",          "-m",
                          "64",          "--no-shconf", "--log-level=error", "--no-telemetry"};
    return rte_eal_init(int(std::size(args)), const_cast<char**>(args));
  }();
  if (status < 0) fail("DPDK rte_eal_init: {}", rte_strerror(rte_errno));
}

}  // namespace

struct RteBpfSet::Impl {
  std::vector<rte_bpf*> programs;
  std::vector<uint64_t (*)(void*)> jitted;
  // The converted programs read the packet through an rte_mbuf (their argument): a one-segment
  // mbuf, zeroed once; each call points it at the packet, as a driver's receive path hands over
  // an mbuf it already has. (Raw storage: rte_mbuf ends in a zero-size array, which ISO C++
  // does not allow as a member.)
  alignas(RTE_CACHE_LINE_SIZE) unsigned char mbuf_storage[sizeof(rte_mbuf)];
  rte_mbuf* mbuf() { return reinterpret_cast<rte_mbuf*>(mbuf_storage); }
};

RteBpfSet::RteBpfSet(const std::vector<std::string>& exprs) : impl_(std::make_unique<Impl>()) {
  init_eal();
  std::memset(impl_->mbuf_storage, 0, sizeof impl_->mbuf_storage);
  impl_->mbuf()->nb_segs = 1;
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  for (const std::string& e : exprs) {
    bpf_program p{};
    if (pcap_compile(dead, &p, e.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      std::string why = pcap_geterr(dead);
      pcap_close(dead);
      fail("pcap_compile `{}`: {}", e, why);
    }
    rte_bpf_prm* prm = rte_bpf_convert(&p);
    pcap_freecode(&p);
    rte_bpf* bpf = prm ? rte_bpf_load(prm) : nullptr;
    rte_free(prm);
    rte_bpf_jit jit{};
    if (bpf && (rte_bpf_get_jit(bpf, &jit) != 0 || !jit.func)) {
      rte_bpf_destroy(bpf);
      bpf = nullptr;
    }
    if (!bpf) {
      pcap_close(dead);
      fail("rte_bpf for `{}`: {}", e, rte_strerror(rte_errno));
    }
    impl_->programs.push_back(bpf);
    impl_->jitted.push_back(jit.func);
  }
  pcap_close(dead);
}

RteBpfSet::~RteBpfSet() {
  for (rte_bpf* b : impl_->programs) rte_bpf_destroy(b);
}

uint32_t RteBpfSet::demux(const uint8_t* packet, size_t length) const {
  rte_mbuf& m = *impl_->mbuf();
  m.buf_addr = const_cast<uint8_t*>(packet);
  m.data_len = uint16_t(length);
  m.pkt_len = uint32_t(length);
  for (size_t i = 0; i < impl_->jitted.size(); ++i)
    if (impl_->jitted[i](&m)) return uint32_t(i + 1);
  return 0;
}

}  // namespace exojit::bench
