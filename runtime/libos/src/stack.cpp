// SPDX-License-Identifier: MIT
/* The stack's frame: set-up, the buffer pool, the receive loop, Ethernet output and routes. */
#include <stdlib.h>

#include "exojit/runtime/ring.h"
#include "internal_p.h"

using exojit::runtime::RingHeader;
using exojit::runtime::RingSlot;

static RingHeader* ring_of(struct exo_stack* s) {
  return (RingHeader*)s->ops.translate(s->ops.ctx, s->cfg.ring_va, 4096, 1);
}

uint64_t exo_buf_va(const struct exo_stack* s, uint32_t buf) {
  return s->cfg.pool_va + (uint64_t)buf * s->cfg.pool_buf_size;
}

uint8_t* exo_buf_ptr(struct exo_stack* s, uint32_t buf) {
  return s->ops.translate(s->ops.ctx, exo_buf_va(s, buf), s->cfg.pool_buf_size, 1);
}

int exo_buf_alloc(struct exo_stack* s) {
  if (s->nfree == 0) {
    s->counters.pool_empty++;
    return -1;
  }
  return (int)s->free_bufs[--s->nfree];
}

void exo_buf_free(struct exo_stack* s, uint32_t buf) {
  s->free_bufs[s->nfree++] = buf;
}

extern "C" int exo_stack_init(struct exo_stack* s, const struct exo_stack_config* cfg,
                              const struct exo_kernel_ops* ops) {
  memset(s, 0, sizeof *s);
  if (!ops->transmit || !ops->translate || !ops->now_ns) return -EINVAL;
  if (cfg->mtu < 68 || cfg->pool_buf_size < (uint32_t)cfg->mtu + EXO_ETH_HDR ||
      cfg->pool_buf_size > 4096 || 4096 % cfg->pool_buf_size)
    return -EINVAL; /* buffers must not cross pages */
  if (cfg->pool_count == 0 || cfg->pool_count > EXO_POOL_MAX) return -EINVAL;
  s->cfg = *cfg;
  s->ops = *ops;
  RingHeader* h = ring_of(s);
  if (!h || h->slots == 0 || h->slots > cfg->pool_count / 2) return -EINVAL;
  for (uint32_t i = cfg->pool_count; i-- > 0;) s->free_bufs[s->nfree++] = i;
  /* Post a buffer in every ring slot. */
  RingSlot* slots = exojit::runtime::ring_slots(h);
  for (uint32_t i = 0; i < h->slots; ++i) {
    int b = exo_buf_alloc(s);
    slots[i].buffer = exo_buf_va(s, (uint32_t)b);
    slots[i].capacity = cfg->pool_buf_size;
  }
  for (int i = 0; i < EXO_REASM_SLOTS; ++i) {
    s->reasm[i].data = (uint8_t*)malloc(EXO_REASM_BYTES);
    if (!s->reasm[i].data) {
      exo_stack_fini(s);
      return -ENOMEM;
    }
  }
  s->next_ip_id = 1;
  s->next_port = 49152;
  exo_route_add(s, cfg->ip & cfg->netmask, cfg->netmask, 0);
  if (cfg->gateway) exo_route_add(s, 0, 0, cfg->gateway);
  return 0;
}

extern "C" void exo_stack_fini(struct exo_stack* s) {
  for (int i = 0; i < EXO_REASM_SLOTS; ++i) {
    free(s->reasm[i].data);
    s->reasm[i].data = NULL;
  }
}

/* One frame from the ring. Returns 1 when the frame's buffer was kept (handed to a socket). */
static int frame_input(struct exo_stack* s, uint8_t* p, uint32_t len, int pool_buf) {
  s->counters.rx_frames++;
  if (len < EXO_ETH_HDR) {
    s->counters.rx_bad_ether++;
    return 0;
  }
  static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  if (memcmp(p, s->cfg.mac, 6) != 0 && memcmp(p, broadcast, 6) != 0) {
    s->counters.rx_not_for_us++;
    return 0;
  }
  uint16_t type = exo_get16(p + 12);
  int kept = 0;
  if (type == EXO_ETHERTYPE_ARP)
    exo_arp_input(s, p + EXO_ETH_HDR, len - EXO_ETH_HDR);
  else if (type == EXO_ETHERTYPE_IP)
    exo_ip_input(s, p + EXO_ETH_HDR, len - EXO_ETH_HDR, pool_buf, &kept);
  else
    s->counters.rx_bad_ether++;
  return kept;
}

