// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Reading a QEMU command line as well as can be done from outside.
 *
 * Understood: -netdev/-nic, -object, -chardev, -device, -mon and -machine
 * (also with "--"), each in QEMU's keyval form ("tap,id=net0,ifname=t0",
 * ",," standing for a comma, the first bare item being the type) or, for
 * -object/-netdev/-device, the JSON form ({"qom-type": ..., "id": ...})
 * as far as flat string and number members go.  Anything else is
 * skipped: a plan made from a partly understood command line only names
 * fewer owners.
 */
#include "qemu-cmdline.h"

#include <ctype.h>
#include <glib.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool qemu_is_qemu(const char *comm, char *const *argv)
{
	const char *base;

	if (comm && strncmp(comm, "qemu-system-", 12) == 0)
		return true;
	if (!argv || !argv[0])
		return false;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	return strncmp(base, "qemu-system-", 12) == 0;
}

/* "256M" → 268435456, QEMU's size suffixes; 0 if not a size. */
static uint64_t parse_size(const char *s)
{
	static const char suffixes[] = "BKMGTPE";
	char *end;
	const char *p;
	unsigned long long v;
	int shift;

	if (!isdigit((unsigned char)*s))
		return 0;
	v = strtoull(s, &end, 10);
	if (!*end)
		return v;
	p = strchr(suffixes, toupper((unsigned char)*end));
	if (!p || end[1])
		return 0;
	shift = (int)(p - suffixes) * 10;
	return shift >= 64 || v > (UINT64_MAX >> shift) ? 0 : v << shift;
}

static bool parse_bool(const char *v)
{
	return strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 ||
	       strcmp(v, "true") == 0 || strcmp(v, "y") == 0;
}

/* "3:4:5" (fds=) or "3" (fd=) into fds[]. */
static void parse_fds(const char *v, int *fds, size_t *n)
{
	char *end;

	while (*v && *n < QEMU_OPT_MAX_FDS) {
		long fd = strtol(v, &end, 10);

		/* > INT_MAX would wrap to a negative fd number. */
		if (end == v || fd < 0 || fd > INT_MAX)
			return;
		fds[(*n)++] = (int)fd;
		if (*end != ':')
			return;
		v = end + 1;
	}
}

static void set_string(char *dst, size_t size, const char *v)
{
	snprintf(dst, size, "%s", v);
}

/* One key=value of an option (key NULL: the leading bare type). */
static void apply(struct qemu_opt *o, const char *key, const char *v)
{
	if (!key || strcmp(key, "type") == 0 || strcmp(key, "qom-type") == 0 ||
	    strcmp(key, "backend") == 0 || strcmp(key, "driver") == 0)
		set_string(o->type, sizeof(o->type), v);
	else if (strcmp(key, "id") == 0)
		set_string(o->id, sizeof(o->id), v);
	else if (strcmp(key, "ifname") == 0)
		set_string(o->ifname, sizeof(o->ifname), v);
	else if (strcmp(key, "path") == 0)
		set_string(o->path, sizeof(o->path), v);
	else if (strcmp(key, "chardev") == 0)
		set_string(o->chardev, sizeof(o->chardev), v);
	else if (strcmp(key, "size") == 0)
		o->size = parse_size(v);
	else if (strcmp(key, "vhost") == 0)
		o->vhost = o->vhost || parse_bool(v);
	else if (strcmp(key, "vhostforce") == 0)
		o->vhost = o->vhost || parse_bool(v);	/* implies vhost=on */
	else if (strcmp(key, "server") == 0)
		o->server = parse_bool(v);
	else if (strcmp(key, "fd") == 0 || strcmp(key, "fds") == 0)
		parse_fds(v, o->fds, &o->n_fds);
	else if (strcmp(key, "vhostfd") == 0 || strcmp(key, "vhostfds") == 0)
		parse_fds(v, o->vhostfds, &o->n_vhostfds);
}

void qemu_keyval_parse(const char *arg, struct qemu_keyval *ret)
{
	GArray *items = g_array_new(false, false, sizeof(struct qemu_kv));
	GString *item = g_string_new(NULL);

	while (*arg) {
		struct qemu_kv kv = { 0 };
		char *eq;

		g_string_truncate(item, 0);
		for (; *arg; arg++) {
			if (*arg == ',') {
				if (arg[1] != ',')
					break;
				arg++;	/* ",," is one comma */
			}
			g_string_append_c(item, *arg);
		}
		if (*arg == ',')
			arg++;
		/* QEMU splits at the first '=': values may contain more. */
		eq = strchr(item->str, '=');
		if (eq) {
			kv.key = g_strndup(item->str, (gsize)(eq - item->str));
			kv.val = g_strdup(eq + 1);
		} else {
			kv.val = g_strdup(item->str);
		}
		g_array_append_val(items, kv);
	}
	g_string_free(item, true);
	ret->n = items->len;
	ret->items = (struct qemu_kv *)(void *)g_array_free(items, false);
}

const char *qemu_keyval_get(const struct qemu_keyval *kv, const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < kv->n; i++)
		if (kv->items[i].key && strcmp(kv->items[i].key, key) == 0)
			v = kv->items[i].val;
	return v;
}

void qemu_keyval_del(struct qemu_keyval *kv, const char *key)
{
	size_t j = 0;

	for (size_t i = 0; i < kv->n; i++) {
		if (kv->items[i].key && strcmp(kv->items[i].key, key) == 0) {
			g_free(kv->items[i].key);
			g_free(kv->items[i].val);
			continue;
		}
		kv->items[j++] = kv->items[i];
	}
	kv->n = j;
}

