// SPDX-License-Identifier: MIT
/* ARP (RFC 826) for IPv4 over Ethernet: a small table, requests on a miss, frames held on the
 * incomplete entry until the reply arrives. */
#include "internal_p.h"

#define ARP_LEN 28

extern "C" struct exo_arp_entry* exo_arp_lookup(struct exo_stack* s, uint32_t ip) {
  for (int i = 0; i < EXO_ARP_ENTRIES; ++i)
    if (s->arp[i].state && s->arp[i].ip == ip) return &s->arp[i];
  return NULL;
}

/* Builds and sends an ARP packet. */
static int arp_send(struct exo_stack* s, uint16_t op, const uint8_t* dst_mac, uint32_t target_ip,
                    const uint8_t* target_mac) {
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
  memcpy(p, dst_mac, 6);
  memcpy(p + 6, s->cfg.mac, 6);
  exo_put16(p + 12, EXO_ETHERTYPE_ARP);
  uint8_t* a = p + EXO_ETH_HDR;
  exo_put16(a, 1); /* Ethernet */
  exo_put16(a + 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  exo_put16(a + 6, op);
  memcpy(a + 8, s->cfg.mac, 6);
  exo_put32(a + 14, s->cfg.ip);
  memcpy(a + 18, target_mac, 6);
  exo_put32(a + 24, target_ip);
  /* Ethernet minimum frame: pad to 60 bytes. */
  memset(p + EXO_ETH_HDR + ARP_LEN, 0, 60 - EXO_ETH_HDR - ARP_LEN);
  return exo_eth_transmit(s, (uint32_t)buf, 60);
}

struct exo_arp_entry* exo_arp_resolve(struct exo_stack* s, uint32_t ip) {
  struct exo_arp_entry* e = exo_arp_lookup(s, ip);
  if (e) return e;
  for (int i = 0; i < EXO_ARP_ENTRIES; ++i)
    if (!s->arp[i].state) {
      e = &s->arp[i];
      memset(e, 0, sizeof *e);
      e->ip = ip;
      e->state = 1;
      e->requested_ns = s->ops.now_ns(s->ops.ctx);
      static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
      static const uint8_t zero[6] = {0, 0, 0, 0, 0, 0};
      if (arp_send(s, 1, bcast, ip, zero) == 0) s->counters.arp_requests_sent++;
      return e;
    }
  return NULL;
}

/* Whether entry e would change by becoming a resolved mapping to mac. */
static int arp_changes(const struct exo_arp_entry* e, const uint8_t* mac) {
  return e->state != 2 || memcmp(e->mac, mac, 6) != 0;
}

extern "C" int exo_arp_add(struct exo_stack* s, uint32_t ip, const uint8_t mac[6]) {
  struct exo_arp_entry* e = exo_arp_lookup(s, ip);
  for (int i = 0; !e && i < EXO_ARP_ENTRIES; ++i)
    if (!s->arp[i].state) e = &s->arp[i];
  if (!e) return -ENOSPC;
  int fresh = e->state == 0;
  if (!fresh && !arp_changes(e, mac)) return 0;
  if (exo_guard_before(s, EXO_CHANGE_ARP, ip, 0)) return -EBUSY;
  if (fresh) memset(e, 0, sizeof *e);
  e->ip = ip;
  memcpy(e->mac, mac, 6);
  e->state = 2;
  exo_guard_after(s, EXO_CHANGE_ARP, ip, 0);
  return 0;
}

/* A mapping is now known: send what waited for it. */
static void arp_resolved(struct exo_stack* s, struct exo_arp_entry* e, const uint8_t* mac) {
  if (!arp_changes(e, mac)) return;
  exo_guard_before(s, EXO_CHANGE_ARP, e->ip, 0); /* the network is never refused */
  memcpy(e->mac, mac, 6);
  e->state = 2;
  exo_guard_after(s, EXO_CHANGE_ARP, e->ip, 0);
  for (uint32_t i = 0; i < e->npending; ++i) {
    uint8_t* p = exo_buf_ptr(s, e->pending[i]);
    if (p) memcpy(p, mac, 6);
    exo_eth_transmit(s, e->pending[i], e->pending_len[i]);
  }
  e->npending = 0;
}

void exo_arp_input(struct exo_stack* s, const uint8_t* a, uint32_t len) {
  s->counters.arp_rx++;
  if (len < ARP_LEN || exo_get16(a) != 1 || exo_get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
    s->counters.arp_bad++;
    return;
  }
  uint16_t op = exo_get16(a + 6);
  if (op != 1 && op != 2) {
    s->counters.arp_bad++;
    return;
  }
  const uint8_t* sender_mac = a + 8;
  uint32_t sender_ip = exo_get32(a + 14);
  uint32_t target_ip = exo_get32(a + 24);
  /* RFC 826: update an existing entry; add one when the packet is for us. */
  struct exo_arp_entry* e = exo_arp_lookup(s, sender_ip);
  if (e)
    arp_resolved(s, e, sender_mac);
  else if (target_ip == s->cfg.ip && sender_ip != 0)
    exo_arp_add(s, sender_ip, sender_mac);
  if (op == 1 && target_ip == s->cfg.ip) {
    if (arp_send(s, 2, sender_mac, sender_ip, sender_mac) == 0) s->counters.arp_replies_sent++;
  }
}