extern "C" int exo_stack_poll(struct exo_stack* s) {
  RingHeader* h = ring_of(s);
  if (!h) return -EFAULT;
  int n = 0;
  RingSlot* slot;
  while ((slot = exojit::runtime::ring_peek(h)) != NULL) {
    uint64_t va = slot->buffer;
    uint32_t len = slot->length;
    int buf = -1;
    if (va >= s->cfg.pool_va && (va - s->cfg.pool_va) % s->cfg.pool_buf_size == 0 &&
        (va - s->cfg.pool_va) / s->cfg.pool_buf_size < s->cfg.pool_count)
      buf = (int)((va - s->cfg.pool_va) / s->cfg.pool_buf_size);
    uint8_t* p = buf >= 0 && len <= s->cfg.pool_buf_size ? exo_buf_ptr(s, (uint32_t)buf) : NULL;
    int kept = p ? frame_input(s, p, len, buf) : 0;
    if (kept) {
      /* The socket holds this buffer: give the ring a fresh one. */
      int fresh = exo_buf_alloc(s); /* UDP keeps a buffer only when the pool has one spare */
      exojit::runtime::ring_release(h, exo_buf_va(s, (uint32_t)fresh), s->cfg.pool_buf_size);
    } else {
      exojit::runtime::ring_release(h, va, slot->capacity);
    }
    ++n;
  }
  return n;
}

extern "C" int exo_route_add(struct exo_stack* s, uint32_t dest, uint32_t mask, uint32_t gateway) {
  for (int i = 0; i < EXO_ROUTES; ++i)
    if (!s->routes[i].in_use) {
      if (exo_guard_before(s, EXO_CHANGE_ROUTE, dest & mask, 0)) return -EBUSY;
      s->routes[i].dest = dest & mask;
      s->routes[i].mask = mask;
      s->routes[i].gateway = gateway;
      s->routes[i].in_use = 1;
      exo_guard_after(s, EXO_CHANGE_ROUTE, dest & mask, 0);
      return 0;
    }
  return -ENOSPC;
}

extern "C" int exo_set_mtu(struct exo_stack* s, uint16_t mtu) {
  if (mtu < 68 || s->cfg.pool_buf_size < (uint32_t)mtu + EXO_ETH_HDR) return -EINVAL;
  if (mtu == s->cfg.mtu) return 0;
  if (exo_guard_before(s, EXO_CHANGE_MTU, 0, mtu)) return -EBUSY;
  s->cfg.mtu = mtu;
  exo_guard_after(s, EXO_CHANGE_MTU, 0, mtu);
  return 0;
}

extern "C" uint32_t exo_route_lookup(struct exo_stack* s, uint32_t dst) {
  /* Longest prefix wins; a gateway must itself be on the local subnet. */
  int best = -1;
  for (int i = 0; i < EXO_ROUTES; ++i) {
    const struct exo_route* r = &s->routes[i];
    if (r->in_use && (dst & r->mask) == r->dest && (best < 0 || r->mask > s->routes[best].mask))
      best = i;
  }
  if (best < 0) return 0;
  uint32_t gw = s->routes[best].gateway;
  if (gw == 0) return dst;
  if ((gw & s->cfg.netmask) != (s->cfg.ip & s->cfg.netmask)) return 0;
  return gw;
}

int exo_eth_transmit(struct exo_stack* s, uint32_t buf, uint32_t frame_len) {
  int rc = s->ops.transmit(s->ops.ctx, exo_buf_va(s, buf), frame_len);
  exo_buf_free(s, buf);
  if (rc < 0) {
    s->counters.tx_drops_ring_full++;
    return rc;
  }
  s->counters.tx_frames++;
  return 0;
}

int exo_eth_output_ip(struct exo_stack* s, uint32_t buf, uint8_t* p, uint32_t frame_len,
                      uint32_t next_hop) {
  memcpy(p + 6, s->cfg.mac, 6);
  exo_put16(p + 12, EXO_ETHERTYPE_IP);
  struct exo_arp_entry* e = exo_arp_resolve(s, next_hop);
  if (e && e->state == 2) {
    memcpy(p, e->mac, 6);
    return exo_eth_transmit(s, buf, frame_len);
  }
  /* Not resolved: keep the frame on the entry until the reply comes (the request goes out once
   * per entry; exo_arp_lookup creates it). */
  if (!e) {
    exo_buf_free(s, buf);
    s->counters.arp_pending_drops++;
    return -ENOBUFS;
  }
  if (e->npending == EXO_ARP_PENDING) {
    exo_buf_free(s, buf);
    s->counters.arp_pending_drops++;
    return -ENOBUFS;
  }
  e->pending[e->npending] = buf;
  e->pending_len[e->npending] = frame_len;
  e->npending++;
  return 0;
}
