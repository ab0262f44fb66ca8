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
#include <errno.h>
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

/* "tap,id=a,,b,ifname=t0": items split at single commas. */
static void parse_keyval(struct qemu_opt *o, const char *arg)
{
	size_t len = strlen(arg);
	char *item = malloc(len + 1);
	bool first = true;

	if (!item)
		return;
	while (*arg) {
		size_t n = 0;
		char *eq;

		for (; *arg; arg++) {
			if (*arg == ',') {
				if (arg[1] != ',')
					break;
				arg++;	/* ",," is one comma */
			}
			item[n++] = *arg;
		}
		item[n] = '\0';
		if (*arg == ',')
			arg++;
		eq = strchr(item, '=');
		if (eq) {
			*eq = '\0';
			apply(o, item, eq + 1);
		} else if (first) {
			apply(o, NULL, item);
		}
		first = false;
	}
	free(item);
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
