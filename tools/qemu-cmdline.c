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

		if (end == v || fd < 0)
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
		o->vhost = parse_bool(v);
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

int qemu_cmdline_parse(char *const *argv, int argc, struct qemu_cmdline *ret)
{
	struct qemu_cmdline q = { 0 };
	size_t n_nic = 0;
	int r = 0;

	for (int i = 1; i + 1 < argc && r == 0; i++) {
		const char *name = option_name(argv[i]);
		const char *val = argv[i + 1];

		if (!name)
			continue;
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
			if (strstr(val, "aux-ram-share=on"))
				q.aux_ram_share = true;
			continue;
		} else {
			continue;
		}
		i++;	/* the value was consumed */
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

/* QEMU 10.0's options without an argument (qemu-options.hx, flags 0). */
static const char *const no_arg_options[] = {
	"h", "help", "version", "mem-prealloc", "snapshot", "usb",
	"nographic", "full-screen", "win2k-hack", "no-fd-bootchk",
	"preconfig", "S", "s", "enable-kvm", "xen-attach",
	"xen-domid-restrict", "no-reboot", "no-shutdown", "daemonize",
	"only-migratable", "nodefaults", "semihosting", "old-param",
	"no-user-config", "enable-sync-profile", "perfmap", "jitdump",
};

static bool takes_arg(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(no_arg_options); i++)
		if (strcmp(name, no_arg_options[i]) == 0)
			return false;
	return true;
}

/* The rewriter's state: the target's argv and what it collects. */
struct rewrite {
	const struct qemu_target_spec *spec;
	GPtrArray *argv;
	GArray *fds;
	GPtrArray *notes;
	char *pidfile;
	bool had_S;
	char *error;
};

static void out2(struct rewrite *w, const char *opt, const char *val)
{
	g_ptr_array_add(w->argv, g_strdup(opt));
	if (val)
		g_ptr_array_add(w->argv, g_strdup(val));
}

static void G_GNUC_PRINTF(2, 3) note(struct rewrite *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(w->notes, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

/* -object x-fd-handover,... or {"qom-type": "x-fd-handover", ...} */
static bool is_handover_object(const char *val)
{
	struct qemu_opt o = { 0 };

	if (val[0] == '{')
		parse_json(&o, val);
	else
		parse_keyval(&o, val);
	return strcmp(o.type, "x-fd-handover") == 0;
}

/*
 * One option of the source (val NULL for options without argument).
 * Returns false when it is refused (w->error set).
 */
static bool rewrite_one(struct rewrite *w, const char *arg, const char *name,
			const char *val)
{
	if (strcmp(name, "S") == 0) {
		w->had_S = true;
		note(w, "-S dropped: the target runs iff the source was running (migration global state)");
		return true;
	}
	if (strcmp(name, "daemonize") == 0) {
		note(w, "-daemonize dropped: the driver watches the target as its child");
		return true;
	}
	if (strcmp(name, "pidfile") == 0) {
		g_free(w->pidfile);
		w->pidfile = g_strdup(val);
		note(w, "-pidfile %s dropped: the driver writes the target's pid there once the source has exited", val);
		return true;
	}
	if (strcmp(name, "incoming") == 0) {
		note(w, "-incoming %s dropped: the target gets -incoming defer", val);
		return true;
	}
	if (strcmp(name, "qmp") == 0) {
		note(w, "-qmp %s dropped: the driver's own QMP socket replaces it", val);
		return true;
	}
	if (strcmp(name, "object") == 0 && is_handover_object(val)) {
		note(w, "-object %s dropped: a former target's handover object", val);
		return true;
	}
	out2(w, arg, val);
	return true;
}

int qemu_target_argv_build(char *const *src_argv, int argc,
			   const struct qemu_target_spec *spec,
			   struct qemu_target_argv *ret, char **ret_error)
{
	struct rewrite w = {
		.spec = spec,
		.argv = g_ptr_array_new_with_free_func(g_free),
		.fds = g_array_new(false, false, sizeof(int)),
		.notes = g_ptr_array_new_with_free_func(g_free),
	};
	int r = 0;

	g_ptr_array_add(w.argv, g_strdup(spec->qemu));
	for (int i = 1; i < argc; i++) {
		const char *name = option_name(src_argv[i]);
		const char *val = NULL;

		if (!name || !name[0]) {
			/* A positional argument (a disk image): as it is. */
			g_ptr_array_add(w.argv, g_strdup(src_argv[i]));
			continue;
		}
		if (takes_arg(name) && i + 1 < argc)
			val = src_argv[++i];
		if (!rewrite_one(&w, src_argv[i - (val ? 1 : 0)], name, val)) {
			r = -EINVAL;
			goto out;
		}
	}

	out2(&w, "-object", NULL);
	g_ptr_array_add(w.argv, g_strdup_printf("x-fd-handover,id=fdh0,manifest=%s", spec->manifest));
	out2(&w, "-qmp", NULL);
	g_ptr_array_add(w.argv, g_strdup_printf("unix:%s,server=on,wait=off", spec->qmp_path));
	out2(&w, "-incoming", "defer");
	g_ptr_array_add(w.argv, NULL);
	g_ptr_array_add(w.notes, NULL);

	ret->argv = (char **)g_ptr_array_free(w.argv, false);
	ret->n_inherit_fds = w.fds->len;
	ret->inherit_fds = (int *)(void *)g_array_free(w.fds, false);
	ret->pidfile = w.pidfile;
	ret->had_S = w.had_S;
	ret->notes = (char **)g_ptr_array_free(w.notes, false);
	return 0;
out:
	if (ret_error)
		*ret_error = g_steal_pointer(&w.error);
	g_free(w.error);
	g_ptr_array_free(w.argv, true);
	g_array_free(w.fds, true);
	g_ptr_array_free(w.notes, true);
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
