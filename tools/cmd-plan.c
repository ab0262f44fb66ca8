// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover plan PID: which fds a handover of PID would move, to whom
 * each belongs and why, shown as the manifest that would describe them.
 *
 * For a QEMU the owners come from its command line: a TAP queue belongs
 * to the -netdev whose ifname= (or fd=) it is, a memfd of guest RAM to
 * the memory-backend-memfd of its size, a RAM block kept in a memfd by
 * aux-ram-share to the block it is named after, a unix socket to the
 * -chardev whose path it is bound or connected to.  What QEMU makes anew
 * in any process (KVM, disk images, its monitor) stays.  For any other
 * process every fd a successor could use moves, named "fd<N>".
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fdhandover.h"
#include "qemu-cmdline.h"

static const char usage[] =
	"Usage: fd-handover plan [OPTIONS] PID\n"
	"\n"
	"Show which fds a handover of PID would move and why, as a manifest\n"
	"preview.  For a QEMU (qemu-system-*): guest RAM memfds, TAP queues,\n"
	"vhost-net fds, vhost-user sockets and their inflight memfds, eventfds,\n"
	"named after the -netdev/-object/-chardev ids of its command line.\n"
	"For any other process: every fd a successor can take over.\n"
	"\n"
	"Options:\n"
	"  -n, --no-pull  describe from /proc only (no pidfd_getfd)\n"
	"  -j, --json     JSON output (Documentation/cli-json.md)\n"
	"  -p, --pretty   indented JSON\n"
	"  -h, --help     this help\n";

/* unix_diag reports a unix socket's state in TCP terms. */
#define UNIX_CONNECTED 1
#define UNIX_LISTEN 10

struct item {
	struct fdh_fd_info info;
	struct sock_holder peer;	/* unix: who holds the other end */
	char peer_path[108];		/* the peer's bound name, if any */
	bool move;
	enum fdh_kind manifest_kind;	/* vhost-user for a unix socket */
	char owner[FDH_OWNER_MAX];
	uint32_t index;
	char why[320];
};

struct plan {
	pid_t pid;
	char comm[16];
	bool qemu;
	struct qemu_cmdline cmdline;
	size_t n;
	struct item *items;
	bool *backend_used;		/* per cmdline option: memfd matched */
	size_t n_internal_eventfds;
};

static void human_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && bytes % 1024 == 0 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, size, "%" PRIu64 " %s", bytes, units[u]);
}

