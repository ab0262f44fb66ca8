// SPDX-License-Identifier: MIT
/*
 * vhost-handover -- runs inside the vhost-net test guest (static, PID 1's
 * child).  Proves that a /dev/vhost-net device serving a TAP can change
 * owner between two processes with traffic flowing and nothing lost.
 *
 * Processes of one scenario (all forked from this program, no exec):
 *   O  the orchestrator (main): creates the "guest RAM" memfd and the
 *      kick/call eventfds (KVM's ioeventfd/irqfd in a real VM), forks the
 *      others, drives them over SOCK_SEQPACKET pairs, judges, prints;
 *   D  the driver ("the guest"): a split-ring virtio-net driver over the
 *      memfd (vring.c), sends sequence-numbered UDP through the tx rings and
 *      counts what arrives on the rx rings;
 *   A  the source owner ("the old QEMU"): opens the TAP queue(s) and
 *      /dev/vhost-net, owns the vhost device(s) and starts the rings;
 *   B  the target ("the new QEMU"): pulls A's vhost, TAP, memfd and eventfd
 *      fds with pidfd_getfd (libfdhandover's fdh_pull), never opening any
 *      itself, and takes ownership once A has given it up;
 *   P  the peer: a UDP socket on the TAP's address in the guest's own
 *      network stack, sending to and counting from D.
 * Traffic never leaves the guest: D <-> vhost <-> TAP vhn0 <-> P.
 * Files: this one (O: scenarios, verdicts, output), traffic.c (D, P),
 * owner.c (A, B), vhostctl.c (the ioctl sequences), vring.c (the rings),
 * ctl.c and roles.h (what the processes share).
 *
 * Scenarios: handover (A releases, B takes, A exits), rollback (A releases,
 * B gives up, A takes back), and target killed after taking (what the
 * kernel then allows the source), with 1 and 2 queue pairs.
 *
 * Output on stdout (the console): KTAP ("ok N name # ..."), one
 * "VHN-RESULT {json}" line per scenario and "VHN-DONE passed=N failed=N".
 *
 * Usage: vhost-handover [-r PPS] [-t SECONDS_AROUND_SWITCH] [-H HOLD_MS]
 *                       [-X TAKE_STEPS_TO_SKIP] [-Y RELEASE_STEPS_TO_SKIP] [NAME-FILTER]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "roles.h"

/* ------------------------------------------------------------------ */
/* O: scenarios                                                       */

enum mode { HANDOVER, ROLLBACK, TARGET_KILLED };

struct scenario {
	const char *name;
	unsigned nq;
	enum mode mode;
	unsigned release_skip;		/* vh_step bits the release leaves out */
};

#define RESET_ONLY ((1u << VH_SET_BACKEND_OFF) | (1u << VH_GET_VRING_BASE))

static const struct scenario scenarios[] = {
	{ "vhost_net_handover_1q", 1, HANDOVER, 0 },
	{ "vhost_net_handover_2q", 2, HANDOVER, 0 },
	{ "vhost_net_rollback_1q", 1, ROLLBACK, 0 },
	{ "vhost_net_rollback_2q", 2, ROLLBACK, 0 },
	{ "vhost_net_handover_reset_only_1q", 1, HANDOVER, RESET_ONLY },
	{ "vhost_net_handover_reset_only_2q", 2, HANDOVER, RESET_ONLY },
	{ "vhost_net_target_killed_after_take_1q", 1, TARGET_KILLED, 0 },
};

/* -X: steps every handover leaves out (experiments, see vhost-net.md). */
static unsigned opt_skip_take, opt_skip_release;

static unsigned opt_pps = 1000;
static unsigned opt_ms = 1000;		/* traffic before and after the switch */
static unsigned opt_hold_ms = 50;	/* ownerless between release and take */