void qemu_keyval_set(struct qemu_keyval *kv, const char *key, const char *val)
{
	for (size_t i = 0; i < kv->n; i++) {
		if (kv->items[i].key && strcmp(kv->items[i].key, key) == 0) {
			g_free(kv->items[i].val);
			kv->items[i].val = g_strdup(val);
			/* Later duplicates would win over this one: drop them. */
			for (size_t j = i + 1; j < kv->n; j++) {
				if (kv->items[j].key &&
				    strcmp(kv->items[j].key, key) == 0) {
					g_free(kv->items[j].key);
					kv->items[j].key = NULL;
					g_clear_pointer(&kv->items[j].val, g_free);
				}
			}
			goto compact;
		}
	}
	kv->items = g_renew(struct qemu_kv, kv->items, kv->n + 1);
	kv->items[kv->n].key = g_strdup(key);
	kv->items[kv->n].val = g_strdup(val);
	kv->n++;
	return;
compact:
	{
		size_t j = 0;

		for (size_t i = 0; i < kv->n; i++)
			if (kv->items[i].val)
				kv->items[j++] = kv->items[i];
		kv->n = j;
	}
}

static void append_escaped(GString *out, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			g_string_append_c(out, ',');
		g_string_append_c(out, *s);
	}
}

char *qemu_keyval_format(const struct qemu_keyval *kv)
{
	GString *out = g_string_new(NULL);

	for (size_t i = 0; i < kv->n; i++) {
		if (i)
			g_string_append_c(out, ',');
		if (kv->items[i].key) {
			append_escaped(out, kv->items[i].key);
			g_string_append_c(out, '=');
		}
		append_escaped(out, kv->items[i].val);
	}
	return g_string_free(out, false);
}

void qemu_keyval_free(struct qemu_keyval *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		g_free(kv->items[i].key);
		g_free(kv->items[i].val);
	}
	g_clear_pointer(&kv->items, g_free);
	kv->n = 0;
}

/* "tap,id=a,,b,ifname=t0": the first bare item is the type. */
static void parse_keyval(struct qemu_opt *o, const char *arg)
{
	struct qemu_keyval kv;

	qemu_keyval_parse(arg, &kv);
	for (size_t i = 0; i < kv.n; i++)
		if (kv.items[i].key)
			apply(o, kv.items[i].key, kv.items[i].val);
		else if (i == 0)
			apply(o, NULL, kv.items[i].val);
	qemu_keyval_free(&kv);
}

/*
 * {"qom-type": "memory-backend-memfd", "id": "ram0", "size": 268435456}:
 * flat members only, strings without escapes, numbers.  Enough for what
 * management tools write; nested values are skipped.
 */
static void parse_json(struct qemu_opt *o, const char *arg)
{
	const char *p = arg + 1;
	char key[64], val[256];

	for (;;) {
		size_t n = 0;

		p = strchr(p, '"');
		if (!p)
			return;
		p++;
		while (*p && *p != '"' && n + 1 < sizeof(key))
			key[n++] = *p++;
		key[n] = '\0';
		if (*p != '"')
			return;
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != ':')
			continue;	/* a string value seen as a key: go on */
		p++;
		while (isspace((unsigned char)*p))
			p++;
		n = 0;
		if (*p == '"') {
			p++;
			while (*p && *p != '"' && n + 1 < sizeof(val))
				val[n++] = *p++;
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != '}' &&
			       !isspace((unsigned char)*p) && n + 1 < sizeof(val))
				val[n++] = *p++;
		}
		val[n] = '\0';
		if (strcmp(val, "true") == 0)
			snprintf(val, sizeof(val), "on");
		apply(o, key, val);
	}
}

static int add(struct qemu_cmdline *q, enum qemu_opt_kind kind,
	       const char *arg)
{
	struct qemu_opt *grown = realloc(q->opts, (q->n + 1) * sizeof(*grown));
	struct qemu_opt *o;

	if (!grown)
		return -ENOMEM;
	q->opts = grown;
	o = &q->opts[q->n++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	if (arg[0] == '{')
		parse_json(o, arg);
	else
		parse_keyval(o, arg);
	return 0;
}

static const char *option_name(const char *arg)
{
	if (arg[0] != '-')
		return NULL;
	return arg[1] == '-' ? arg + 2 : arg + 1;
}

/* QEMU 10.0's options without an argument (qemu-options.hx, flags 0). */
static const char *const no_arg_options[] = {
	"h", "help", "version", "mem-prealloc", "snapshot", "usb",
	"nographic", "full-screen", "win2k-hack", "no-fd-bootchk",
	"preconfig", "S", "s", "enable-kvm", "xen-attach",
	"xen-domid-restrict", "no-reboot", "no-shutdown", "daemonize",
	"only-migratable", "nodefaults", "semihosting", "old-param",
	"no-user-config", "enable-sync-profile", "perfmap", "jitdump",
};

/*
 * Whether option name takes the next word as its value.  Unknown options
 * are assumed to take one, as all but the few above do: a value that
 * starts with '-' (an -append of "-S", say) is then never mistaken for
 * an option.
 */
static bool takes_arg(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(no_arg_options); i++)
		if (strcmp(name, no_arg_options[i]) == 0)
			return false;
	return true;
}