static void move(struct item *it, const char *owner, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void move(struct item *it, const char *owner, const char *fmt, ...)
{
	va_list ap;

	it->move = true;
	/* Owners must fit the manifest's field; names from the process are
	 * cut rather than refused. */
	snprintf(it->owner, sizeof(it->owner), "%s", owner && owner[0] ? owner : "?");
	va_start(ap, fmt);
	vsnprintf(it->why, sizeof(it->why), fmt, ap);
	va_end(ap);
}

static void stay(struct item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void stay(struct item *it, const char *fmt, ...)
{
	va_list ap;

	it->move = false;
	va_start(ap, fmt);
	vsnprintf(it->why, sizeof(it->why), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* QEMU                                                               */

/* The -netdev tap a TAP fd belongs to: by fd=, else ifname=, else the
 * only tap netdev that names no interface (QEMU picked the name). */
static const struct qemu_opt *tap_netdev(const struct plan *p, int fd,
					 const char *ifname)
{
	const struct qemu_opt *unnamed = NULL;
	size_t n_unnamed = 0;

	for (size_t i = 0; i < p->cmdline.n; i++) {
		const struct qemu_opt *o = &p->cmdline.opts[i];

		if (o->kind != QEMU_NETDEV || strcmp(o->type, "tap") != 0)
			continue;
		for (size_t j = 0; j < o->n_fds; j++)
			if (o->fds[j] == fd)
				return o;
		if (o->ifname[0] && strcmp(o->ifname, ifname) == 0)
			return o;
		if (!o->ifname[0] && !o->n_fds) {
			unnamed = o;
			n_unnamed++;
		}
	}
	return n_unnamed == 1 ? unnamed : NULL;
}

static const struct qemu_opt *vhost_netdev(const struct plan *p, int fd)
{
	const struct qemu_opt *only = NULL;
	size_t n = 0;

	for (size_t i = 0; i < p->cmdline.n; i++) {
		const struct qemu_opt *o = &p->cmdline.opts[i];

		if (o->kind != QEMU_NETDEV || strcmp(o->type, "tap") != 0)
			continue;
		for (size_t j = 0; j < o->n_vhostfds; j++)
			if (o->vhostfds[j] == fd)
				return o;
		if (o->vhost) {
			only = o;
			n++;
		}
	}
	return n == 1 ? only : NULL;
}

/*
 * memory-backend-memfd names every memfd it makes "memory-backend-memfd":
 * the backend is told by size, in command-line order (QEMU creates
 * objects in that order, so fd numbers follow it).
 */
static const struct qemu_opt *ram_backend(struct plan *p, uint64_t size)
{
	const struct qemu_opt *any = NULL;
	size_t any_i = 0;

	for (size_t i = 0; i < p->cmdline.n; i++) {
		const struct qemu_opt *o = &p->cmdline.opts[i];

		if (o->kind != QEMU_OBJECT || p->backend_used[i] ||
		    strcmp(o->type, "memory-backend-memfd") != 0)
			continue;
		if (o->size == size) {
			p->backend_used[i] = true;
			return o;
		}
		if (!any) {
			any = o;
			any_i = i;
		}
	}
	if (any)
		p->backend_used[any_i] = true;
	return any;
}

/* The -chardev socket whose path is this socket's or its peer's name. */
static const struct qemu_opt *socket_chardev(const struct plan *p,
					     const struct item *it)
{
	const char *own = it->info.u.unix_socket.path;

	for (size_t i = 0; i < p->cmdline.n; i++) {
		const struct qemu_opt *o = &p->cmdline.opts[i];

		if (o->kind != QEMU_CHARDEV || !o->path[0])
			continue;
		if (strcmp(o->path, own) == 0 ||
		    strcmp(o->path, it->peer_path) == 0)
			return o;
	}
	return NULL;
}

static bool is_vhost_user_user(const struct qemu_opt *user)
{
	return user && (strcmp(user->type, "vhost-user") == 0 ||
			strncmp(user->type, "vhost-user-", 11) == 0);
}

/* The first vhost-user netdev or device with a chardev: the owner of an
 * inflight region, which does not say whose it is. */
static const struct qemu_opt *vhost_user_opt(const struct plan *p)
{
	for (size_t i = 0; i < p->cmdline.n; i++)
		if (is_vhost_user_user(&p->cmdline.opts[i]) &&
		    p->cmdline.opts[i].chardev[0])
			return &p->cmdline.opts[i];
	return NULL;
}

static void qemu_memfd(struct plan *p, struct item *it)
{
	const char *name = it->info.u.memfd.name;
	const struct qemu_opt *o;
	char size[32];

	human_size(it->info.u.memfd.size, size, sizeof(size));
	if (strstr(name, "inflight")) {
		o = vhost_user_opt(p);
		move(it, o ? o->chardev : "vhost-user-inflight",
		     "vhost-user inflight region \"%s\" (%s): in-flight requests survive the switch",
		     name, size);
		return;
	}
	if (strcmp(name, "memory-backend-memfd") == 0) {
		o = ram_backend(p, it->info.u.memfd.size);
		move(it, o && o->id[0] ? o->id : "ram",
		     "guest RAM: -object memory-backend-memfd%s%s (%s); the successor maps the same pages",
		     o && o->id[0] ? ",id=" : "", o && o->id[0] ? o->id : "",
		     size);
		return;
	}
	/* aux-ram-share=on keeps every other RAM block in a memfd named after
	 * the block ("pc.bios", "vga.vram", "/rom@etc/acpi/tables"). */
	move(it, name[0] ? name : "ram",
	     "RAM block \"%s\" (%s)%s: ROMs, video RAM and firmware tables keep their contents",
	     name, size, p->cmdline.aux_ram_share ? " kept by aux-ram-share=on" : "");
}

static void qemu_unix(struct plan *p, struct item *it)
{
	const struct qemu_opt *chr = socket_chardev(p, it);
	const struct qemu_opt *user = chr ? qemu_chardev_user(&p->cmdline, chr->id) : NULL;
	bool external = it->peer.pid && it->peer.pid != p->pid;
	bool listening = it->info.u.unix_socket.state == UNIX_LISTEN;
	char comm[64];

	cli_escape(comm, sizeof(comm), it->peer.comm);
	if (chr && is_vhost_user_user(user)) {
		it->manifest_kind = FDH_KIND_VHOST_USER;
		if (listening)
			move(it, chr->id,
			     "vhost-user listening socket of -chardev %s (server=on): backends reconnect to the same socket",
			     chr->id);
		else if (external)
			move(it, chr->id,
			     "vhost-user connection of %s (-chardev %s) to pid %d (%s) fd %d: the backend keeps its rings and state",
			     user->id[0] ? user->id : user->type, chr->id,
			     it->peer.pid, comm, it->peer.fd);
		else
			move(it, chr->id,
			     "vhost-user connection of %s (-chardev %s): the backend keeps its rings and state",
			     user->id[0] ? user->id : user->type, chr->id);
		return;
	}
	if (chr) {
		stay(it, "-chardev %s (%s): the new QEMU opens its own", chr->id,
		     !user ? "unused" : user->kind == QEMU_MON ? "monitor" : user->type);
		return;
	}
	if (external && it->info.u.unix_socket.state == UNIX_CONNECTED) {
		/* Not on the command line (an fd passed by a manager, say):
		 * the connection is what a backend would hold. */
		move(it, "", "unix connection to pid %d (%s) fd %d, not named on the command line: a vhost-user backend or a client; moved as a plain unix socket",
		     it->peer.pid, comm, it->peer.fd);
		snprintf(it->owner, sizeof(it->owner), "unix%d", it->info.fd);
		return;
	}
	stay(it, "unix socket internal to QEMU (%s)",
	     it->peer.pid == p->pid ? "both ends are QEMU's" :
	     listening ? "listening, not named on the command line" : "no peer");
}

static void qemu_tap(struct plan *p, struct item *it)
{
	const struct qemu_opt *o = tap_netdev(p, it->info.fd, it->info.u.tap.ifname);

	move(it, o ? o->id : it->info.u.tap.ifname,
	     "TAP queue of %s%s (ifname %s): guest traffic keeps flowing, queued packets are kept",
	     o ? "-netdev " : "interface ", o ? o->id : it->info.u.tap.ifname,
	     it->info.u.tap.ifname);
}

static void qemu_vhost_net(struct plan *p, struct item *it)
{
	const struct qemu_opt *o = vhost_netdev(p, it->info.fd);

	move(it, o ? o->id : "vhost-net",
	     "vhost-net device%s%s: the in-kernel datapath stays attached",
	     o ? " of -netdev " : "", o ? o->id : "");
	if (o) {
		/* One owner for TAP queues and vhost fds: keep apart. */
		size_t n = strlen(it->owner);

		snprintf(it->owner + n, sizeof(it->owner) - n, ".vhost");
	}
}

static void qemu_eventfd(struct plan *p, struct item *it)
{
	(void)p;
	move(it, "eventfd",
	     "eventfd (count %" PRIu64 "): notifier of vhost, irqfd or ioeventfd; moved so that no signal is lost",
	     it->info.u.eventfd.count);
}

static void qemu_file(struct plan *p, struct item *it)
{
	(void)p;
	stay(it, "file: the new QEMU opens its images and files itself (-drive, -blockdev)");
}

static void qemu_socket(struct plan *p, struct item *it)
{
	(void)p;
	stay(it, "network socket (VNC, migration, chardev tcp): the new QEMU listens itself");
}

static void qemu_epoll(struct plan *p, struct item *it)
{
	(void)p;
	stay(it, "epoll: QEMU's event loop, rebuilt by the new process");
}

static void qemu_pipe(struct plan *p, struct item *it)
{
	(void)p;
	stay(it, "pipe: QEMU-internal notification");
}

static void qemu_pidfd(struct plan *p, struct item *it)
{
	(void)p;
	stay(it, "pidfd: QEMU-internal");
}

/* Any other kind (KVM's fds among them): QEMU makes its own anew. */
static void qemu_other(struct plan *p, struct item *it)
{
	(void)p;
	if (strcmp(it->info.target, "/dev/kvm") == 0 ||
	    strncmp(it->info.target, "anon_inode:kvm", 14) == 0)
		stay(it, "KVM: the new QEMU creates its own VM and vCPUs");
	else
		stay(it, "%s: made anew by the new QEMU",
		     it->info.target[0] ? it->info.target : "other");
}

/* ------------------------------------------------------------------ */
/* Any process                                                        */

static void generic_memfd(struct plan *p, struct item *it,
			  const char *owner)
{
	char size[32];

	(void)p;
	human_size(it->info.u.memfd.size, size, sizeof(size));
	move(it, owner, "memfd \"%s\" (%s): its contents are kept", it->info.u.memfd.name, size);
}

static void generic_tap(struct plan *p, struct item *it,
			const char *owner)
{
	(void)p;
	move(it, it->info.u.tap.ifname[0] ? it->info.u.tap.ifname : owner,
	     "TAP queue of %s: the interface and its queued packets are kept",
	     it->info.u.tap.ifname[0] ? it->info.u.tap.ifname : "(detached)");
}

static void generic_eventfd(struct plan *p, struct item *it,
			    const char *owner)
{
	(void)p;
	move(it, owner, "eventfd (count %" PRIu64 "): its count is kept",
	     it->info.u.eventfd.count);
}

static void generic_vhost_net(struct plan *p, struct item *it,
			      const char *owner)
{
	(void)p;
	move(it, owner, "vhost-net device: the datapath stays attached");
}

static void generic_unix(struct plan *p, struct item *it,
			 const char *owner)
{
	char comm[64];

	cli_escape(comm, sizeof(comm), it->peer.comm);
	if (it->info.u.unix_socket.state == UNIX_LISTEN)
		move(it, owner, "listening unix socket%s%s: clients queue in its backlog during the switch",
		     it->info.u.unix_socket.path[0] ? " " : "",
		     it->info.u.unix_socket.path);
	else if (it->peer.pid && it->peer.pid != p->pid)
		move(it, owner, "unix connection to pid %d (%s): the peer keeps its connection",
		     it->peer.pid, comm);
	else
		move(it, owner, "unix socket: kept open across the switch");
}

static void generic_socket(struct plan *p, struct item *it,
			   const char *owner)
{
	(void)p;
	move(it, owner, "socket: listeners keep their backlog, connections stay up");
}

static void generic_pipe(struct plan *p, struct item *it,
			 const char *owner)
{
	(void)p;
	move(it, owner, "pipe: unread data and the other end are kept");
}

static void generic_file(struct plan *p, struct item *it,
			 const char *owner)
{
	(void)p;
	move(it, owner, "file (offset %" PRIu64 " shared with the source)", it->info.pos);
}

static void generic_pidfd(struct plan *p, struct item *it,
			  const char *owner)
{
	(void)p;
	move(it, owner, "pidfd of pid %d: the successor can still wait for it", it->info.u.pidfd.pid);
}

static void generic_epoll(struct plan *p, struct item *it,
			  const char *owner)
{
	(void)p;
	move(it, owner, "epoll: note its watch list names the source's fd numbers; the successor should re-add its own");
}

static void generic_other(struct plan *p, struct item *it,
			  const char *owner)
{
	(void)p;
	move(it, owner, "kind unknown to fd-handover: moved as is, verified by dev/ino only");
}

/* ------------------------------------------------------------------ */
/* The plan of each kind                                              */

typedef void plan_fn(struct plan *p, struct item *it);
/* In any process, with the entry's owner name ("fd7"). */
typedef void generic_plan_fn(struct plan *p, struct item *it, const char *owner);

/*
 * What a handover does with each kind, in a QEMU and in any process; a
 * NULL entry is the kind's "other" rule.  lib/kind.c is the library's
 * table of kinds, tools/describe.c how the CLI shows them.
 */
static const struct {
	plan_fn *qemu;
	generic_plan_fn *generic;
} plans[FDH_KIND__MAX] = {
	[FDH_KIND_MEMFD] = { qemu_memfd, generic_memfd },
	[FDH_KIND_TAP] = { qemu_tap, generic_tap },
	[FDH_KIND_VHOST_NET] = { qemu_vhost_net, generic_vhost_net },
	[FDH_KIND_EVENTFD] = { qemu_eventfd, generic_eventfd },
	[FDH_KIND_UNIX_SOCKET] = { qemu_unix, generic_unix },
	[FDH_KIND_FILE] = { qemu_file, generic_file },
	[FDH_KIND_SOCKET] = { qemu_socket, generic_socket },
	[FDH_KIND_EPOLL] = { qemu_epoll, generic_epoll },
	[FDH_KIND_PIPE] = { qemu_pipe, generic_pipe },
	[FDH_KIND_PIDFD] = { qemu_pidfd, generic_pidfd },
};

static void qemu_classify(struct plan *p, struct item *it)
{
	plan_fn *fn = (unsigned int)it->info.kind < FDH_KIND__MAX ?
		      plans[it->info.kind].qemu : NULL;

	(fn ? fn : qemu_other)(p, it);
}

static void generic_classify(struct plan *p, struct item *it)
{
	int fd = it->info.fd;
	generic_plan_fn *fn;
	char owner[16];

	/* stdio belongs to whoever starts the successor, unless it is a
	 * socket (inetd style) that the service answers on. */
	if (fd <= 2 && it->info.kind != FDH_KIND_UNIX_SOCKET &&
	    it->info.kind != FDH_KIND_SOCKET) {
		stay(it, "standard %s: the successor has its own",
		     fd == 0 ? "input" : fd == 1 ? "output" : "error");
		return;
	}
	snprintf(owner, sizeof(owner), "fd%d", fd);
	fn = (unsigned int)it->info.kind < FDH_KIND__MAX ?
	     plans[it->info.kind].generic : NULL;
	(fn ? fn : generic_other)(p, it, owner);
}

/* ------------------------------------------------------------------ */

/* Unix sockets: who holds the peer, and the name the peer is bound to
 * (a client socket has none; the server's accepted socket has the
 * listener's, which is what a -chardev path names). */
static void find_peers(struct plan *p)
{
	struct sock_holder *asks = calloc(p->n ? p->n : 1, sizeof(*asks));
	size_t n = 0, j = 0;

	if (!asks)
		return;
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].info.kind == FDH_KIND_UNIX_SOCKET &&
		    p->items[i].info.u.unix_socket.peer_ino)
			asks[n++].ino = p->items[i].info.u.unix_socket.peer_ino;
	if (n && proc_socket_holders(asks, n, p->pid) >= 0) {
		for (size_t i = 0; i < p->n; i++) {
			struct item *it = &p->items[i];
			struct fdh_fd_info peer;

			if (it->info.kind != FDH_KIND_UNIX_SOCKET ||
			    !it->info.u.unix_socket.peer_ino)
				continue;
			it->peer = asks[j++];
			if (it->peer.pid &&
			    fdh_inspect_fd(it->peer.pid, it->peer.fd, 0, &peer) == 0 &&
			    peer.kind == FDH_KIND_UNIX_SOCKET)
				memcpy(it->peer_path, peer.u.unix_socket.path,
				       sizeof(it->peer_path));
		}
	}
	free(asks);
}

/* Index within each owner, in fd order: queue 0, 1, ... of a TAP. */
static void number_owners(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->items[i];

		if (!it->move)
			continue;
		it->index = 0;
		for (size_t j = 0; j < i; j++)
			if (p->items[j].move &&
			    strcmp(p->items[j].owner, it->owner) == 0)
				it->index++;
	}
}

/*
 * A QEMU opens one vhost-net device per queue pair, in queue order (or
 * takes them in vhostfds= order): the index is the queue pair.  Its
 * owner in the kernel shows only as workers "vhost-<pid>".
 */
static void describe_vhost_queues(struct plan *p)
{
	int workers = -1;

	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->items[i];
		size_t n = strlen(it->why);

		if (!it->move || it->manifest_kind != FDH_KIND_VHOST_NET)
			continue;
		if (workers == -1)
			workers = proc_vhost_workers(p->pid);
		snprintf(it->why + n, sizeof(it->why) - n,
			 "; queue pair %" PRIu32 "; owner: %s", it->index,
			 workers > 0 ? "this process (worker vhost-<pid>)" :
			 workers == 0 ? "none (released or not yet taken)" :
			 "unknown");
	}
}

