// SPDX-License-Identifier: MIT
/* ICMP (RFC 792): echo request -> echo reply, and echo replies counted for exo_ping. */
#include "internal_p.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define ICMP_MAX_PING 8192

void exo_icmp_input(struct exo_stack* s, uint32_t src, const uint8_t* p, uint32_t len) {
  s->counters.icmp_rx++;
  if (len < 8 || exo_cksum_fold(exo_cksum_add(0, p, len)) != 0) {
    s->counters.icmp_bad++;
    return;
  }
  if (p[0] == ICMP_ECHO_REQUEST && p[1] == 0) {
    uint8_t head[8];
    memcpy(head, p, 8);
    head[0] = ICMP_ECHO_REPLY;
    exo_put16(head + 2, 0);
    uint32_t sum = exo_cksum_add(exo_cksum_add(0, head, 8), p + 8, len - 8);
    exo_put16(head + 2, exo_cksum_fold(sum));
    if (exo_ip_output(s, src, EXO_PROTO_ICMP, 64, 0, head, 8, p + 8, len - 8) == 0)
      s->counters.icmp_echo_replies_sent++;
  } else if (p[0] == ICMP_ECHO_REPLY) {
    s->counters.icmp_echo_replies_rx++;
    s->last_echo_id = exo_get16(p + 4);
    s->last_echo_seq = exo_get16(p + 6);
  }
}

extern "C" int exo_ping(struct exo_stack* s, uint32_t ip, uint16_t id, uint16_t seq,
                        uint32_t payload_len) {
  if (payload_len > ICMP_MAX_PING) return -EMSGSIZE;
  uint8_t payload[ICMP_MAX_PING];
  for (uint32_t i = 0; i < payload_len; ++i) payload[i] = (uint8_t)i;
  uint8_t head[8] = {ICMP_ECHO_REQUEST, 0, 0, 0, 0, 0, 0, 0};
  exo_put16(head + 4, id);
  exo_put16(head + 6, seq);
  uint32_t sum = exo_cksum_add(exo_cksum_add(0, head, 8), payload, payload_len);
  exo_put16(head + 2, exo_cksum_fold(sum));
  return exo_ip_output(s, ip, EXO_PROTO_ICMP, 64, 0, head, 8, payload, payload_len);
}
