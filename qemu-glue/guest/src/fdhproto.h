/* SPDX-License-Identifier: MIT */
/*
 * fdhproto.h -- wire format shared by gueststream (inside the test guest) and
 * peer (host side, inside the test network namespace).
 *
 * One UDP datagram = one struct fdh_pkt, 64 bytes, every field little-endian
 * (both ends are x86_64, so the struct is sent as is; the static assert keeps
 * the layout honest).
 *
 *   type        direction    seq                 aux1                    aux2                   aux3
 *   STREAM  1   guest->host  stream seq          probes received         highest probe seq + 1  echoes sent
 *   PROBE   2   host->guest  probe seq           -                       -                      -
 *   ECHO    3   guest->host  probe seq (copied)  probe's t_ns (peer clk) probes received        -
 *   STOP    4   host->guest  -                   -                       -                      -
 *   STATQ   5   host->guest  request id          -                       -                      -
 *   STAT    6   guest->host  request id          probes received         highest probe seq + 1  stream sent (next seq)
 *   DROPS   7   guest->host  request id          (struct fdh_drops: the guest's own drop counters)
 *
 * The guest answers every STATQ with a STAT and then a DROPS: where a
 * datagram that reached the guest can die (the NIC's rx drops, the UDP
 * layer's receive-buffer and other errors, our socket's own drop count).
 * t_ns is the sender's CLOCK_MONOTONIC; uptime_ns is the guest's
 * CLOCK_BOOTTIME; boot_id is a random 64-bit nonce drawn once per gueststream
 * start (so a reboot or a restarted program shows up as a new boot_id).
 */
#ifndef FDHPROTO_H
#define FDHPROTO_H

#include <stdint.h>

#define FDH_MAGIC 0x31484446u /* "FDH1" */

enum {
	FDH_STREAM = 1,
	FDH_PROBE = 2,
	FDH_ECHO = 3,
	FDH_STOP = 4,
	FDH_STATQ = 5,
	FDH_STAT = 6,
	FDH_DROPS = 7,
};

struct fdh_pkt {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint64_t seq;
	uint64_t t_ns;
	uint64_t uptime_ns;
	uint64_t boot_id;
	uint64_t aux1;
	uint64_t aux2;
	uint64_t aux3;
};

_Static_assert(sizeof(struct fdh_pkt) == 64, "fdh_pkt must be 64 bytes");

/* DROPS: counters since the guest booted (the peer takes differences). */
struct fdh_drops {
	uint32_t magic;
	uint16_t type;			/* FDH_DROPS */
	uint16_t flags;			/* FDH_DROPS_* bits: counters that could not be read */
	uint64_t seq;			/* the STATQ's request id */
	uint64_t rx_packets;		/* /sys/class/net/eth0/statistics/rx_packets */
	uint64_t rx_dropped;		/* .../rx_dropped (virtio-net: per-queue drops) */
	uint64_t rx_missed_errors;	/* .../rx_missed_errors */
	uint64_t udp_in_errors;		/* /proc/net/snmp Udp: InErrors */
	uint64_t udp_rcvbuf_errors;	/* /proc/net/snmp Udp: RcvbufErrors */
	uint64_t sock_drops;		/* /proc/net/udp "drops" of gueststream's socket */
};

#define FDH_DROPS_NO_NIC 1u		/* the eth0 statistics were not readable */
#define FDH_DROPS_NO_SNMP 2u		/* /proc/net/snmp had no Udp counters */
#define FDH_DROPS_NO_SOCK 4u		/* our socket was not in /proc/net/udp */

_Static_assert(sizeof(struct fdh_drops) == 64, "fdh_drops must be 64 bytes");

#define FDH_GUEST_PORT 5001 /* gueststream listens here (probes) */
#define FDH_PEER_PORT 5000  /* peer listens here (stream, echoes) */

#endif