static int build_manifest(const struct plan *p, struct fdh_manifest **ret)
{
	struct fdh_manifest *m = fdh_manifest_new();
	int r;

	if (!m)
		return cli_fail(-ENOMEM, "plan: out of memory");
	r = fdh_manifest_set_source(m, p->pid);
	if (r < 0) {
		fdh_manifest_free(m);
		return cli_fail_lib(r, "plan", p->pid, false);
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct item *it = &p->items[i];
		struct fdh_manifest_entry e;

		if (!it->move)
			continue;
		fdh_manifest_entry_from_info(&it->info, it->owner, it->index, &e);
		e.kind = it->manifest_kind;
		if (e.kind == FDH_KIND_TAP)
			e.u.tap.queue = it->index;
		r = fdh_manifest_add_entry(m, &e);
		if (r < 0) {
			fdh_manifest_free(m);
			return cli_fail(r, "plan: pid %d fd %d: %s", p->pid,
					it->info.fd, fdh_last_error()->msg);
		}
	}
	*ret = m;
	return 0;
}

static void print_json(const struct plan *p, const struct fdh_manifest *m)
{
	char *mj = NULL;

	json_begin_object(NULL);
	json_i64("pid", p->pid);
	json_string("comm", p->comm);
	json_bool("qemu", p->qemu);
	json_begin_array("move");
	for (size_t i = 0; i < p->n; i++) {
		const struct item *it = &p->items[i];

		if (!it->move)
			continue;
		json_begin_object(NULL);
		json_i64("fd", it->info.fd);
		json_string("kind", fdh_kind_name(it->manifest_kind));
		json_string("owner", it->owner);
		json_u64("index", it->index);
		json_string("why", it->why);
		json_end_object();
	}
	json_end_array();
	json_begin_array("stay");
	for (size_t i = 0; i < p->n; i++) {
		const struct item *it = &p->items[i];

		if (it->move)
			continue;
		json_begin_object(NULL);
		json_i64("fd", it->info.fd);
		json_string("kind", fdh_kind_name(it->info.kind));
		json_string("why", it->why);
		json_end_object();
	}
	json_end_array();
	if (fdh_manifest_to_json(m, cli.pretty, &mj) == 0) {
		json_raw("manifest", mj);
		free(mj);
	} else {
		json_null("manifest");
	}
	json_end();
}

