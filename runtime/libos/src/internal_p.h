// SPDX-License-Identifier: MIT
/* Shared by the stack's files: byte order, buffers, and the layers' entry points. */
#pragma once

#include <errno.h>
#include <string.h>

#include "exojit/libos/netstack.h"

#define EXO_ETH_HDR 14
#define EXO_IP_HDR 20
#define EXO_UDP_HDR 8
#define EXO_ETHERTYPE_IP 0x0800
#define EXO_ETHERTYPE_ARP 0x0806
#define EXO_PROTO_ICMP 1
#define EXO_PROTO_UDP 17

/* Big-endian fields at any alignment: one unaligned access (and a byte swap on a little-endian
 * host) each, so that a header is written with a few wide stores, natively and in the
 * specializer's residual code alike. */
static inline uint16_t exo_be16(uint16_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return __builtin_bswap16(v);
#else
  return v;
#endif
}
static inline uint32_t exo_be32(uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return __builtin_bswap32(v);
#else
  return v;
#endif
}
static inline uint16_t exo_get16(const uint8_t* p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return exo_be16(v);
}
static inline uint32_t exo_get32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return exo_be32(v);
}
static inline void exo_put16(uint8_t* p, uint16_t v) {
  v = exo_be16(v);
  memcpy(p, &v, 2);
}
static inline void exo_put32(uint8_t* p, uint32_t v) {
  v = exo_be32(v);
  memcpy(p, &v, 4);
}

/* Code guards (netstack.h): exo_guard_before() returns nonzero when the change is refused. */
static inline int exo_guard_before(struct exo_stack* s, int event, uint32_t subject, int detail) {
  return s->guard.changed ? s->guard.changed(s->guard.ctx, EXO_GUARD_BEFORE, event, subject, detail)
                          : 0;
}
static inline void exo_guard_after(struct exo_stack* s, int event, uint32_t subject, int detail) {
  if (s->guard.changed) s->guard.changed(s->guard.ctx, EXO_GUARD_AFTER, event, subject, detail);
}

/* Pool buffers: index -> environment address and host view. */
int exo_buf_alloc(struct exo_stack* s);
void exo_buf_free(struct exo_stack* s, uint32_t buf);
uint64_t exo_buf_va(const struct exo_stack* s, uint32_t buf);
uint8_t* exo_buf_ptr(struct exo_stack* s, uint32_t buf);

/* Ethernet: fills the header of the frame in `buf` (mapped at `p` by the caller, which has just
 * written the rest) for next hop `ip` and sends it, or queues it on the incomplete ARP entry
 * (sending a request). Frees the buffer in every case. */
int exo_eth_output_ip(struct exo_stack* s, uint32_t buf, uint8_t* p, uint32_t frame_len,
                      uint32_t next_hop);
int exo_eth_transmit(struct exo_stack* s, uint32_t buf, uint32_t frame_len);

void exo_arp_input(struct exo_stack* s, const uint8_t* p, uint32_t len);
/* The entry for ip; a missing one is created incomplete and a request is sent. NULL: table full. */
struct exo_arp_entry* exo_arp_resolve(struct exo_stack* s, uint32_t ip);

/* IPv4: input of a whole frame's IP part; output of a transport payload (fragmented as needed).
 * `head`/`head_len` is the transport header, `data`/`len` the rest (either may be empty). */
void exo_ip_input(struct exo_stack* s, const uint8_t* p, uint32_t len, int pool_buf, int* kept);
int exo_ip_output(struct exo_stack* s, uint32_t dst, uint8_t proto, int ttl, int dontfrag,
                  const uint8_t* head, uint32_t head_len, const uint8_t* data, uint32_t len);
void exo_reasm_release(struct exo_stack* s, int slot);

void exo_icmp_input(struct exo_stack* s, uint32_t src, const uint8_t* p, uint32_t len);
/* UDP input; `pool_buf` >= 0 means the payload lies in that pool buffer and may be kept (zero
 * copy, *kept set); `reasm` >= 0 means it lies in that reassembly slot. */
void exo_udp_input(struct exo_stack* s, uint32_t src, uint32_t dst, const uint8_t* p, uint32_t len,
                   int pool_buf, int reasm, int* kept);
