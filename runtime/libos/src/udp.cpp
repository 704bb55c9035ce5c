// SPDX-License-Identifier: MIT
/* UDP (RFC 768) and the socket API: descriptors, options, the send path, receive queues. */
#include "internal_p.h"

#define UDP_MAX_PAYLOAD (65535 - EXO_IP_HDR - EXO_UDP_HDR)

static struct exo_sock* socket_of(struct exo_stack* s, int fd) {
  if (fd < 0 || fd >= EXO_MAX_SOCKETS || !s->sockets[fd].in_use) return NULL;
  return &s->sockets[fd];
}

static int port_in_use(struct exo_stack* s, uint16_t port) {
  for (int i = 0; i < EXO_MAX_SOCKETS; ++i)
    if (s->sockets[i].in_use && s->sockets[i].bound && s->sockets[i].local_port == port) return 1;
  return 0;
}

/* The pseudo-header sum of RFC 768. */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint32_t udp_len) {
  uint8_t ph[12];
  exo_put32(ph, src);
  exo_put32(ph + 4, dst);
  ph[8] = 0;
  ph[9] = EXO_PROTO_UDP;
  exo_put16(ph + 10, (uint16_t)udp_len);
  return exo_cksum_add(0, ph, 12);
}

extern "C" int exo_socket(struct exo_stack* s) {
  for (int fd = 0; fd < EXO_MAX_SOCKETS; ++fd)
    if (!s->sockets[fd].in_use) {
      struct exo_sock* k = &s->sockets[fd];
      memset(k, 0, sizeof *k);
      k->in_use = 1;
      k->checksum = 1;
      k->ttl = 64;
      return fd;
    }
  return -EMFILE;
}

extern "C" int exo_bind(struct exo_stack* s, int fd, uint16_t port) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  if (k->bound) return -EINVAL;
  if (port == 0) { /* an ephemeral port */
    for (int tries = 0; tries < 16384 && port == 0; ++tries) {
      uint16_t p = s->next_port;
      s->next_port = (uint16_t)(s->next_port == 65535 ? 49152 : s->next_port + 1);
      if (!port_in_use(s, p)) port = p;
    }
    if (port == 0) return -EADDRINUSE;
  } else if (port_in_use(s, port)) {
    return -EADDRINUSE;
  }
  k->local_port = port;
  k->bound = 1;
  return 0;
}

extern "C" int exo_connect(struct exo_stack* s, int fd, uint32_t ip, uint16_t port) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  if (ip == 0 || port == 0) return -EINVAL;
  if (!k->bound) {
    int rc = exo_bind(s, fd, 0);
    if (rc < 0) return rc;
  }
  if (k->connected && k->remote_ip == ip && k->remote_port == port) return 0;
  if (exo_guard_before(s, EXO_CHANGE_CONNECT, (uint32_t)fd, 0)) return -EBUSY;
  k->remote_ip = ip;
  k->remote_port = port;
  k->connected = 1;
  exo_guard_after(s, EXO_CHANGE_CONNECT, (uint32_t)fd, 0);
  return 0;
}

extern "C" int exo_setsockopt(struct exo_stack* s, int fd, int option, int value) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  int* field;
  switch (option) {
    case EXO_SO_NONBLOCK:
      field = &k->nonblock;
      value = value != 0;
      break;
    case EXO_SO_CHECKSUM:
      field = &k->checksum;
      value = value != 0;
      break;
    case EXO_SO_TTL:
      if (value < 1 || value > 255) return -EINVAL;
      field = &k->ttl;
      break;
    case EXO_SO_DONTFRAG:
      field = &k->dontfrag;
      value = value != 0;
      break;
    default:
      return -ENOPROTOOPT;
  }
  if (*field == value) return 0;
  if (exo_guard_before(s, EXO_CHANGE_SOCKOPT, (uint32_t)fd, option)) return -EBUSY;
  *field = value;
  exo_guard_after(s, EXO_CHANGE_SOCKOPT, (uint32_t)fd, option);
  return 0;
}

extern "C" int exo_getsockopt(struct exo_stack* s, int fd, int option, int* value) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  switch (option) {
    case EXO_SO_NONBLOCK:
      *value = k->nonblock;
      return 0;
    case EXO_SO_CHECKSUM:
      *value = k->checksum;
      return 0;
    case EXO_SO_TTL:
      *value = k->ttl;
      return 0;
    case EXO_SO_DONTFRAG:
      *value = k->dontfrag;
      return 0;
  }
  return -ENOPROTOOPT;
}