static void print_text(const struct plan *p, const struct fdh_manifest *m)
{
	static const char *const move_headers[] = {
		"FD", "KIND", "OWNER", "INDEX", "WHY",
	};
	static const char *const stay_headers[] = { "FD", "KIND", "WHY" };
	struct cli_table *mv = cli_table_new(5, move_headers);
	struct cli_table *st = cli_table_new(3, stay_headers);
	char comm[64], owner[FDH_OWNER_MAX * 4 + 1], why[sizeof(p->items[0].why) * 4];
	size_t n_move = 0;
	char *text = NULL;

	for (size_t i = 0; i < p->n; i++) {
		const struct item *it = &p->items[i];

		cli_escape(why, sizeof(why), it->why);
		if (it->move) {
			n_move++;
			cli_escape(owner, sizeof(owner), it->owner);
			cli_table_add(mv, "%d", it->info.fd);
			cli_table_add(mv, "%s", fdh_kind_name(it->manifest_kind));
			cli_table_add(mv, "%s", owner);
			cli_table_add(mv, "%" PRIu32, it->index);
			cli_table_add(mv, "%s", why);
		} else {
			cli_table_add(st, "%d", it->info.fd);
			cli_table_add(st, "%s", fdh_kind_name(it->info.kind));
			cli_table_add(st, "%s", why);
		}
	}
	cli_escape(comm, sizeof(comm), p->comm);
	printf("plan for pid %d (%s)%s: %zu fds, %zu move, %zu stay\n\n",
	       p->pid, comm, p->qemu ? ", a QEMU" : "", p->n, n_move,
	       p->n - n_move);
	printf("move:\n");
	if (n_move)
		cli_table_print(mv, stdout);
	else
		printf("  (nothing)\n");
	if (p->n - n_move) {
		printf("\nstay:\n");
		cli_table_print(st, stdout);
	}
	if (fdh_manifest_to_text(m, &text) == 0) {
		printf("\nmanifest preview:\n%s", text);
		free(text);
	}
	cli_table_free(mv);
	cli_table_free(st);
}

