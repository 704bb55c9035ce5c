// SPDX-License-Identifier: MIT
/* IPv4 (RFC 791): header validation, fragment reassembly (any arrival order, overlaps allowed,
 * bogus lengths refused), and output with fragmentation to the MTU. */
#include "internal_p.h"

#define IP_MF 0x2000
#define IP_DF 0x4000
#define IP_MAX_PAYLOAD (65535 - EXO_IP_HDR)

static void deliver(struct exo_stack* s, uint8_t proto, uint32_t src, uint32_t dst,
                    const uint8_t* p, uint32_t len, int pool_buf, int reasm, int* kept) {
  if (proto == EXO_PROTO_UDP)
    exo_udp_input(s, src, dst, p, len, pool_buf, reasm, kept);
  else if (proto == EXO_PROTO_ICMP)
    exo_icmp_input(s, src, p, len);
  else
    s->counters.ip_bad_proto++;
}

void exo_reasm_release(struct exo_stack* s, int slot) {
  struct exo_reasm* r = &s->reasm[slot];
  r->in_use = 0;
  r->held = 0;
}

static void reasm_reset(struct exo_reasm* r, uint32_t src, uint32_t dst, uint16_t id, uint8_t proto,
                        uint64_t now) {
  r->in_use = 1;
  r->held = 0;
  r->src = src;
  r->dst = dst;
  r->id = id;
  r->proto = proto;
  r->total = 0;
  r->blocks = 0;
  r->max_end = 0;
  r->started_ns = now;
  memset(r->have, 0, sizeof r->have);
}

static void reassemble(struct exo_stack* s, uint32_t src, uint32_t dst, uint16_t id, uint8_t proto,
                       uint32_t off, int more, const uint8_t* data, uint32_t n, int* kept) {
  s->counters.frag_rx++;
  /* Every fragment but the last carries a multiple of 8 bytes; none reaches past 65535. */
  if ((more && (n == 0 || n % 8)) || off + n > IP_MAX_PAYLOAD) {
    s->counters.frag_bad++;
    return;
  }
  uint64_t now = s->ops.now_ns(s->ops.ctx);
  int slot = -1, free_slot = -1;
  for (int i = 0; i < EXO_REASM_SLOTS; ++i) {
    struct exo_reasm* r = &s->reasm[i];
    if (r->in_use && !r->held && now - r->started_ns > EXO_REASM_TIMEOUT_NS) {
      s->counters.frag_timeouts++;
      exo_reasm_release(s, i);
    }
    if (r->in_use && !r->held && r->src == src && r->dst == dst && r->id == id && r->proto == proto)
      slot = i;
    else if (!r->in_use && free_slot < 0)
      free_slot = i;
  }
  if (slot < 0) {
    if (free_slot < 0) {
      s->counters.frag_no_slot++;
      return;
    }
    slot = free_slot;
    reasm_reset(&s->reasm[slot], src, dst, id, proto, now);
  }
  struct exo_reasm* r = &s->reasm[slot];
  uint32_t end = off + n;
  /* Lengths that contradict each other: the datagram is bogus, drop all of it. */
  if ((r->total && end > r->total) || (!more && r->total && r->total != end) ||
      (!more && r->max_end > end)) {
    s->counters.frag_bad++;
    exo_reasm_release(s, slot);
    return;
  }
  if (!more) r->total = end;
  if (end > r->max_end) r->max_end = end;
  memcpy(r->data + off, data, n);
  for (uint32_t b = off / 8; b < (end + 7) / 8; ++b)
    if (!(r->have[b / 8] & (1u << (b % 8)))) {
      r->have[b / 8] |= (uint8_t)(1u << (b % 8));
      r->blocks++;
    }
  if (r->total && r->blocks == (r->total + 7) / 8) {
    s->counters.frag_reassembled++;
    r->held = 1;
    int k = 0;
    deliver(s, proto, src, dst, r->data, r->total, -1, slot, &k);
    if (!k) exo_reasm_release(s, slot);
  }
  (void)kept;
}

void exo_ip_input(struct exo_stack* s, const uint8_t* p, uint32_t len, int pool_buf, int* kept) {
  s->counters.ip_rx++;
  if (len < EXO_IP_HDR || (p[0] >> 4) != 4) {
    s->counters.ip_bad_header++;
    return;
  }
  uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4;
  if (ihl < EXO_IP_HDR || ihl > len) {
    s->counters.ip_bad_header++;
    return;
  }
  uint32_t total = exo_get16(p + 2);
  if (total < ihl || total > len) { /* frames may carry padding after the datagram, not less */
    s->counters.ip_bad_length++;
    return;
  }
  if (exo_cksum_fold(exo_cksum_add(0, p, ihl)) != 0) {
    s->counters.ip_bad_checksum++;
    return;
  }
  uint32_t src = exo_get32(p + 12), dst = exo_get32(p + 16);
  uint32_t subnet_bcast = (s->cfg.ip & s->cfg.netmask) | ~s->cfg.netmask;
  if (dst != s->cfg.ip && dst != 0xffffffffu && dst != subnet_bcast) {
    s->counters.ip_not_for_us++;
    return;
  }
  uint16_t frag = exo_get16(p + 6);
  uint32_t off = (uint32_t)(frag & 0x1fff) * 8;
  if ((frag & IP_MF) || off) {
    reassemble(s, src, dst, exo_get16(p + 4), p[9], off, (frag & IP_MF) != 0, p + ihl, total - ihl,
               kept);
    return;
  }
  deliver(s, p[9], src, dst, p + ihl, total - ihl, pool_buf, -1, kept);
}