struct proc {
	pid_t pid;
	int ctl;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Number of tasks named "vhost-PID" (the 6.1 vhost worker kthreads). */
static unsigned count_workers(pid_t owner)
{
	char want[32], path[300], comm[32];
	unsigned n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	snprintf(want, sizeof(want), "vhost-%d\n", owner);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (r <= 0)
			continue;
		comm[r] = 0;
		if (strcmp(comm, want) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* waitpid with a deadline; SIGKILL past it.  Returns the wait status. */
static int reap(pid_t pid, unsigned timeout_ms)
{
	int st = -1;

	for (unsigned t = 0; t <= timeout_ms; t += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 0x7f00 | SIGKILL;	/* "killed by us" */
}

static struct proc spawn(int (*fn)(int ctl, void *arg), void *arg, int *close_in_child,
			 unsigned n_close)
{
	int sv[2];
	struct proc p = { -1, -1 };

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return p;
	p.pid = fork();
	if (p.pid == 0) {
		close(sv[0]);
		for (unsigned i = 0; i < n_close; i++)
			if (close_in_child[i] >= 0)
				close(close_in_child[i]);
		alarm(120);	/* bounded, whatever happens */
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	p.ctl = sv[0];
	return p;
}

struct shared {
	unsigned nq;
	int memfd;
	int kick[VH_MAX_VQS], call[VH_MAX_VQS];
};

static int run_driver(int ctl, void *arg)
{
	struct shared *s = arg;
	return role_driver(ctl, s->memfd, s->nq, s->kick, s->call, opt_pps);
}

static int run_source(int ctl, void *arg)
{
	struct shared *s = arg;
	return role_source(ctl, s->memfd, s->nq, s->kick, s->call);
}

static int run_peer(int ctl, void *arg)
{
	(void)arg;
	return role_peer(ctl, opt_pps);
}

static int run_target(int ctl, void *arg)
{
	(void)arg;
	return role_target(ctl);
}

/* What one scenario measured. */
struct result {
	bool ok;
	char why[1024];
	struct ctl a_ready, pulled, stopped, taken, resumed, reset, d_st, p_st;
	pid_t a_pid, b_pid;
	int a_status, b_status;
	unsigned workers_a, workers_b, workers_b_after_exit;
	uint64_t window_ns, t_switch_ns;
	int resume_err, reset_err;
};

#define FAIL(...)                                                     \
	do {                                                          \
		if (res->ok)                                          \
			snprintf(res->why, sizeof(res->why), __VA_ARGS__); \
		res->ok = false;                                      \
	} while (0)

static void wait_tap_gone(void)
{
	for (int i = 0; i < 300 && if_nametoindex(IFNAME); i++)
		sleep_ms(10);
}

static void run_scenario(const struct scenario *sc, struct result *res)
{
	struct shared sh = { .nq = sc->nq };
	struct proc d = { -1, -1 }, a = { -1, -1 }, p = { -1, -1 }, b = { -1, -1 };
	struct ctl m;
	uint64_t t0 = 0;
	int e;

	memset(res, 0, sizeof(*res));
	res->ok = true;
	res->resume_err = res->reset_err = 1;
	wait_tap_gone();
	sh.memfd = memfd_create("vhn-guest-ram", MFD_CLOEXEC);
	if (sh.memfd < 0 || ftruncate(sh.memfd, VH_MEM_SIZE) < 0) {
		FAIL("memfd: %s", strerror(errno));
		return;
	}
	for (unsigned v = 0; v < 2 * sc->nq; v++) {
		sh.kick[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		sh.call[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}

	d = spawn(run_driver, &sh, NULL, 0);
	if (d.pid < 0 || (e = ctl_expect(d.ctl, &m, C_READY, CTL_TIMEOUT_MS)) || m.err) {
		FAIL("driver not ready");
		goto out;
	}
	a = spawn(run_source, &sh, &d.ctl, 1);
	if (a.pid < 0 || (e = ctl_expect(a.ctl, &res->a_ready, C_READY, CTL_TIMEOUT_MS))) {
		FAIL("source not ready: %s", strerror(-e));
		goto out;
	}
	res->a_pid = a.pid;
	if (res->a_ready.err) {
		FAIL("source: %s: %s", res->a_ready.text, strerror(-res->a_ready.err));
		goto out;
	}
	/* From here O holds nothing of the device's: the target can only get
	 * the fds from A. */
	close(sh.memfd);
	sh.memfd = -1;
	for (unsigned v = 0; v < 2 * sc->nq; v++) {
		close(sh.kick[v]);
		close(sh.call[v]);
	}
	int ctls[3] = { d.ctl, a.ctl, -1 };
	p = spawn(run_peer, NULL, ctls, 2);
	if (p.pid < 0 || ctl_expect(p.ctl, &m, C_READY, CTL_TIMEOUT_MS) || m.err) {
		FAIL("peer not ready: %s", m.text);
		goto out;
	}
	ctls[2] = p.ctl;
	b = spawn(run_target, NULL, ctls, 3);
	res->b_pid = b.pid;

	ctl_reply(d.ctl, C_GO, 0, NULL);
	ctl_reply(p.ctl, C_GO, 0, NULL);
	sleep_ms(opt_ms);

	/* Before the stop window: B pulls every fd and maps the RAM. */
	memset(&m, 0, sizeof(m));
	m.cmd = C_PULL;
	m.pid = a.pid;
	m.nq = sc->nq;
	m.fds = res->a_ready.fds;
	m.map_addr = res->a_ready.map_addr;
	ctl_send(b.ctl, &m);
	if ((e = ctl_expect(b.ctl, &res->pulled, C_PULLED, CTL_TIMEOUT_MS)) || res->pulled.err) {
		FAIL("target pull: %s %s", e ? strerror(-e) : "", res->pulled.text);
		goto out;
	}
	sleep_ms(100);

	/* The stop window: A releases, B (or A again) takes. */
	t0 = vh_now_ns();
	memset(&m, 0, sizeof(m));
	m.cmd = C_STOP;
	m.skip = sc->release_skip | opt_skip_release;
	ctl_send(a.ctl, &m);
	if ((e = ctl_expect(a.ctl, &res->stopped, C_STOPPED, CTL_TIMEOUT_MS)) || res->stopped.err) {
		FAIL("source release: %s %s", e ? strerror(-e) : "", res->stopped.text);
		goto out;
	}
	/* Hold the device ownerless a while, as a slow switch would: frames
	 * keep arriving on both sides meanwhile and must all get through. */
	sleep_ms(opt_hold_ms);
	memset(&m, 0, sizeof(m));
	memcpy(m.base, res->stopped.base, sizeof(m.base));
	if (sc->mode == ROLLBACK) {
		ctl_reply(b.ctl, C_ABORT, 0, NULL);	/* the target gives up */
		m.cmd = C_RESUME;
		ctl_send(a.ctl, &m);
		if ((e = ctl_expect(a.ctl, &res->resumed, C_RESUMED, CTL_TIMEOUT_MS)) ||
		    res->resumed.err) {
			FAIL("source re-take: %s %s", e ? strerror(-e) : "", res->resumed.text);
			goto out;
		}
	} else {
		m.cmd = C_TAKE;
		m.skip = opt_skip_take;
		ctl_send(b.ctl, &m);
		if ((e = ctl_expect(b.ctl, &res->taken, C_TAKEN, CTL_TIMEOUT_MS)) ||
		    res->taken.err) {
			FAIL("target take: %s %s", e ? strerror(-e) : "", res->taken.text);
			goto out;
		}
	}
	res->t_switch_ns = vh_now_ns();
	res->window_ns = res->t_switch_ns - t0;

	if (sc->mode == ROLLBACK)
		res->b_status = reap(b.pid, 3000), b.pid = -1;
	sleep_ms(50);
	res->workers_a = count_workers(a.pid);
	res->workers_b = count_workers(res->b_pid);

	if (sc->mode == HANDOVER) {
		ctl_reply(a.ctl, C_EXIT, 0, NULL);
		res->a_status = reap(a.pid, 3000);
		a.pid = -1;
	} else if (sc->mode == TARGET_KILLED) {
		/* The target dies owning the device: what can the source do? */
		kill(b.pid, SIGKILL);
		res->b_status = reap(b.pid, 3000);
		b.pid = -1;
		sleep_ms(50);
		res->workers_b_after_exit = count_workers(res->b_pid);
		m.cmd = C_RESUME;
		ctl_send(a.ctl, &m);
		if (ctl_expect(a.ctl, &res->resumed, C_RESUMED, CTL_TIMEOUT_MS) == 0)
			res->resume_err = res->resumed.err;
		ctl_reply(a.ctl, C_RESET, 0, NULL);
		if (ctl_expect(a.ctl, &res->reset, C_RESET, CTL_TIMEOUT_MS) == 0)
			res->reset_err = res->reset.err;
	}
	sleep_ms(opt_ms);

	memset(&m, 0, sizeof(m));
	m.cmd = C_STOP;
	m.win[0] = t0;
	m.win[1] = res->t_switch_ns;
	ctl_send(d.ctl, &m);
	ctl_send(p.ctl, &m);
	if (ctl_expect(d.ctl, &res->d_st, C_STATS, CTL_TIMEOUT_MS))
		FAIL("no stats from the driver");
	if (ctl_expect(p.ctl, &res->p_st, C_STATS, CTL_TIMEOUT_MS))
		FAIL("no stats from the peer");
out:
	if (b.pid > 0) {
		ctl_reply(b.ctl, C_EXIT, 0, NULL);
		res->b_status = reap(b.pid, 3000);
	}
	if (a.pid > 0) {
		ctl_reply(a.ctl, C_EXIT, 0, NULL);
		int st = reap(a.pid, 3000);
		if (sc->mode != HANDOVER)
			res->a_status = st;
	}
	if (p.pid > 0)
		reap(p.pid, 3000);
	if (d.pid > 0)
		reap(d.pid, 3000);
	int all[] = { d.ctl, a.ctl, p.ctl, b.ctl };
	for (unsigned i = 0; i < 4; i++)
		if (all[i] >= 0)
			close(all[i]);
	if (sh.memfd >= 0) {
		close(sh.memfd);
		for (unsigned v = 0; v < 2 * sc->nq; v++) {
			close(sh.kick[v]);
			close(sh.call[v]);
		}
	}
}

/* For a JSON string: no quotes, backslashes or control characters. */
static const char *jsafe(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '\'';
	return s;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void judge(const struct scenario *sc, struct result *res)
{
	const struct stats *h2d = &res->d_st.st, *d2h = &res->p_st.st;
	uint64_t lost_d2h, lost_h2d;

	/* D counts its own tx in d_st.sent; P counts what D sent it. */
	lost_d2h = res->d_st.st.sent > d2h->uniq ? res->d_st.st.sent - d2h->uniq : 0;
	lost_h2d = res->p_st.st.sent > h2d->uniq ? res->p_st.st.sent - h2d->uniq : 0;

	if (!res->ok)
		return;
	/* Under TCG on a loaded machine the guest reaches a fraction of the
	 * rate: only ask for a tenth of it over the 2 x opt_ms of traffic,
	 * each way (what matters is checked below: the frames sent inside the
	 * window delivered, traffic after the switch). */
	uint64_t least = (uint64_t)opt_pps * opt_ms / 10000;
	if (res->d_st.st.sent < least || res->p_st.st.sent < least)
		FAIL("too little traffic: driver sent %llu, peer sent %llu",
		     (unsigned long long)res->d_st.st.sent,
		     (unsigned long long)res->p_st.st.sent);
	if (lost_d2h || lost_h2d)
		FAIL("lost %llu driver->peer, %llu peer->driver",
		     (unsigned long long)lost_d2h, (unsigned long long)lost_h2d);
	/* Frames sent while no one owned the device were delivered, both ways
	 * (the TAP's queue holds the peer's, the tx ring the driver's). */
	if (opt_hold_ms >= 20 && sc->mode != TARGET_KILLED &&
	    (!d2h->in_window || !h2d->in_window))
		FAIL("nothing sent inside the window was delivered: %llu driver->peer, %llu peer->driver",
		     (unsigned long long)d2h->in_window, (unsigned long long)h2d->in_window);
	/* Traffic went on after the switch, both ways. */
	uint64_t after = res->t_switch_ns + (uint64_t)opt_ms * 500000ull;
	if (d2h->last_rx_ns < after || h2d->last_rx_ns < after)
		FAIL("no traffic after the switch");
	if (sc->nq > 1 && (!d2h->uniq || !h2d->rx_q[0] || !h2d->rx_q[1]))
		FAIL("a queue pair carried nothing: rx q0 %llu q1 %llu",
		     (unsigned long long)h2d->rx_q[0], (unsigned long long)h2d->rx_q[1]);
	switch (sc->mode) {
	case HANDOVER:
		if (res->workers_b != sc->nq || res->workers_a != 0)
			FAIL("workers after the switch: vhost-%d x%u, vhost-%d x%u",
			     res->a_pid, res->workers_a, res->b_pid, res->workers_b);
		if (res->a_status != 0)
			FAIL("source exit status 0x%x", res->a_status);
		if (res->pulled.map_addr == res->a_ready.map_addr)
			FAIL("target mapped the RAM at the source's address");
		if (res->b_status != 0)
			FAIL("target exit status 0x%x", res->b_status);
		break;
	case ROLLBACK:
		if (res->workers_a != sc->nq || res->workers_b != 0)
			FAIL("workers after the rollback: vhost-%d x%u, vhost-%d x%u",
			     res->a_pid, res->workers_a, res->b_pid, res->workers_b);
		if (res->b_status != 0 || res->a_status != 0)
			FAIL("exit status: target 0x%x, source 0x%x",
			     res->b_status, res->a_status);
		break;
	case TARGET_KILLED:
		/* Expected on 6.1: SET_OWNER EBUSY (the dead target still owns
		 * the device), RESET_OWNER EPERM (only the owner may), the
		 * worker outlives its owner, and the rings keep running on
		 * the dead target's address space. */
		if (res->resume_err != -EBUSY || res->reset_err != -EPERM)
			FAIL("source after the target died: SET_OWNER %s, RESET_OWNER %s",
			     strerror(-res->resume_err), strerror(-res->reset_err));
		break;
	}
}

static void print_result(unsigned idx, const struct scenario *sc, struct result *res)
{
	const struct stats *h2d = &res->d_st.st, *d2h = &res->p_st.st;
	long long lost_d2h = (long long)res->d_st.st.sent - (long long)d2h->uniq;
	long long lost_h2d = (long long)res->p_st.st.sent - (long long)h2d->uniq;
	const struct ctl *take = sc->mode == ROLLBACK ? &res->resumed : &res->taken;

	printf("VHN-RESULT {\"name\":\"%s\",\"ok\":%s,\"queues\":%u,\"mode\":\"%s\","
	       "\"why\":\"%s\",\"pps\":%u,"
	       "\"driver_sent\":%llu,\"peer_received\":%llu,\"lost_driver_to_peer\":%lld,"
	       "\"peer_sent\":%llu,\"driver_received\":%llu,\"lost_peer_to_driver\":%lld,"
	       "\"dup\":%llu,\"driver_rx_q\":[%llu,%llu],\"tx_ring_full\":%llu,"
	       "\"delivered_sent_in_window\":[%llu,%llu],\"max_gap_ms_driver_to_peer\":%.3f,\"max_gap_ms_peer_to_driver\":%.3f,"
	       "\"release_skip\":\"0x%x\",\"take_skip\":\"0x%x\",\"window_ms\":%.3f,\"hold_ms\":%u,\"release_ms\":%.3f,\"take_ms\":%.3f,\"pull_ms\":%.3f,"
	       "\"source_pid\":%d,\"target_pid\":%d,\"workers_source\":%u,\"workers_target\":%u,"
	       "\"workers_target_after_its_death\":%u,"
	       "\"source_exit\":%d,\"target_exit\":%d,\"source_map\":\"0x%llx\",\"target_map\":\"0x%llx\","
	       "\"bases\":[%u,%u,%u,%u],\"used_idx\":[%u,%u,%u,%u],"
	       "\"resume_after_death\":%d,\"reset_after_death\":%d,\"pulled\":\"%s\",\"ioctl_us\":{",
	       sc->name, res->ok ? "true" : "false", sc->nq,
	       sc->mode == HANDOVER ? "handover" : sc->mode == ROLLBACK ? "rollback" : "target-killed",
	       jsafe(res->why), opt_pps,
	       (unsigned long long)res->d_st.st.sent, (unsigned long long)d2h->uniq, lost_d2h,
	       (unsigned long long)res->p_st.st.sent, (unsigned long long)h2d->uniq, lost_h2d,
	       (unsigned long long)(h2d->dup + d2h->dup),
	       (unsigned long long)h2d->rx_q[0], (unsigned long long)h2d->rx_q[1],
	       (unsigned long long)h2d->tx_full,
	       (unsigned long long)d2h->in_window, (unsigned long long)h2d->in_window,
	       ms(d2h->max_gap_ns), ms(h2d->max_gap_ns),
	       sc->release_skip | opt_skip_release, opt_skip_take, ms(res->window_ns), opt_hold_ms, ms(res->stopped.t_ns), ms(take->t_ns), ms(res->pulled.t_ns),
	       res->a_pid, res->b_pid, res->workers_a, res->workers_b,
	       res->workers_b_after_exit,
	       WIFEXITED(res->a_status) ? WEXITSTATUS(res->a_status) : -1,
	       WIFEXITED(res->b_status) ? WEXITSTATUS(res->b_status) : -1,
	       (unsigned long long)res->a_ready.map_addr, (unsigned long long)res->pulled.map_addr,
	       res->stopped.base[0], res->stopped.base[1], res->stopped.base[2], res->stopped.base[3],
	       res->stopped.used[0], res->stopped.used[1], res->stopped.used[2], res->stopped.used[3],
	       res->resume_err, res->reset_err, jsafe(res->pulled.text));
	bool first = true;
	for (unsigned s = 0; s < VH_STEP_MAX; s++) {
		uint64_t ns = res->stopped.ns[s] + take->ns[s];
		if (!ns)
			continue;
		printf("%s\"%s\":%.1f", first ? "" : ",", vh_step_name(s), (double)ns / 1e3);
		first = false;
	}
	printf("}}\n");
	printf("%s %u %s # window %.3f ms (release %.3f, hold, take %.3f); lost %lld/%lld; max gap %.1f/%.1f ms%s%s\n",
	       res->ok ? "ok" : "not ok", idx, sc->name, ms(res->window_ns),
	       ms(res->stopped.t_ns), ms(take->t_ns), lost_d2h, lost_h2d,
	       ms(d2h->max_gap_ns), ms(h2d->max_gap_ns), res->ok ? "" : "; ", res->why);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *filter = "";
	int c;

	while ((c = getopt(argc, argv, "r:t:H:X:Y:")) != -1) {
		switch (c) {
		case 'r':
			opt_pps = (unsigned)atoi(optarg);
			break;
		case 't':
			opt_ms = (unsigned)(atof(optarg) * 1000);
			break;
		case 'H':
			opt_hold_ms = (unsigned)atoi(optarg);
			break;
		case 'X':	/* take steps to leave out */
		case 'Y':	/* release steps to leave out */
			if (vh_steps_parse(optarg, c == 'X' ? &opt_skip_take
							    : &opt_skip_release)) {
				fprintf(stderr, "vhost-handover: unknown step in %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: vhost-handover [-r PPS] [-t SECONDS] [-H HOLD_MS] [-X TAKE_STEPS_TO_SKIP] [-Y RELEASE_STEPS_TO_SKIP] [FILTER]\n");
			return 2;
		}
	}
	if (optind < argc)
		filter = argv[optind];
	if (opt_pps < 10 || opt_pps > 100000 || opt_ms < 200 || opt_ms > 30000 ||
	    opt_hold_ms > 5000) {
		fprintf(stderr, "vhost-handover: -r 10..100000, -t 0.2..30, -H 0..5000\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(600);

	unsigned n = 0, idx = 0, passed = 0;
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		n += strstr(scenarios[i].name, filter) != NULL;
	printf("KTAP version 1\n1..%u\n", n);
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		static struct result res;

		if (!strstr(scenarios[i].name, filter))
			continue;
		run_scenario(&scenarios[i], &res);
		judge(&scenarios[i], &res);
		print_result(++idx, &scenarios[i], &res);
		passed += res.ok;
	}
	printf("VHN-DONE passed=%u failed=%u\n", passed, idx - passed);
	return passed == idx ? 0 : 1;
}