int qemu_cmdline_parse(char *const *argv, int argc, struct qemu_cmdline *ret)
{
	struct qemu_cmdline q = { 0 };
	size_t n_nic = 0;
	int r = 0;

	for (int i = 1; i + 1 < argc && r == 0; i++) {
		const char *name = option_name(argv[i]);
		const char *val = argv[i + 1];

		if (!name || !name[0])
			continue;
		if (!takes_arg(name))
			continue;	/* -S, -nodefaults: the next word is an option */
		if (strcmp(name, "netdev") == 0) {
			r = add(&q, QEMU_NETDEV, val);
		} else if (strcmp(name, "nic") == 0) {
			r = add(&q, QEMU_NETDEV, val);
			/* -nic takes no id: name it stably, by position. */
			if (r == 0 && !q.opts[q.n - 1].id[0])
				snprintf(q.opts[q.n - 1].id, sizeof(q.opts[0].id),
					 "nic%zu", n_nic);
			n_nic++;
		} else if (strcmp(name, "object") == 0) {
			r = add(&q, QEMU_OBJECT, val);
		} else if (strcmp(name, "chardev") == 0) {
			r = add(&q, QEMU_CHARDEV, val);
		} else if (strcmp(name, "device") == 0) {
			r = add(&q, QEMU_DEVICE, val);
		} else if (strcmp(name, "mon") == 0) {
			r = add(&q, QEMU_MON, val);
		} else if (strcmp(name, "machine") == 0 || strcmp(name, "M") == 0) {
			struct qemu_keyval kv;
			const char *v;

			qemu_keyval_parse(val, &kv);
			v = qemu_keyval_get(&kv, "aux-ram-share");
			if (v)
				q.aux_ram_share = parse_bool(v);
			qemu_keyval_free(&kv);
		}
		i++;	/* the value was consumed, understood or not */
	}
	if (r < 0) {
		qemu_cmdline_free(&q);
		return r;
	}
	*ret = q;
	return 0;
}

void qemu_cmdline_free(struct qemu_cmdline *q)
{
	free(q->opts);
	q->opts = NULL;
	q->n = 0;
}

const struct qemu_opt *qemu_chardev_user(const struct qemu_cmdline *q,
					 const char *id)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->opts[i].kind != QEMU_CHARDEV && id[0] &&
		    strcmp(q->opts[i].chardev, id) == 0)
			return &q->opts[i];
	return NULL;
}

/* One word of the source's argv: an option and its value, or a positional. */
struct word {
	const char *arg;	/* as written: "-netdev", "--netdev", "disk.img" */
	const char *name;	/* "netdev"; NULL for a positional argument */
	const char *val;	/* NULL: none */
};

/* The rewriter's state: the target's argv and what it collects. */
struct rewrite {
	const struct qemu_target_spec *spec;
	struct word *words;
	size_t n_words;
	GPtrArray *argv;
	GArray *fds;
	GPtrArray *notes;
	GHashTable *dropped_chardevs;	/* monitors dropped with their -mon */
	char *pidfile;
	bool had_S;
	char *error;
	unsigned int n_new;		/* ids of chardevs we create */
};

static void emit(struct rewrite *w, const char *opt, const char *val)
{
	g_ptr_array_add(w->argv, g_strdup(opt));
	if (val)
		g_ptr_array_add(w->argv, g_strdup(val));
}

static void emit_take(struct rewrite *w, const char *opt, char *val)
{
	g_ptr_array_add(w->argv, g_strdup(opt));
	g_ptr_array_add(w->argv, val);
}

