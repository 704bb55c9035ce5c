// SPDX-License-Identifier: MIT
/* The library OS network stack: ARP, IPv4 (header checksum, fragmentation and reassembly), ICMP
 * echo and UDP with a socket-like API, over one packet ring and one NIC.
 *
 * Generic C-style code, the way a real stack is written: the socket is found by its descriptor,
 * options are interpreted at run time, the route and the ARP entry are looked up and validated
 * on every send, buffers are allocated from a pool, headers are built field by field and the
 * checksums computed. The specializer (issue 8) compiles this same code to LLVM bitcode and
 * specializes the send path, whose entry is exo_sendto(); the send path uses no templates, no
 * exceptions and no virtual calls, only the function pointers of exo_kernel_ops.
 *
 * Errors are negative errno values. Addresses and ports are in host byte order at the API.
 * Memory: packet buffers live in the environment's memory (a pool that also feeds the ring);
 * the stack reaches them through exo_kernel_ops.translate, i.e. through the environment's MMU.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EXO_MAX_SOCKETS 64
#define EXO_SOCKET_QUEUE 64
#define EXO_ARP_ENTRIES 32
#define EXO_ARP_PENDING 48 /* a whole 64 KiB datagram in 1500-byte fragments */
#define EXO_ROUTES 8
#define EXO_REASM_SLOTS 8
#define EXO_REASM_BYTES 65536
#define EXO_POOL_MAX 1024
#define EXO_REASM_TIMEOUT_NS 30000000000ull

/* Socket options (exo_setsockopt). */
#define EXO_SO_NONBLOCK 1 /* recvfrom returns -EAGAIN instead of waiting */
#define EXO_SO_CHECKSUM 2 /* 1 (default): compute UDP checksums on send, verify on receive */
#define EXO_SO_TTL 3      /* IPv4 time to live, 1..255 (default 64) */
#define EXO_SO_DONTFRAG 4 /* 1: refuse datagrams larger than the MTU (-EMSGSIZE) */

/* How the stack reaches its environment and the kernel. */
struct exo_kernel_ops {
  void* ctx;
  /* Transmit `len` bytes at `va` (environment memory) on the NIC: 0, or -ENOBUFS when the
   * transmit ring is full. The buffer may be reused when it returns. */
  int (*transmit)(void* ctx, uint64_t va, uint32_t len);
  /* Host pointer to [va, va+len) of environment memory (one page), or NULL. */
  uint8_t* (*translate)(void* ctx, uint64_t va, uint32_t len, int write);
  uint64_t (*now_ns)(void* ctx);
  /* Free slots in the NIC's transmit ring, so a fragmented datagram goes out whole or not at
   * all; NULL when unknown. */
  uint32_t (*tx_room)(void* ctx);
  /* Blocks until the environment is woken: 0, or -EINTR when it is asked to stop. NULL when
   * blocking is impossible (scheduler model). */
  int (*wait)(void* ctx);
};

/* Code guards ([TEMPO04], 2.2): a run-time specializer freezes parts of the stack's state (a
 * socket's fields and options, the routes, ARP entries, the MTU) into code. The stack calls the
 * guard around every change of such state: once before it (EXO_GUARD_BEFORE: a nonzero return
 * refuses the change, which then fails with -EBUSY) and once after it (EXO_GUARD_AFTER). A change
 * that changes nothing is not reported. */
#define EXO_GUARD_BEFORE 0
#define EXO_GUARD_AFTER 1
#define EXO_CHANGE_SOCKOPT 1 /* subject: fd, detail: the option */
#define EXO_CHANGE_CLOSE 2   /* subject: fd */
#define EXO_CHANGE_CONNECT 3 /* subject: fd (its peer changes) */
#define EXO_CHANGE_ROUTE 4   /* a route was added */
#define EXO_CHANGE_ARP 5     /* subject: the IPv4 address whose entry changes */
#define EXO_CHANGE_MTU 6     /* detail: the new MTU */

struct exo_guard_ops {
  void* ctx;
  int (*changed)(void* ctx, int phase, int event, uint32_t subject, int detail); /* NULL: none */
};

struct exo_stack_config {
  uint8_t mac[6];
  uint32_t ip, netmask, gateway; /* gateway 0: none */
  uint16_t mtu;                  /* IP MTU, 68..EXO_BUF_SIZE-14 */
  uint64_t ring_va;              /* the packet ring (runtime/ring.h layout) */
  uint64_t pool_va;              /* buffer pool: pool_count buffers of pool_buf_size bytes */
  uint32_t pool_count, pool_buf_size;
};

struct exo_datagram {
  uint8_t* data; /* payload (host view) */
  uint32_t len;
  uint32_t src_ip;
  uint16_t src_port;
  int16_t pool_buf; /* pool buffer holding it, or -1 */
  int16_t reasm;    /* reassembly slot holding it, or -1 */
};

struct exo_sock {
  int in_use, bound, connected;
  uint16_t local_port, remote_port;
  uint32_t remote_ip;
  int nonblock, checksum, ttl, dontfrag;
  struct exo_datagram queue[EXO_SOCKET_QUEUE];
  uint32_t q_head, q_tail;
  uint64_t rx_drops_queue_full;
};