/* Copies bytes [off, off+n) of the concatenation head|data to out. */
static void copy_span(uint8_t* out, const uint8_t* head, uint32_t head_len, const uint8_t* data,
                      uint32_t off, uint32_t n) {
  if (off < head_len) {
    uint32_t k = head_len - off < n ? head_len - off : n;
    memcpy(out, head + off, k);
    out += k;
    off += k;
    n -= k;
  }
  if (n) memcpy(out, data + (off - head_len), n);
}

static void build_ip_header(struct exo_stack* s, uint8_t* ip, uint32_t total, uint16_t id,
                            uint16_t frag, int ttl, uint8_t proto, uint32_t dst) {
  uint32_t src = s->cfg.ip;
  ip[0] = 0x45;
  ip[1] = 0;
  exo_put16(ip + 2, (uint16_t)total);
  exo_put16(ip + 4, id);
  exo_put16(ip + 6, frag);
  ip[8] = (uint8_t)ttl;
  ip[9] = proto;
  exo_put32(ip + 12, src);
  exo_put32(ip + 16, dst);
  /* The checksum from the fields' values, not from the bytes just written: the same sum of the
   * header's big-endian 16-bit words (RFC 1071) without reading the header back, and one whose
   * static fields fold into a single constant when the send path is specialized. */
  uint32_t sum = 0x4500u + (uint16_t)total + id + frag + ((uint32_t)(uint8_t)ttl << 8 | proto) +
                 (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
  exo_put16(ip + 10, exo_cksum_fold(sum));
}

int exo_ip_output(struct exo_stack* s, uint32_t dst, uint8_t proto, int ttl, int dontfrag,
                  const uint8_t* head, uint32_t head_len, const uint8_t* data, uint32_t len) {
  uint32_t payload = head_len + len;
  if (payload > IP_MAX_PAYLOAD) return -EMSGSIZE;
  uint32_t next_hop = exo_route_lookup(s, dst);
  if (next_hop == 0) {
    s->counters.tx_no_route++;
    return -ENETUNREACH;
  }
  uint32_t mtu = s->cfg.mtu;
  uint16_t id = s->next_ip_id++;
  if (EXO_IP_HDR + payload <= mtu) {
    int buf = exo_buf_alloc(s);
    if (buf < 0) {
      s->counters.tx_no_buffer++;
      return -ENOBUFS;
    }
    uint8_t* p = exo_buf_ptr(s, (uint32_t)buf);
    if (!p) {
      exo_buf_free(s, (uint32_t)buf);
      return -EFAULT;
    }
    build_ip_header(s, p + EXO_ETH_HDR, EXO_IP_HDR + payload, id, dontfrag ? IP_DF : 0, ttl, proto,
                    dst);
    copy_span(p + EXO_ETH_HDR + EXO_IP_HDR, head, head_len, data, 0, payload);
    return exo_eth_output_ip(s, (uint32_t)buf, p, EXO_ETH_HDR + EXO_IP_HDR + payload, next_hop);
  }
  if (dontfrag) return -EMSGSIZE;
  uint32_t chunk = (mtu - EXO_IP_HDR) & ~7u;
  uint32_t frags = (payload + chunk - 1) / chunk;
  if (s->nfree < frags) { /* all or nothing: never send half a datagram */
    s->counters.tx_no_buffer++;
    return -ENOBUFS;
  }
  if (s->ops.tx_room && s->ops.tx_room(s->ops.ctx) < frags) {
    s->counters.tx_drops_ring_full++;
    return -ENOBUFS;
  }
  for (uint32_t off = 0; off < payload; off += chunk) {
    uint32_t n = payload - off < chunk ? payload - off : chunk;
    int buf = exo_buf_alloc(s);
    uint8_t* p = exo_buf_ptr(s, (uint32_t)buf);
    if (!p) {
      exo_buf_free(s, (uint32_t)buf);
      return -EFAULT;
    }
    uint16_t frag = (uint16_t)((off / 8) | (off + n < payload ? IP_MF : 0));
    build_ip_header(s, p + EXO_ETH_HDR, EXO_IP_HDR + n, id, frag, ttl, proto, dst);
    copy_span(p + EXO_ETH_HDR + EXO_IP_HDR, head, head_len, data, off, n);
    s->counters.tx_fragments++;
    int rc = exo_eth_output_ip(s, (uint32_t)buf, p, EXO_ETH_HDR + EXO_IP_HDR + n, next_hop);
    if (rc < 0) return rc;
  }
  return 0;
}