static void G_GNUC_PRINTF(2, 3) note(struct rewrite *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(w->notes, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

static bool G_GNUC_PRINTF(2, 3) refuse(struct rewrite *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_free(w->error);
	w->error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return false;
}

/* The source's fd must be at the same number in the target: what names it. */
static void inherit(struct rewrite *w, int fd, const char *what)
{
	for (guint i = 0; i < w->fds->len; i++)
		if (g_array_index(w->fds, int, i) == fd)
			return;
	g_array_append_val(w->fds, fd);
	note(w, "%s: the source's fd %d is inherited at the same number", what, fd);
}

/* The source's listening socket bound to path, or -1. */
static int listener_fd(const struct rewrite *w, const char *path)
{
	for (size_t i = 0; i < w->spec->n_listeners; i++)
		if (strcmp(w->spec->listeners[i].path, path) == 0)
			return w->spec->listeners[i].fd;
	return -1;
}

/* A file of the target's own in the workdir: "target-" + the source's name. */
static char *workdir_file(const struct rewrite *w, const char *src_path)
{
	g_autofree char *base = g_path_get_basename(src_path);
	g_autofree char *name = g_strconcat("target-", base, NULL);

	return g_build_filename(w->spec->workdir, name, NULL);
}

/* The option's id, type, fds and vhost flags, keyval or JSON. */
static void read_opt(struct qemu_opt *o, const char *val)
{
	memset(o, 0, sizeof(*o));
	if (val[0] == '{')
		parse_json(o, val);
	else
		parse_keyval(o, val);
}

/* -chardev socket: "server=on" or the legacy bare "server". */
static bool kv_flag(const struct qemu_keyval *kv, const char *key)
{
	const char *v = qemu_keyval_get(kv, key);

	for (size_t i = 1; i < kv->n; i++)
		if (!kv->items[i].key && strcmp(kv->items[i].val, key) == 0)
			return true;
	return v && parse_bool(v);
}

/* Removes the legacy bare items "server", "nowait", "wait" (set as keys). */
static void kv_drop_bare(struct qemu_keyval *kv, const char *bare)
{
	size_t j = 0;

	for (size_t i = 0; i < kv->n; i++) {
		if (i > 0 && !kv->items[i].key && strcmp(kv->items[i].val, bare) == 0) {
			g_free(kv->items[i].val);
			continue;
		}
		kv->items[j++] = kv->items[i];
	}
	kv->n = j;
}

/* Is chardev id a monitor's (-mon chardev=ID, -qmp/-monitor chardev:ID)? */
static bool is_monitor_chardev(const struct rewrite *w, const char *id)
{
	for (size_t i = 0; i < w->n_words; i++) {
		const struct word *x = &w->words[i];
		const char *p;

		if (!x->name || !x->val)
			continue;
		if (strcmp(x->name, "mon") == 0) {
			struct qemu_keyval kv;
			bool hit;

			qemu_keyval_parse(x->val, &kv);
			p = qemu_keyval_get(&kv, "chardev");
			/* "-mon ID": the implied key is chardev. */
			if (!p && kv.n && !kv.items[0].key)
				p = kv.items[0].val;
			hit = p && strcmp(p, id) == 0;
			qemu_keyval_free(&kv);
			if (hit)
				return true;
		} else if ((strcmp(x->name, "qmp") == 0 ||
			    strcmp(x->name, "qmp-pretty") == 0 ||
			    strcmp(x->name, "monitor") == 0) &&
			   g_str_has_prefix(x->val, "chardev:") &&
			   strcmp(x->val + 8, id) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * A listening socket chardev (kv already parsed, backend socket):
 * fd=N stays N; path=P becomes fd=N of the source's listener on P.
 * Returns false when refused or (*drop) when dropped.
 */
static bool rewrite_listener(struct rewrite *w, const char *what,
			     struct qemu_keyval *kv, bool monitor, bool *drop)
{
	const char *fd = qemu_keyval_get(kv, "fd");
	const char *path = qemu_keyval_get(kv, "path");
	int lfd;

	*drop = false;
	/* The target must not block in startup for a client to connect. */
	kv_drop_bare(kv, "nowait");
	kv_drop_bare(kv, "wait");
	kv_drop_bare(kv, "server");
	qemu_keyval_set(kv, "server", "on");
	qemu_keyval_set(kv, "wait", "off");
	if (fd) {
		char *end;
		long n = strtol(fd, &end, 10);

		if (end == fd || *end || n < 0 || n > INT_MAX)
			return refuse(w, "%s: fd=%s is not an fd number (a named fd from getfd cannot be inherited)",
				      what, fd);
		inherit(w, (int)n, what);
		return true;
	}
	if (!path)
		return refuse(w, "%s listens on a network port that the source holds: the target cannot bind it too; use a unix socket",
			      what);
	lfd = listener_fd(w, path);
	if (lfd >= 0) {
		char num[16];

		/* Said before path= (and the string path points into) goes. */
		note(w, "%s: the target serves %s with the source's listening socket",
		     what, path);
		snprintf(num, sizeof(num), "%d", lfd);
		qemu_keyval_del(kv, "path");
		qemu_keyval_set(kv, "fd", num);
		inherit(w, lfd, what);
		return true;
	}
	if (monitor) {
		*drop = true;
		note(w, "%s dropped: %s is the source's until it quits, and its listening socket was not handed over; the driver's own QMP socket serves the target",
		     what, path);
		return true;
	}
	return refuse(w, "%s listens on %s, which the source holds: binding it again would unlink the source's; hand the listening socket over (qemu_target_spec.listeners)",
		      what, path);
}

/* -chardev BACKEND,id=...: see the rules at qemu_target_argv_build. */
static bool rewrite_chardev(struct rewrite *w, const struct word *x)
{
	struct qemu_keyval kv;
	const char *backend, *id;
	g_autofree char *what = NULL;
	bool ok = true, drop = false;

	qemu_keyval_parse(x->val, &kv);
	backend = qemu_keyval_get(&kv, "backend");
	if (!backend && kv.n && !kv.items[0].key)
		backend = kv.items[0].val;
	id = qemu_keyval_get(&kv, "id");
	what = g_strdup_printf("-chardev %s (%s)", id ? id : "?", backend ? backend : "?");
	if (backend && strcmp(backend, "file") == 0) {
		const char *a = qemu_keyval_get(&kv, "append");

		if (!a || !parse_bool(a)) {
			qemu_keyval_set(&kv, "append", "on");
			note(w, "%s: append=on, the source's file is not truncated", what);
		}
	}
	if (qemu_keyval_get(&kv, "logfile")) {
		const char *a = qemu_keyval_get(&kv, "logappend");

		if (!a || !parse_bool(a)) {
			qemu_keyval_set(&kv, "logappend", "on");
			note(w, "%s: logappend=on, the source's log is not truncated", what);
		}
	}
	if (backend && strcmp(backend, "socket") == 0) {
		if (kv_flag(&kv, "server")) {
			ok = rewrite_listener(w, what, &kv,
					      id && is_monitor_chardev(w, id), &drop);
		} else if (qemu_keyval_get(&kv, "fd")) {
			struct qemu_opt o = { 0 };

			parse_keyval(&o, x->val);
			for (size_t i = 0; i < o.n_fds; i++)
				inherit(w, o.fds[i], what);
		}
		/* A client by path (vhost-user): the manifest hands its connection. */
	}
	if (ok && drop && id)
		g_hash_table_add(w->dropped_chardevs, g_strdup(id));
	if (ok && !drop)
		emit_take(w, x->arg, qemu_keyval_format(&kv));
	qemu_keyval_free(&kv);
	return ok;
}

/*
 * An id for a chardev we create: fdh-NAME<n> that no -chardev of the
 * source has.  A former target's command line holds the ids its driver
 * made, next to a legacy -qmp that driver added: counting from 0 again
 * gave a third upgrade in a row "Duplicate ID 'fdh-qmp0' for chardev".
 */
static char *new_chardev_id(struct rewrite *w, const char *name)
{
	for (;;) {
		char *id = g_strdup_printf("fdh-%s%u", name, w->n_new++);
		bool taken = false;

		for (size_t i = 0; i < w->n_words && !taken; i++) {
			const struct word *x = &w->words[i];
			struct qemu_keyval kv;
			const char *v;

			if (!x->name || !x->val || strcmp(x->name, "chardev"))
				continue;
			qemu_keyval_parse(x->val, &kv);
			v = qemu_keyval_get(&kv, "id");
			taken = v && strcmp(v, id) == 0;
			qemu_keyval_free(&kv);
		}
		if (!taken)
			return id;
		g_free(id);
	}
}

/*
 * -qmp/-qmp-pretty/-monitor/-serial/-parallel/-debugcon with a legacy
 * chardev spec ("unix:P,server=on", "file:P", "stdio", "chardev:ID"):
 * the forms that need a rule become -chardev + the option on it.
 */
static bool rewrite_legacy_chardev(struct rewrite *w, const struct word *x)
{
	bool monitor = strcmp(x->name, "monitor") == 0 ||
		       g_str_has_prefix(x->name, "qmp");
	g_autofree char *id = NULL;
	g_autofree char *what = g_strdup_printf("-%s %s", x->name, x->val);
	struct qemu_keyval kv;
	bool drop = false;

	if (g_str_has_prefix(x->val, "file:")) {
		id = new_chardev_id(w, x->name);
		qemu_keyval_parse("file", &kv);
		qemu_keyval_set(&kv, "id", id);
		qemu_keyval_set(&kv, "path", x->val + 5);
		qemu_keyval_set(&kv, "append", "on");
		emit_take(w, "-chardev", qemu_keyval_format(&kv));
		qemu_keyval_free(&kv);
		note(w, "%s: -chardev file,append=on, the source's file is not truncated", what);
		goto use;
	}
	if (g_str_has_prefix(x->val, "tcp:") || g_str_has_prefix(x->val, "telnet:") ||
	    g_str_has_prefix(x->val, "websocket:")) {
		qemu_keyval_parse(x->val, &kv);
		drop = kv_flag(&kv, "server");
		qemu_keyval_free(&kv);
		if (drop)
			return refuse(w, "%s listens on a network port that the source holds: the target cannot bind it too; use a unix socket",
				      what);
	}
	if (!g_str_has_prefix(x->val, "unix:")) {
		emit(w, x->arg, x->val);	/* stdio, none, pty, chardev:ID, ... */
		return true;
	}
	qemu_keyval_parse(x->val + 5, &kv);	/* "P,server=on,..." */
	if (!kv_flag(&kv, "server")) {
		qemu_keyval_free(&kv);
		emit(w, x->arg, x->val);	/* a client: connects again */
		return true;
	}
	/* The path is the bare first item: make it path=. */
	g_free(kv.items[0].key);
	kv.items[0].key = g_strdup("path");
	if (!rewrite_listener(w, what, &kv, monitor, &drop)) {
		qemu_keyval_free(&kv);
		return false;
	}
	if (drop) {
		qemu_keyval_free(&kv);
		return true;
	}
	id = new_chardev_id(w, x->name);
	{
		/* "socket,id=ID," + the rest */
		g_autofree char *rest = qemu_keyval_format(&kv);
		g_autofree char *esc = NULL;
		struct qemu_keyval head;

		qemu_keyval_parse("socket", &head);
		qemu_keyval_set(&head, "id", id);
		esc = qemu_keyval_format(&head);
		qemu_keyval_free(&head);
		emit_take(w, "-chardev", g_strconcat(esc, ",", rest, NULL));
	}
	qemu_keyval_free(&kv);
use:
	if (monitor)
		emit_take(w, "-mon", g_strdup_printf("chardev=%s,mode=%s%s", id,
			  strcmp(x->name, "monitor") == 0 ? "readline" : "control",
			  strcmp(x->name, "qmp-pretty") == 0 ? ",pretty=on" : ""));
	else
		emit_take(w, x->arg, g_strdup_printf("chardev:%s", id));
	return true;
}

static bool vhost_handed_over(const struct rewrite *w, const char *id)
{
	if (!id[0])
		return false;
	for (size_t i = 0; i < w->spec->n_vhost_netdevs; i++)
		if (strcmp(w->spec->vhost_netdevs[i], id) == 0)
			return true;
	return false;
}

/*
 * -netdev/-nic: TAP queues come from the manifest, and so do vhost-net
 * devices when the source hands them over; vhost is refused otherwise.
 */
static bool rewrite_netdev(struct rewrite *w, const struct word *x)
{
	struct qemu_opt o;

	read_opt(&o, x->val);
	if (strcmp(o.type, "tap") == 0) {
		if ((o.vhost || o.n_vhostfds) && !vhost_handed_over(w, o.id)) {
			return refuse(w, "-%s %s: vhost=on, but the source hands over no vhost-net device for it (its QEMU lacks fd handover of vhost-net, patch 0023, or the device is not open); start the VM with vhost=off",
				      x->name, o.id[0] ? o.id : "(no id)");
		}
		if (o.n_vhostfds)
			note(w, "-%s %s: vhostfd=/vhostfds= kept as written; the target takes the vhost-net devices from the manifest and never reads those numbers",
			     x->name, o.id);
		if (o.n_fds)
			note(w, "-%s %s: fd=/fds= kept as written; the target adopts the TAP queues from the manifest and never reads those numbers",
			     x->name, o.id[0] ? o.id : "(no id)");
	} else {
		g_autofree char *what = g_strdup_printf("-%s %s", x->name,
							o.id[0] ? o.id : "(no id)");

		/* socket, stream, dgram by fd: the number must exist. */
		for (size_t i = 0; i < o.n_fds; i++)
			inherit(w, o.fds[i], what);
		if (o.n_vhostfds)
			return refuse(w, "-%s %s: vhostfd= cannot be handed over",
				      x->name, o.id[0] ? o.id : "(no id)");
	}
	emit(w, x->arg, x->val);
	return true;
}

/* -object/-device ...,fd=N (iommufd, vfio-pci): the number must exist. */
static bool rewrite_fd_user(struct rewrite *w, const struct word *x)
{
	struct qemu_opt o;

	read_opt(&o, x->val);
	if (strcmp(x->name, "object") == 0 && strcmp(o.type, "x-fd-handover") == 0) {
		note(w, "-object %s dropped: a former target's handover object", x->val);
		return true;
	}
	if (o.n_vhostfds)
		return refuse(w, "-%s %s (%s): vhostfd= cannot be handed over (the kernel ties a vhost device to its owner's memory)",
			      x->name, o.id[0] ? o.id : "(no id)", o.type);
	for (size_t i = 0; i < o.n_fds; i++) {
		g_autofree char *what = g_strdup_printf("-%s %s (%s)", x->name,
							o.id[0] ? o.id : "(no id)", o.type);

		inherit(w, o.fds[i], what);
	}
	emit(w, x->arg, x->val);
	return true;
}

/* -mon: kept unless its chardev was dropped. */
static bool rewrite_mon(struct rewrite *w, const struct word *x)
{
	struct qemu_keyval kv;
	const char *id;
	bool drop;

	qemu_keyval_parse(x->val, &kv);
	id = qemu_keyval_get(&kv, "chardev");
	if (!id && kv.n && !kv.items[0].key)
		id = kv.items[0].val;
	drop = id && g_hash_table_contains(w->dropped_chardevs, id);
	qemu_keyval_free(&kv);
	if (!drop)
		emit(w, x->arg, x->val);
	return true;
}

/* -trace [enable=]PATTERN,events=F,file=P: the file goes to the workdir. */
static bool rewrite_trace(struct rewrite *w, const struct word *x)
{
	struct qemu_keyval kv;
	const char *file;

	qemu_keyval_parse(x->val, &kv);
	file = qemu_keyval_get(&kv, "file");
	if (file) {
		g_autofree char *mine = workdir_file(w, file);

		note(w, "-trace file=%s: the target writes %s (QEMU truncates its trace file)",
		     file, mine);
		qemu_keyval_set(&kv, "file", mine);
		emit_take(w, x->arg, qemu_keyval_format(&kv));
	} else {
		emit(w, x->arg, x->val);
	}
	qemu_keyval_free(&kv);
	return true;
}

/*
 * -vnc/-spice: their servers listen (a port, or a unix path QEMU unlinks
 * before binding) and take no listening fd from the command line; only
 * a display that listens nowhere passes.
 */
static bool rewrite_display(struct rewrite *w, const struct word *x)
{
	struct qemu_keyval kv;
	bool listens;

	qemu_keyval_parse(x->val, &kv);
	if (strcmp(x->name, "vnc") == 0) {
		const char *addr = qemu_keyval_get(&kv, "vnc");
		const char *rev = qemu_keyval_get(&kv, "reverse");

		if (!addr && kv.n && !kv.items[0].key)
			addr = kv.items[0].val;
		listens = addr && strcmp(addr, "none") != 0 &&
			  !(rev && parse_bool(rev));
	} else {
		const char *un = qemu_keyval_get(&kv, "unix");

		listens = qemu_keyval_get(&kv, "port") ||
			  qemu_keyval_get(&kv, "tls-port") || (un && parse_bool(un));
	}
	qemu_keyval_free(&kv);
	if (listens)
		return refuse(w, "-%s %s: the display server listens where the source does and cannot take its socket; the target could not bind it (a unix path would be taken from the source). Start the VM with -%s none (or reverse=on), or without the display",
			      x->name, x->val, x->name);
	emit(w, x->arg, x->val);
	return true;
}

/* One word of the source; false when refused (w->error set). */
/*
 * The driver appends "-object x-fd-handover,... -qmp unix:WORKDIR/...":
 * in a former target's command line, the -qmp right after that object is
 * the former driver's own monitor.  Kept, every upgrade in a chain would
 * hand one more listener over (seen as one more fd per upgrade).
 */
static bool former_drivers_monitor(const struct rewrite *w, const struct word *x)
{
	struct qemu_opt o;

	if (x == w->words || !x[-1].name || !x[-1].val ||
	    strcmp(x[-1].name, "object") != 0)
		return false;
	read_opt(&o, x[-1].val);
	return strcmp(o.type, "x-fd-handover") == 0;
}

static bool rewrite_word(struct rewrite *w, const struct word *x)
{
	const char *name = x->name;

	if (!name) {
		emit(w, x->arg, NULL);	/* a positional disk image */
		return true;
	}
	if (strcmp(name, "S") == 0) {
		w->had_S = true;
		note(w, "-S dropped: the target runs iff the source was running (the migration's global state)");
		return true;
	}
	if (strcmp(name, "daemonize") == 0) {
		note(w, "-daemonize dropped: the driver watches the target as its child");
		return true;
	}
	if (!x->val) {
		emit(w, x->arg, NULL);
		return true;
	}
	if (strcmp(name, "pidfile") == 0) {
		g_free(w->pidfile);
		w->pidfile = g_strdup(x->val);
		note(w, "-pidfile %s dropped: the driver writes the target's pid there once the source has exited",
		     x->val);
		return true;
	}
	if (strcmp(name, "incoming") == 0) {
		note(w, "-incoming %s dropped: the target gets -incoming defer", x->val);
		return true;
	}
	if (strcmp(name, "readconfig") == 0)
		return refuse(w, "-readconfig %s: its sections are not rewritten (a listening [chardev] would be bound twice, a file one truncated); write them on the command line",
			      x->val);
	if (strcmp(name, "chardev") == 0)
		return rewrite_chardev(w, x);
	if (strcmp(name, "qmp") == 0 && former_drivers_monitor(w, x)) {
		note(w, "-qmp %s dropped: the monitor a former upgrade's driver gave its target (it has exited)",
		     x->val);
		return true;
	}
	if (strcmp(name, "qmp") == 0 || strcmp(name, "qmp-pretty") == 0 ||
	    strcmp(name, "monitor") == 0 || strcmp(name, "serial") == 0 ||
	    strcmp(name, "parallel") == 0 || strcmp(name, "debugcon") == 0)
		return rewrite_legacy_chardev(w, x);
	if (strcmp(name, "mon") == 0)
		return rewrite_mon(w, x);
	if (strcmp(name, "netdev") == 0 || strcmp(name, "nic") == 0)
		return rewrite_netdev(w, x);
	if (strcmp(name, "object") == 0 || strcmp(name, "device") == 0)
		return rewrite_fd_user(w, x);
	if (strcmp(name, "add-fd") == 0) {
		struct qemu_opt o = { 0 };

		parse_keyval(&o, x->val);
		for (size_t i = 0; i < o.n_fds; i++)
			inherit(w, o.fds[i], "-add-fd");
		emit(w, x->arg, x->val);
		return true;
	}
	if (strcmp(name, "D") == 0) {
		g_autofree char *mine = workdir_file(w, x->val);

		note(w, "-D %s: the target logs to %s (QEMU truncates its log)", x->val, mine);
		emit(w, x->arg, mine);
		return true;
	}
	if (strcmp(name, "trace") == 0)
		return rewrite_trace(w, x);
	if (strcmp(name, "vnc") == 0 || strcmp(name, "spice") == 0)
		return rewrite_display(w, x);
	emit(w, x->arg, x->val);	/* -name, -msg, -sandbox, the rest */
	return true;
}

/*
 * The target's command line, from the source's (see Documentation/
 * upgrade.md, "Command lines").  The target runs in the source's working
 * directory, so relative paths keep their meaning.  Each rule:
 *
 *  -S                 dropped, had_S: with -incoming defer and no -S the
 *                     target resumes iff the migration's global state says
 *                     the source was running.
 *  -daemonize         dropped: the driver waits for the target as its child.
 *  -pidfile P         dropped, returned: written by the driver once the
 *                     source (which removes P when it quits) has exited.
 *  -incoming X        dropped; -incoming defer is added.
 *  -object x-fd-handover  (a former target's) dropped; ours is added with
 *                     the driver's -qmp unix:QMP,server=on,wait=off.
 *  listening unix sockets (-chardev socket,server=on / -qmp unix:P,server=on
 *                     / -monitor / -serial unix:...): fd=N is inherited;
 *                     path=P becomes fd=N of the source's listener on P
 *                     (spec->listeners), inherited, so clients queue in
 *                     one backlog across the switch; wait=off always.
 *                     Without it a monitor is dropped (its -mon too) and
 *                     anything else refused: binding P again unlinks the
 *                     source's socket, and QEMU unlinks P when it quits.
 *                     A TCP listener is refused (the port is the source's).
 *  -chardev socket client, fd=N: N inherited.
 *  -chardev file / -serial file:P (also -parallel, -debugcon):
 *                     append=on, so the source's file is not truncated;
 *                     logfile= gets logappend=on.
 *  -add-fd fd=N       N inherited (so /dev/fdset/S paths stay valid).
 *  -netdev tap,fd=N   kept, not inherited: the target adopts the queues
 *                     from the manifest and never reads fd= (patch 0003).
 *                     vhost=on, vhostforce=on, vhostfd(s)=: kept, not
 *                     inherited, if the source hands the netdev's
 *                     vhost-net devices over (spec->vhost_netdevs; patch
 *                     0023), refused otherwise.
 *  -netdev other,fd=N / -object,-device ...,fd=N: N inherited;
 *                     vhostfd= (vhost-vsock) refused.
 *  -D P, -trace file=P  the target's own file in spec->workdir.
 *  -readconfig        refused: its sections would escape these rules.
 *  -vnc, -spice that listen  refused: no way to hand their socket over.
 *  -name, -msg, -sandbox and anything else: as written.
 */
int qemu_target_argv_build(char *const *src_argv, int argc,
			   const struct qemu_target_spec *spec,
			   struct qemu_target_argv *ret, char **ret_error)
{
	struct rewrite w = {
		.spec = spec,
		.argv = g_ptr_array_new_with_free_func(g_free),
		.fds = g_array_new(false, false, sizeof(int)),
		.notes = g_ptr_array_new_with_free_func(g_free),
		.dropped_chardevs = g_hash_table_new_full(g_str_hash, g_str_equal,
							  g_free, NULL),
	};
	int r = 0;

	/*
	 * Paths are written as given: relative ones would be read in the
	 * source's working directory, where the target runs, so the driver
	 * passes absolute ones (a --dry-run may pass placeholders).
	 */
	if (!spec->qemu || !spec->manifest || !spec->qmp_path || !spec->workdir) {
		refuse(&w, "the target's binary, manifest, QMP socket and workdir must all be given");
		r = -EINVAL;
		goto out;
	}
	w.words = g_new0(struct word, argc > 0 ? (size_t)argc : 1);
	for (int i = 1; i < argc; i++) {
		struct word *x = &w.words[w.n_words++];

		x->arg = src_argv[i];
		x->name = option_name(src_argv[i]);
		if (x->name && !x->name[0])
			x->name = NULL;	/* "-" or "--": a positional */
		if (x->name && takes_arg(x->name) && i + 1 < argc)
			x->val = src_argv[++i];
	}
	g_ptr_array_add(w.argv, g_strdup(spec->qemu));
	for (size_t i = 0; i < w.n_words; i++) {
		if (!rewrite_word(&w, &w.words[i])) {
			r = -EOPNOTSUPP;
			goto out;
		}
	}
	emit_take(&w, "-object", g_strdup_printf("x-fd-handover,id=fdh0,manifest=%s",
						 spec->manifest));
	emit_take(&w, "-qmp", g_strdup_printf("unix:%s,server=on,wait=off",
					      spec->qmp_path));
	emit(&w, "-incoming", "defer");
	g_ptr_array_add(w.argv, NULL);
	g_ptr_array_add(w.notes, NULL);

	ret->argv = (char **)g_ptr_array_free(w.argv, false);
	ret->n_inherit_fds = w.fds->len;
	ret->inherit_fds = (int *)(void *)g_array_free(w.fds, false);
	ret->pidfile = w.pidfile;
	ret->had_S = w.had_S;
	ret->notes = (char **)g_ptr_array_free(w.notes, false);
	g_hash_table_destroy(w.dropped_chardevs);
	g_free(w.words);
	return 0;
out:
	if (ret_error)
		*ret_error = g_steal_pointer(&w.error);
	g_free(w.error);
	g_free(w.words);
	g_ptr_array_free(w.argv, true);
	g_array_free(w.fds, true);
	g_ptr_array_free(w.notes, true);
	g_hash_table_destroy(w.dropped_chardevs);
	g_free(w.pidfile);
	return r;
}

void qemu_target_argv_free(struct qemu_target_argv *t)
{
	g_clear_pointer(&t->argv, g_strfreev);
	g_clear_pointer(&t->inherit_fds, g_free);
	t->n_inherit_fds = 0;
	g_clear_pointer(&t->pidfile, g_free);
	g_clear_pointer(&t->notes, g_strfreev);
	t->had_S = false;
}

/* "-mon chardev=ID,mode=control" or "-mon ID": the chardev, if control. */
static char *control_mon_chardev(const char *val)
{
	struct qemu_keyval kv;
	const char *id, *mode;
	char *ret = NULL;

	qemu_keyval_parse(val, &kv);
	id = qemu_keyval_get(&kv, "chardev");
	if (!id && kv.n && !kv.items[0].key)
		id = kv.items[0].val;
	mode = qemu_keyval_get(&kv, "mode");
	if (id && mode && strcmp(mode, "control") == 0)
		ret = g_strdup(id);
	qemu_keyval_free(&kv);
	return ret;
}

/* The path= of -chardev socket,id=ID,path=P (not fd=), or NULL. */
static char *chardev_socket_path(char *const *argv, int argc, const char *id)
{
	char *ret = NULL;

	for (int i = 1; i < argc && !ret; i++) {
		const char *name = option_name(argv[i]);
		struct qemu_keyval kv;
		const char *cid, *path;

		if (!name || !name[0] || !takes_arg(name) || i + 1 >= argc)
			continue;
		i++;
		if (strcmp(name, "chardev") != 0)
			continue;
		qemu_keyval_parse(argv[i], &kv);
		cid = qemu_keyval_get(&kv, "id");
		path = qemu_keyval_get(&kv, "path");
		if (kv.n && !kv.items[0].key && strcmp(kv.items[0].val, "socket") == 0 &&
		    cid && strcmp(cid, id) == 0 && path)
			ret = g_strdup(path);
		qemu_keyval_free(&kv);
	}
	return ret;
}

char *qemu_cmdline_qmp_path(char *const *argv, int argc)
{
	char *ret = NULL;

	for (int i = 1; i < argc && !ret; i++) {
		const char *name = option_name(argv[i]);
		const char *val;

		if (!name || !name[0] || !takes_arg(name) || i + 1 >= argc)
			continue;
		val = argv[++i];
		if (strcmp(name, "qmp") == 0 || strcmp(name, "qmp-pretty") == 0) {
			struct qemu_keyval kv;

			if (g_str_has_prefix(val, "chardev:")) {
				ret = chardev_socket_path(argv, argc, val + 8);
				continue;
			}
			if (!g_str_has_prefix(val, "unix:"))
				continue;
			/* "unix:P,server=on": the path is the bare first
			 * item, or "unix:path=P,..." (QEMU's implied key). */
			qemu_keyval_parse(val + 5, &kv);
			if (kv.n && !kv.items[0].key)
				ret = g_strdup(kv.items[0].val);
			else if (qemu_keyval_get(&kv, "path"))
				ret = g_strdup(qemu_keyval_get(&kv, "path"));
			qemu_keyval_free(&kv);
		} else if (strcmp(name, "mon") == 0) {
			g_autofree char *id = control_mon_chardev(val);

			if (id)
				ret = chardev_socket_path(argv, argc, id);
		}
	}
	return ret;
}