extern "C" int exo_sendto(struct exo_stack* s, int fd, const void* data, uint32_t len, uint32_t ip,
                          uint16_t port) {
  /* Socket lookup by descriptor. */
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  /* Destination: given, or the connected peer. */
  if (ip == 0) {
    if (!k->connected) return -EDESTADDRREQ;
    ip = k->remote_ip;
    port = k->remote_port;
  }
  if (port == 0) return -EINVAL;
  if (len > UDP_MAX_PAYLOAD) return -EMSGSIZE;
  if (len && !data) return -EFAULT;
  if (!k->bound) {
    int rc = exo_bind(s, fd, 0);
    if (rc < 0) return rc;
  }
  /* Header, and the checksum over the pseudo-header, header and data unless turned off. */
  uint8_t h[EXO_UDP_HDR];
  uint32_t udp_len = EXO_UDP_HDR + len;
  exo_put16(h, k->local_port);
  exo_put16(h + 2, port);
  exo_put16(h + 4, (uint16_t)udp_len);
  exo_put16(h + 6, 0);
  if (k->checksum) {
    uint32_t sum = pseudo_sum(s->cfg.ip, ip, udp_len);
    sum = exo_cksum_add(sum, h, EXO_UDP_HDR);
    sum = exo_cksum_add(sum, (const uint8_t*)data, len);
    uint16_t c = exo_cksum_fold(sum);
    exo_put16(h + 6, c ? c : 0xffff); /* 0 means "no checksum" on the wire */
  }
  int rc = exo_ip_output(s, ip, EXO_PROTO_UDP, k->ttl, k->dontfrag, h, EXO_UDP_HDR,
                         (const uint8_t*)data, len);
  return rc < 0 ? rc : (int)len;
}

void exo_udp_input(struct exo_stack* s, uint32_t src, uint32_t dst, const uint8_t* p, uint32_t len,
                   int pool_buf, int reasm, int* kept) {
  s->counters.udp_rx++;
  if (len < EXO_UDP_HDR) {
    s->counters.udp_bad_length++;
    return;
  }
  uint32_t udp_len = exo_get16(p + 4);
  if (udp_len < EXO_UDP_HDR || udp_len > len) {
    s->counters.udp_bad_length++;
    return;
  }
  uint16_t sport = exo_get16(p), dport = exo_get16(p + 2);
  struct exo_sock* k = NULL;
  for (int i = 0; i < EXO_MAX_SOCKETS && !k; ++i) {
    struct exo_sock* c = &s->sockets[i];
    if (c->in_use && c->bound && c->local_port == dport &&
        (!c->connected || (c->remote_ip == src && c->remote_port == sport)))
      k = c;
  }
  if (!k) {
    s->counters.udp_no_socket++;
    return;
  }
  if (k->checksum && exo_get16(p + 6) != 0) {
    uint32_t sum = exo_cksum_add(pseudo_sum(src, dst, udp_len), p, udp_len);
    if (exo_cksum_fold(sum) != 0) {
      s->counters.udp_bad_checksum++;
      return;
    }
  }
  if (k->q_head - k->q_tail >= EXO_SOCKET_QUEUE) {
    s->counters.udp_queue_full++;
    k->rx_drops_queue_full++;
    return;
  }
  /* Keep the message where it landed (zero copy) when the ring can be given another buffer. */
  if (pool_buf >= 0 && s->nfree == 0) {
    s->counters.pool_empty++;
    return;
  }
  struct exo_datagram* d = &k->queue[k->q_head % EXO_SOCKET_QUEUE];
  d->data = (uint8_t*)p + EXO_UDP_HDR;
  d->len = udp_len - EXO_UDP_HDR;
  d->src_ip = src;
  d->src_port = sport;
  d->pool_buf = (int16_t)pool_buf;
  d->reasm = (int16_t)reasm;
  k->q_head++;
  *kept = 1;
}

static void release(struct exo_stack* s, struct exo_datagram* d) {
  if (d->pool_buf >= 0) exo_buf_free(s, (uint32_t)d->pool_buf);
  if (d->reasm >= 0) exo_reasm_release(s, d->reasm);
}

extern "C" int exo_recvfrom(struct exo_stack* s, int fd, void* buf, uint32_t cap, uint32_t* ip,
                            uint16_t* port) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  if (!k->bound) return -EINVAL;
  while (k->q_head == k->q_tail) {
    exo_stack_poll(s);
    if (k->q_head != k->q_tail) break;
    if (k->nonblock || !s->ops.wait) return -EAGAIN;
    int rc = s->ops.wait(s->ops.ctx);
    if (rc < 0) return rc;
  }
  struct exo_datagram* d = &k->queue[k->q_tail % EXO_SOCKET_QUEUE];
  uint32_t n = d->len < cap ? d->len : cap;
  if (n) memcpy(buf, d->data, n);
  if (ip) *ip = d->src_ip;
  if (port) *port = d->src_port;
  int len = (int)d->len;
  release(s, d);
  k->q_tail++;
  return len;
}

extern "C" int exo_close(struct exo_stack* s, int fd) {
  struct exo_sock* k = socket_of(s, fd);
  if (!k) return -EBADF;
  exo_guard_before(s, EXO_CHANGE_CLOSE, (uint32_t)fd, 0); /* a close is never refused */
  while (k->q_tail != k->q_head) release(s, &k->queue[k->q_tail++ % EXO_SOCKET_QUEUE]);
  k->in_use = 0;
  exo_guard_after(s, EXO_CHANGE_CLOSE, (uint32_t)fd, 0);
  return 0;
}
