// SPDX-License-Identifier: MIT
/*
 * peer -- host side of the test traffic.  Runs inside the test network
 * namespace (never anywhere else): binds on the TAP's host-side address,
 * sends PROBE datagrams to the guest at a fixed rate, receives the guest's
 * STREAM and the ECHOes of its probes, timestamps every arrival (kernel
 * receive time, converted to CLOCK_MONOTONIC), and at the end writes a JSON
 * report (schema: qemu-glue/guest/README.md).
 *
 * Always bounded: stops after -t seconds (<= 3600) or on SIGTERM/SIGINT.
 * SIGUSR1 records a "switch begins" marker (as does -m T with an explicit
 * CLOCK_MONOTONIC time); the report gives the largest gap and the losses in
 * [marker, marker + window] for each marker.
 *
 * Usage: peer [-b BIND_IP] [-P PORT] [-g GUEST_IP] [-G GUEST_PORT] [-r PPS]
 *             [-t SECS] [-o OUT.json] [-w WINDOW_MS] [-m MONO_SECS]... [-s]
 *             [-R RAW.csv] [-q]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdhproto.h"

#define MAX_MARKS 64
#define MAX_BOOTS 16

struct arr {
	uint64_t seq;
	uint64_t t_arr;  /* peer CLOCK_MONOTONIC, ns */
	uint64_t t_src;  /* sender's t_ns (guest clock for STREAM; probe send time for ECHO) */
	uint64_t uptime; /* guest CLOCK_BOOTTIME ns */
	uint64_t boot_id;
};

struct vec {
	struct arr *v;
	size_t n, cap;
};

static volatile sig_atomic_t stop_sig;
static volatile sig_atomic_t nmarks_sig;
static uint64_t marks_sig[MAX_MARKS];

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_stop(int s)
{
	(void)s;
	stop_sig = 1;
}

static void on_mark(int s)
{
	(void)s;
	if (nmarks_sig < MAX_MARKS) {
		marks_sig[nmarks_sig] = now_ns(CLOCK_MONOTONIC);
		nmarks_sig = nmarks_sig + 1;
	}
}