/* Describe every fd (as ls does); an exit code if that fails. */
static int inspect_all(struct plan *p, unsigned int flags)
{
	int *fds = NULL, r;
	size_t n_fds;
	bool named;

	r = cli_fd_args("plan", p->pid, 0, NULL, &fds, &n_fds, &named);
	if (r)
		return r;
	p->items = calloc(n_fds ? n_fds : 1, sizeof(*p->items));
	if (!p->items) {
		free(fds);
		return cli_fail(-ENOMEM, "plan: out of memory");
	}
	for (size_t i = 0; i < n_fds; i++) {
		struct item *it = &p->items[p->n];

		r = fdh_inspect_fd(p->pid, fds[i], flags, &it->info);
		if (r == -EBADF)
			continue;	/* closed meanwhile */
		if (r < 0) {
			free(fds);
			return cli_fail_lib(r, "plan", p->pid, false);
		}
		it->manifest_kind = it->info.kind;
		p->n++;
	}
	free(fds);
	return 0;
}

int cmd_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "no-pull", no_argument, NULL, 'n' },
		{ 0 }
	};
	struct plan p = { 0 };
	struct fdh_manifest *m = NULL;
	unsigned int flags = FDH_INSPECT_PULL;
	char **args = NULL;
	int c, r, nargs = 0;

	while ((c = cli_getopt(argc, argv, ":" CLI_COMMON_SHORTOPTS "n", opts,
			       usage, &r)) > 0)
		if (c == 'n')
			flags &= ~(unsigned int)FDH_INSPECT_PULL;
	if (c == CLI_GETOPT_EXIT)
		return r;
	if (argc - optind != 1)
		return cli_usage("plan: needs exactly one PID");
	r = cli_parse_pid(argv[optind], &p.pid);
	if (r)
		return r;
	r = proc_comm(p.pid, p.comm);
	if (r < 0)
		return cli_fail_lib(r, "plan", p.pid, false);
	/* A kernel thread or a process without cmdline is simply no QEMU. */
	if (proc_cmdline(p.pid, &args, &nargs) < 0)
		args = NULL;
	p.qemu = qemu_is_qemu(p.comm, args);
	if (p.qemu && qemu_cmdline_parse(args, nargs, &p.cmdline) < 0) {
		free(args);
		return cli_fail(-ENOMEM, "plan: out of memory");
	}
	free(args);
	p.backend_used = calloc(p.cmdline.n ? p.cmdline.n : 1, sizeof(bool));
	if (!p.backend_used) {
		r = cli_fail(-ENOMEM, "plan: out of memory");
		goto out;
	}
	r = inspect_all(&p, flags);
	if (r)
		goto out;
	find_peers(&p);
	for (size_t i = 0; i < p.n; i++) {
		if (p.qemu)
			qemu_classify(&p, &p.items[i]);
		else
			generic_classify(&p, &p.items[i]);
	}
	number_owners(&p);
	describe_vhost_queues(&p);
	r = build_manifest(&p, &m);
	if (r)
		goto out;
	if (cli.json)
		print_json(&p, m);
	else
		print_text(&p, m);
	r = CLI_EXIT_OK;
out:
	fdh_manifest_free(m);
	qemu_cmdline_free(&p.cmdline);
	free(p.backend_used);
	free(p.items);
	return r;
}
