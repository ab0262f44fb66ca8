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
 *
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

#define FDH_GUEST_PORT 5001 /* gueststream listens here (probes) */
#define FDH_PEER_PORT 5000  /* peer listens here (stream, echoes) */

#endif