static void push(struct vec *v, const struct arr *a)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 65536;
		struct arr *nv = realloc(v->v, nc * sizeof(*nv));

		if (!nv) {
			fprintf(stderr, "peer: out of memory\n");
			exit(1);
		}
		v->v = nv;
		v->cap = nc;
	}
	v->v[v->n++] = *a;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_boot_seq(const void *a, const void *b)
{
	const struct arr *x = a, *y = b;

	if (x->boot_id != y->boot_id)
		return x->boot_id < y->boot_id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double sms(int64_t ns)
{
	return (double)ns / 1e6;
}

/* inter-arrival gap statistics over arrivals in [lo, hi) of v (arrival order) */
struct gapstat {
	uint64_t max_gap, max_at, p50, p99;
	uint64_t seq_before, seq_after;
	size_t n;
};

static void gaps(const struct vec *v, struct gapstat *g)
{
	memset(g, 0, sizeof(*g));
	if (v->n < 2)
		return;
	uint64_t *d = malloc((v->n - 1) * sizeof(*d));

	if (!d)
		exit(1);
	for (size_t i = 1; i < v->n; i++) {
		uint64_t gap = v->v[i].t_arr - v->v[i - 1].t_arr;

		d[i - 1] = gap;
		if (gap > g->max_gap) {
			g->max_gap = gap;
			g->max_at = v->v[i - 1].t_arr;
			g->seq_before = v->v[i - 1].seq;
			g->seq_after = v->v[i].seq;
		}
	}
	g->n = v->n - 1;
	qsort(d, g->n, sizeof(*d), cmp_u64);
	g->p50 = d[g->n / 2];
	g->p99 = d[(g->n * 99) / 100];
	free(d);
}

/* unique/duplicate/lost by sequence, grouped by boot id.  extra_end: if
 * non-zero, the sender's own count of sent packets for boot extra_boot (so
 * trailing losses count).  For probes (single sender) boot ids are ignored and
 * the range is [0, extra_end). */
struct seqstat {
	uint64_t unique, dups, lost, expected;
};

static void seqs(const struct vec *v, int by_boot, uint64_t range_lo_fixed, int use_fixed_lo,
		 uint64_t extra_boot, uint64_t extra_end, struct seqstat *s)
{
	memset(s, 0, sizeof(*s));
	if (v->n == 0) {
		if (use_fixed_lo && extra_end > range_lo_fixed)
			s->expected = s->lost = extra_end - range_lo_fixed;
		return;
	}
	struct arr *c = malloc(v->n * sizeof(*c));

	if (!c)
		exit(1);
	memcpy(c, v->v, v->n * sizeof(*c));
	if (!by_boot)
		for (size_t i = 0; i < v->n; i++)
			c[i].boot_id = 0;
	qsort(c, v->n, sizeof(*c), cmp_boot_seq);
	size_t i = 0;

	while (i < v->n) {
		size_t j = i;
		uint64_t boot = c[i].boot_id, uniq = 0;

		for (; j < v->n && c[j].boot_id == boot; j++) {
			if (j > i && c[j].seq == c[j - 1].seq)
				s->dups++;
			else
				uniq++;
		}
		uint64_t lo = use_fixed_lo ? range_lo_fixed : c[i].seq;
		uint64_t hi = c[j - 1].seq + 1;

		if (extra_end && (!by_boot || boot == extra_boot) && extra_end > hi)
			hi = extra_end;
		s->unique += uniq;
		s->expected += hi - lo;
		s->lost += (hi - lo) - uniq;
		i = j;
	}
	free(c);
}

/* largest gap among inter-arrival intervals that overlap [a, b]; lost in window */
static void window_gap(const struct vec *v, uint64_t a, uint64_t b, uint64_t *gap, uint64_t *at,
		       uint64_t *lost)
{
	*gap = 0;
	*at = 0;
	*lost = 0;
	size_t first = (size_t)-1, last = 0;

	for (size_t i = 1; i < v->n; i++) {
		uint64_t s = v->v[i - 1].t_arr, e = v->v[i].t_arr;

		if (e < a || s > b)
			continue;
		if (first == (size_t)-1)
			first = i - 1;
		last = i;
		if (e - s > *gap) {
			*gap = e - s;
			*at = s;
		}
	}
	if (first == (size_t)-1)
		return;
	/* missing sequence numbers among arrivals first..last (same boot as first) */
	uint64_t lo = v->v[first].seq, hi = v->v[first].seq;
	size_t cnt = 0;
	uint64_t boot = v->v[first].boot_id;

	for (size_t i = first; i <= last; i++) {
		if (v->v[i].boot_id != boot)
			continue;
		if (v->v[i].seq < lo)
			lo = v->v[i].seq;
		if (v->v[i].seq > hi)
			hi = v->v[i].seq;
		cnt++;
	}
	if (hi - lo + 1 > cnt)
		*lost = hi - lo + 1 - cnt;
}

static void usage(void)
{
	fprintf(stderr, "usage: peer [-b BIND_IP] [-P PORT] [-g GUEST_IP] [-G GUEST_PORT] [-r PPS]\n"
			"            [-t SECS] [-o OUT.json] [-w WINDOW_MS] [-m MONO_SECS]... [-s]\n"
			"            [-R RAW.csv] [-q]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *bind_ip = "10.99.0.1", *guest_ip = "10.99.0.2", *out = NULL, *raw = NULL;
	int port = FDH_PEER_PORT, gport = FDH_GUEST_PORT, send_stop = 0, quiet = 0;
	long pps = 1000;
	double dur = 60, window_ms = 3000;
	uint64_t marks_opt[MAX_MARKS];
	int nmarks_opt = 0, opt;

	while ((opt = getopt(argc, argv, "b:P:g:G:r:t:o:w:m:sR:qh")) != -1) {
		switch (opt) {
		case 'b': bind_ip = optarg; break;
		case 'P': port = atoi(optarg); break;
		case 'g': guest_ip = optarg; break;
		case 'G': gport = atoi(optarg); break;
		case 'r': pps = atol(optarg); break;
		case 't': dur = atof(optarg); break;
		case 'o': out = optarg; break;
		case 'w': window_ms = atof(optarg); break;
		case 'm':
			if (nmarks_opt < MAX_MARKS)
				marks_opt[nmarks_opt++] = (uint64_t)(atof(optarg) * 1e9);
			break;
		case 's': send_stop = 1; break;
		case 'R': raw = optarg; break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (pps < 0 || pps > 100000 || !(dur > 0 && dur <= 3600) || window_ms < 0)
		usage();

	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct sigaction sm = { .sa_handler = on_mark, .sa_flags = SA_RESTART };
	sigaction(SIGUSR1, &sm, NULL);

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("peer: socket");
		return 1;
	}
	int one = 1, buf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in ga = { .sin_family = AF_INET, .sin_port = htons(gport) };
	if (inet_pton(AF_INET, bind_ip, &la.sin_addr) != 1 ||
	    inet_pton(AF_INET, guest_ip, &ga.sin_addr) != 1) {
		fprintf(stderr, "peer: bad address\n");
		return 2;
	}
	if (bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) {
		perror("peer: bind");
		return 1;
	}

	struct vec stream = { 0 }, echo = { 0 };
	uint64_t *probe_t = NULL;
	size_t probe_cap = 0;
	uint64_t probes = 0, stray = 0, send_err = 0;
	struct fdh_pkt stat_start = { 0 }, stat_end = { 0 };
	int have_stat_start = 0, have_stat_end = 0;
	/* the guest's drop counters, sent after each STAT (older guests: none) */
	struct fdh_drops drops_start = { 0 }, drops_end = { 0 };
	int have_drops_start = 0, have_drops_end = 0;
	uint64_t boots[MAX_BOOTS];
	int nboots = 0;

	const uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	const uint64_t t_end = t0 + (uint64_t)(dur * 1e9);
	const uint64_t period = pps ? 1000000000ull / (uint64_t)pps : 0;
	/* phases: 0 = handshake (STATQ until STAT, <= 2 s), 1 = probing, 2 = drain (STATQ, 400 ms) */
	int phase = 0;
	uint64_t next = t0, phase_t = t0, statq_next = t0, drain_end = 0;
	uint64_t statq_id = 1;

	if (!quiet)
		fprintf(stderr, "peer: ready bind=%s:%d guest=%s:%d pps=%ld t=%.1fs mono_t0=%.6f\n",
			bind_ip, port, guest_ip, gport, pps, dur, (double)t0 / 1e9);

	for (;;) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (phase == 0 && (have_stat_start || now - phase_t > 2000000000ull || stop_sig)) {
			phase = 1;
			next = now;
		}
		if (phase == 1 && (stop_sig || now >= t_end)) {
			phase = 2;
			drain_end = now + 400000000ull;
			statq_next = now + 100000000ull; /* let in-flight echoes land first */
		}
		/* The drain lasts 400 ms; a guest that has not answered the last
		 * STATQ by then (a slow or stalled guest: its final counts and drop
		 * counters are what attributes the losses) gets up to 2 s more. */
		if (phase == 2 && (stop_sig > 1 ||
				   (now >= drain_end && have_stat_end && have_drops_end) ||
				   now >= drain_end + 2000000000ull))
			break;

		if ((phase == 0 || phase == 2) && now >= statq_next &&
		    !(phase == 2 && have_stat_end && have_drops_end)) {
			struct fdh_pkt q = { .magic = FDH_MAGIC, .type = FDH_STATQ, .seq = statq_id++,
					     .t_ns = now };
			if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&ga, sizeof(ga)) < 0)
				send_err++;
			statq_next = now + 50000000ull;
		}
		if (phase == 1 && period && now >= next) {
			if (probes == probe_cap) {
				size_t nc = probe_cap ? probe_cap * 2 : 65536;
				uint64_t *np = realloc(probe_t, nc * sizeof(*np));

				if (!np)
					exit(1);
				probe_t = np;
				probe_cap = nc;
			}
			struct fdh_pkt p = { .magic = FDH_MAGIC, .type = FDH_PROBE, .seq = probes,
					     .t_ns = now };
			if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&ga, sizeof(ga)) < 0)
				send_err++; /* counted as sent: a lost probe */
			probe_t[probes++] = now;
			next += period;
			if (next <= now)
				next = now + period;
			continue;
		}

		uint64_t wake = phase == 1 && period ? next : now + 10000000ull;
		if (phase != 1 && statq_next < wake)
			wake = statq_next;
		if (wake > now + 10000000ull)
			wake = now + 10000000ull;
		uint64_t wait = wake > now ? wake - now : 0;
		struct timespec to = { .tv_sec = (time_t)(wait / 1000000000ull),
				       .tv_nsec = (long)(wait % 1000000000ull) };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (ppoll(&pfd, 1, &to, NULL) <= 0)
			continue;

		uint64_t off_rt = now_ns(CLOCK_REALTIME), off_mono = now_ns(CLOCK_MONOTONIC);
		int64_t rt2mono = (int64_t)off_mono - (int64_t)off_rt;

		for (int k = 0; k < 1024; k++) { /* bounded drain */
			union {
				struct fdh_pkt q;
				struct fdh_drops d;
			} u;
			struct fdh_pkt q;
			char cbuf[CMSG_SPACE(sizeof(struct timespec))];
			struct iovec iov = { .iov_base = &u, .iov_len = sizeof(u) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
			ssize_t len = recvmsg(fd, &mh, 0);

			if (len < 0)
				break;
			uint64_t t_arr = 0;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec ts;

					memcpy(&ts, CMSG_DATA(c), sizeof(ts));
					t_arr = (uint64_t)((int64_t)((uint64_t)ts.tv_sec * 1000000000ull +
								     (uint64_t)ts.tv_nsec) + rt2mono);
				}
			}
			if (!t_arr || t_arr > off_mono)
				t_arr = off_mono;
			if (len != sizeof(u) || u.q.magic != FDH_MAGIC) {
				stray++;
				continue;
			}
			if (u.q.type == FDH_DROPS) {
				/* the answer to the STATQ whose STAT was the baseline (it
				 * may come after probing began) */
				if (!have_drops_start && have_stat_start && u.d.seq == stat_start.seq) {
					drops_start = u.d;
					have_drops_start = 1;
				} else if (phase == 2) {
					drops_end = u.d;
					have_drops_end = 1;
				}
				continue;
			}
			q = u.q;
			struct arr a = { .seq = q.seq, .t_arr = t_arr, .t_src = q.t_ns,
					 .uptime = q.uptime_ns, .boot_id = q.boot_id };
			if (q.type == FDH_STREAM || q.type == FDH_ECHO || q.type == FDH_STAT) {
				int known = 0;

				for (int b = 0; b < nboots; b++)
					known |= boots[b] == q.boot_id;
				if (!known && nboots < MAX_BOOTS)
					boots[nboots++] = q.boot_id;
			}
			switch (q.type) {
			case FDH_STREAM:
				push(&stream, &a);
				break;
			case FDH_ECHO:
				if (q.seq < probes)
					push(&echo, &a);
				else
					stray++;
				break;
			case FDH_STAT:
				if (phase == 0 && !have_stat_start) {
					stat_start = q;
					have_stat_start = 1;
				} else if (phase == 2) {
					stat_end = q;
					have_stat_end = 1;
				}
				break;
			default:
				stray++;
			}
		}
	}
	uint64_t t_stop = now_ns(CLOCK_MONOTONIC);

	if (send_stop) {
		struct fdh_pkt q = { .magic = FDH_MAGIC, .type = FDH_STOP, .t_ns = t_stop };

		for (int i = 0; i < 3; i++)
			sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&ga, sizeof(ga));
	}
	close(fd);

	/* ---------------------------------------------------------------- report */
	struct gapstat gs, ge;
	struct seqstat ss, se;

	gaps(&stream, &gs);
	gaps(&echo, &ge);
	seqs(&stream, 1, 0, 0, have_stat_end ? stat_end.boot_id : 0,
	     have_stat_end ? stat_end.aux3 : 0, &ss);
	seqs(&echo, 0, 0, 1, 0, probes, &se);

	/* uptime continuity over the stream, arrival order */
	int64_t up_jump = 0, up_regr = 0;
	uint64_t up_first = stream.n ? stream.v[0].uptime : 0, up_last = 0;
	uint64_t guest_dt_at_gap = 0;
	for (size_t i = 1; i < stream.n; i++) {
		int64_t d = (int64_t)stream.v[i].uptime - (int64_t)stream.v[i - 1].uptime;

		if (d > up_jump)
			up_jump = d;
		if (d < up_regr)
			up_regr = d;
		if (stream.v[i - 1].t_arr == gs.max_at && stream.v[i - 1].seq == gs.seq_before)
			guest_dt_at_gap = (uint64_t)(d > 0 ? d : 0);
	}
	if (stream.n)
		up_last = stream.v[stream.n - 1].uptime;

	/* round trip time of probes */
	uint64_t rtt_p50 = 0, rtt_p99 = 0, rtt_max = 0;
	if (echo.n) {
		uint64_t *r = malloc(echo.n * sizeof(*r));

		if (!r)
			exit(1);
		for (size_t i = 0; i < echo.n; i++)
			r[i] = echo.v[i].t_arr - probe_t[echo.v[i].seq];
		qsort(r, echo.n, sizeof(*r), cmp_u64);
		rtt_p50 = r[echo.n / 2];
		rtt_p99 = r[(echo.n * 99) / 100];
		rtt_max = r[echo.n - 1];
		free(r);
	}

	FILE *o = out ? fopen(out, "w") : stdout;
	if (!o) {
		perror("peer: output");
		return 1;
	}
	fprintf(o, "{\n  \"schema\": \"fdh-peer/1\",\n");
	fprintf(o, "  \"pps\": %ld, \"duration_s\": %.3f, \"mono_t0_s\": %.9f, \"mono_end_s\": %.9f,\n",
		pps, (double)(t_stop - t0) / 1e9, (double)t0 / 1e9, (double)t_stop / 1e9);
	fprintf(o, "  \"stopped_by\": \"%s\", \"stray\": %" PRIu64 ", \"send_errors\": %" PRIu64 ",\n",
		stop_sig ? "signal" : "duration", stray, send_err);
	fprintf(o, "  \"guest_to_host\": {\"sent\": %" PRIu64 ", \"received\": %" PRIu64
		   ", \"lost\": %" PRIu64 ", \"duplicates\": %" PRIu64 ",\n",
		ss.expected, ss.unique, ss.lost, ss.dups);
	fprintf(o, "    \"sent_known_from_guest\": %s, \"max_gap_ms\": %.3f, \"max_gap_at_s\": %.6f,"
		   " \"max_gap_at_mono_s\": %.9f, \"max_gap_seq\": [%" PRIu64 ", %" PRIu64 "],\n",
		have_stat_end ? "true" : "false", ms(gs.max_gap),
		gs.max_at ? (double)(gs.max_at - t0) / 1e9 : 0.0, (double)gs.max_at / 1e9,
		gs.seq_before, gs.seq_after);
	fprintf(o, "    \"gap_p50_ms\": %.3f, \"gap_p99_ms\": %.3f, \"guest_clock_advance_at_max_gap_ms\": %.3f},\n",
		ms(gs.p50), ms(gs.p99), ms(guest_dt_at_gap));
	fprintf(o, "  \"host_to_guest\": {\"sent\": %" PRIu64 ", \"received\": %" PRIu64
		   ", \"lost\": %" PRIu64 ", \"duplicates\": %" PRIu64 ",\n",
		probes, se.unique, se.lost, se.dups);
	if (have_stat_start && have_stat_end && stat_end.boot_id == stat_start.boot_id)
		fprintf(o, "    \"received_by_guest\": %" PRIu64 ", \"lost_to_guest\": %" PRId64
			   ", \"lost_on_echo_path\": %" PRId64 ",\n",
			stat_end.aux1 - stat_start.aux1,
			(int64_t)probes - (int64_t)(stat_end.aux1 - stat_start.aux1),
			(int64_t)(stat_end.aux1 - stat_start.aux1) - (int64_t)se.unique);
	else
		fprintf(o, "    \"received_by_guest\": null, \"lost_to_guest\": null, \"lost_on_echo_path\": null,\n");
	fprintf(o, "    \"max_gap_ms\": %.3f, \"max_gap_at_s\": %.6f, \"max_gap_at_mono_s\": %.9f,"
		   " \"max_gap_seq\": [%" PRIu64 ", %" PRIu64 "],\n",
		ms(ge.max_gap), ge.max_at ? (double)(ge.max_at - t0) / 1e9 : 0.0,
		(double)ge.max_at / 1e9, ge.seq_before, ge.seq_after);
	fprintf(o, "    \"gap_p50_ms\": %.3f, \"gap_p99_ms\": %.3f, \"rtt_p50_ms\": %.3f, \"rtt_p99_ms\": %.3f,"
		   " \"rtt_max_ms\": %.3f},\n",
		ms(ge.p50), ms(ge.p99), ms(rtt_p50), ms(rtt_p99), ms(rtt_max));
	fprintf(o, "  \"guest\": {\"boot_ids\": [");
	for (int b = 0; b < nboots; b++)
		fprintf(o, "%s\"%016" PRIx64 "\"", b ? ", " : "", boots[b]);
	fprintf(o, "], \"uptime_first_s\": %.6f, \"uptime_last_s\": %.6f, \"max_uptime_jump_ms\": %.3f,"
		   " \"max_uptime_regression_ms\": %.3f, \"continuous\": %s},\n",
		(double)up_first / 1e9, (double)up_last / 1e9, sms(up_jump), sms(-up_regr),
		(nboots <= 1 && up_regr >= 0) ? "true" : "false");

	/* the guest's drop counters: at the start, at the end, the difference */
	fprintf(o, "  \"guest_drops\": ");
	if (have_drops_start && have_drops_end) {
		const struct fdh_drops *d[2] = { &drops_start, &drops_end };

		fprintf(o, "{");
		for (int i = 0; i < 3; i++) {
			const struct fdh_drops *a = d[i == 2 ? 1 : i], *z = d[1];
			/* delta: end - start; a counter is only ever added to */
#define C(f) (i == 2 ? z->f - d[0]->f : a->f)
			fprintf(o, "%s\"%s\": {\"rx_packets\": %" PRIu64 ", \"rx_dropped\": %" PRIu64
				   ", \"rx_missed_errors\": %" PRIu64 ", \"udp_in_errors\": %" PRIu64
				   ", \"udp_rcvbuf_errors\": %" PRIu64 ", \"sock_drops\": %" PRIu64
				   ", \"flags\": %u}",
				i ? ", " : "", i == 0 ? "start" : i == 1 ? "end" : "delta",
				C(rx_packets), C(rx_dropped), C(rx_missed_errors), C(udp_in_errors),
				C(udp_rcvbuf_errors), C(sock_drops), (unsigned)a->flags);
#undef C
		}
		fprintf(o, "},\n");
	} else {
		fprintf(o, "null,\n");
	}

	/* markers */
	uint64_t marks[2 * MAX_MARKS];
	int nm = 0;
	for (int i = 0; i < nmarks_opt; i++)
		marks[nm++] = marks_opt[i];
	for (int i = 0; i < nmarks_sig && nm < 2 * MAX_MARKS; i++)
		marks[nm++] = marks_sig[i];
	fprintf(o, "  \"window_ms\": %.3f,\n  \"markers\": [", window_ms);
	for (int i = 0; i < nm; i++) {
		uint64_t a = marks[i], b = marks[i] + (uint64_t)(window_ms * 1e6);
		uint64_t g1, at1, l1, g2, at2, l2 = 0;

		window_gap(&stream, a, b, &g1, &at1, &l1);
		window_gap(&echo, a, b, &g2, &at2, &l2);
		/* host->guest in window: probes sent in [a, b] without an echo */
		uint64_t pl = 0, psent = 0;
		if (probes) {
			unsigned char *got = calloc(probes, 1);

			if (!got)
				exit(1);
			for (size_t k = 0; k < echo.n; k++)
				got[echo.v[k].seq] = 1;
			for (uint64_t k = 0; k < probes; k++)
				if (probe_t[k] >= a && probe_t[k] <= b) {
					psent++;
					pl += !got[k];
				}
			free(got);
		}
		fprintf(o, "%s\n    {\"mono_s\": %.9f, \"at_s\": %.6f,"
			   " \"guest_to_host\": {\"max_gap_ms\": %.3f, \"gap_start_after_mark_ms\": %.3f, \"lost\": %" PRIu64 "},"
			   " \"host_to_guest\": {\"max_gap_ms\": %.3f, \"gap_start_after_mark_ms\": %.3f,"
			   " \"probes_sent\": %" PRIu64 ", \"lost\": %" PRIu64 "}}",
			i ? "," : "", (double)a / 1e9, (double)((int64_t)a - (int64_t)t0) / 1e9, ms(g1),
			at1 ? sms((int64_t)at1 - (int64_t)a) : 0.0, l1, ms(g2),
			at2 ? sms((int64_t)at2 - (int64_t)a) : 0.0, psent, pl);
	}
	fprintf(o, "%s]\n}\n", nm ? "\n  " : "");
	if (out)
		fclose(o);

	if (raw) {
		FILE *r = fopen(raw, "w");

		if (r) {
			fprintf(r, "type,seq,t_arr_mono_ns,t_src_ns,uptime_ns\n");
			for (size_t i = 0; i < stream.n; i++)
				fprintf(r, "S,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
					stream.v[i].seq, stream.v[i].t_arr, stream.v[i].t_src,
					stream.v[i].uptime);
			for (size_t i = 0; i < echo.n; i++)
				fprintf(r, "E,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
					echo.v[i].seq, echo.v[i].t_arr, echo.v[i].t_src,
					echo.v[i].uptime);
			fclose(r);
		}
	}
	free(stream.v);
	free(echo.v);
	free(probe_t);
	return 0;
}