struct exo_arp_entry {
  uint32_t ip;
  uint8_t mac[6];
  int state; /* 0 free, 1 incomplete (request sent), 2 resolved */
  uint32_t pending[EXO_ARP_PENDING], pending_len[EXO_ARP_PENDING], npending;
  uint64_t requested_ns;
};

struct exo_route {
  uint32_t dest, mask, gateway; /* gateway 0: on link */
  int in_use;
};

struct exo_reasm {
  int in_use, held; /* held: completed, its datagram waits in a socket queue */
  uint32_t src, dst;
  uint16_t id;
  uint8_t proto;
  uint32_t total;   /* payload bytes, known once the last fragment arrived; 0 before */
  uint32_t blocks;  /* 8-byte blocks received */
  uint32_t max_end; /* the largest fragment end seen */
  uint64_t started_ns;
  uint8_t have[EXO_REASM_BYTES / 8 / 8]; /* bitmap of received 8-byte blocks */
  uint8_t* data;                         /* EXO_REASM_BYTES of host memory */
};

struct exo_counters {
  uint64_t rx_frames, rx_not_for_us, rx_bad_ether;
  uint64_t arp_rx, arp_bad, arp_requests_sent, arp_replies_sent, arp_pending_drops;
  uint64_t ip_rx, ip_bad_header, ip_bad_checksum, ip_bad_length, ip_not_for_us, ip_bad_proto;
  uint64_t frag_rx, frag_bad, frag_reassembled, frag_timeouts, frag_no_slot;
  uint64_t icmp_rx, icmp_bad, icmp_echo_replies_sent, icmp_echo_replies_rx;
  uint64_t udp_rx, udp_bad_length, udp_bad_checksum, udp_no_socket, udp_queue_full;
  uint64_t tx_frames, tx_fragments, tx_drops_ring_full, tx_no_buffer, tx_no_route;
  uint64_t pool_empty;
};

struct exo_stack {
  struct exo_stack_config cfg;
  struct exo_kernel_ops ops;
  struct exo_sock sockets[EXO_MAX_SOCKETS];
  struct exo_arp_entry arp[EXO_ARP_ENTRIES];
  struct exo_route routes[EXO_ROUTES];
  struct exo_reasm reasm[EXO_REASM_SLOTS];
  uint32_t free_bufs[EXO_POOL_MAX];
  uint32_t nfree;
  uint16_t next_ip_id, next_port;
  uint16_t last_echo_id, last_echo_seq;
  struct exo_counters counters;
  struct exo_guard_ops guard;
};

#ifdef __cplusplus
extern "C" {
#endif

/* Sets up the stack: routes (the local subnet, and the gateway as default), the pool, and every
 * ring slot posted with a pool buffer. 0 or a negative errno. */
int exo_stack_init(struct exo_stack* s, const struct exo_stack_config* cfg,
                   const struct exo_kernel_ops* ops);
void exo_stack_fini(struct exo_stack* s);
/* Processes every frame waiting in the ring; returns how many. */
int exo_stack_poll(struct exo_stack* s);

int exo_route_add(struct exo_stack* s, uint32_t dest, uint32_t mask, uint32_t gateway);
/* The next hop for dst (dst itself on the local subnet, else a gateway), or 0 when no route. */
uint32_t exo_route_lookup(struct exo_stack* s, uint32_t dst);
/* The ARP table's entry for ip (resolved or not), or NULL. */
struct exo_arp_entry* exo_arp_lookup(struct exo_stack* s, uint32_t ip);
/* A new IP MTU for the interface (a path MTU change), 68..pool_buf_size-14. */
int exo_set_mtu(struct exo_stack* s, uint16_t mtu);
int exo_arp_add(struct exo_stack* s, uint32_t ip, const uint8_t mac[6]); /* a static entry */

int exo_socket(struct exo_stack* s);
int exo_bind(struct exo_stack* s, int fd, uint16_t port);
int exo_connect(struct exo_stack* s, int fd, uint32_t ip, uint16_t port);
int exo_setsockopt(struct exo_stack* s, int fd, int option, int value);
int exo_getsockopt(struct exo_stack* s, int fd, int option, int* value);
/* The send path: the specializer's entry. ip 0: the connected peer. Returns len or -errno. */
int exo_sendto(struct exo_stack* s, int fd, const void* data, uint32_t len, uint32_t ip,
               uint16_t port);
/* Copies the next datagram (truncated to cap) and its source; returns its full length. */
int exo_recvfrom(struct exo_stack* s, int fd, void* buf, uint32_t cap, uint32_t* ip,
                 uint16_t* port);
int exo_close(struct exo_stack* s, int fd);

/* ICMP echo request to ip; the reply is counted (counters.icmp_echo_replies_rx, last_echo_*). */
int exo_ping(struct exo_stack* s, uint32_t ip, uint16_t id, uint16_t seq, uint32_t payload_len);

/* The Internet checksum (RFC 1071) of a buffer, added to `sum` (unfolded, 32-bit). */
uint32_t exo_cksum_add(uint32_t sum, const uint8_t* p, uint32_t len);
uint16_t exo_cksum_fold(uint32_t sum);

#ifdef __cplusplus
}
#endif
