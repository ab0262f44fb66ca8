// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: everything tools/qemu-cmdline.c reads a source QEMU's
 * command line with.  The input is /proc/PID/cmdline: arguments ended by
 * NUL (the last one may lack it), cut the way proc_cmdline() cuts them.
 * On that argv: qemu_is_qemu(), qemu_cmdline_parse() and
 * qemu_chardev_user() (`plan`), qemu_cmdline_qmp_path() and
 * qemu_target_argv_build() with and without handed-over listeners
 * (`upgrade`), and the keyval tokenizer on every argument.
 *
 * Anything goes in; what comes out must hold together, else abort: a
 * target argv starts with the new binary and ends with the driver's own
 * handover object, -qmp and -incoming defer; inherited fds are distinct
 * and not negative; a refusal says why; formatting a tokenized option and
 * tokenizing it again is a fixed point.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz-glib.h"
#include "qemu-cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct qemu_listener listeners[] = {
	{ .path = "/run/vm/qmp.sock", .fd = 40 },
	{ .path = "/run/vm/vhost-user.sock", .fd = 41 },
	{ .path = "", .fd = 42 },
};

/* proc_cmdline(): one string per NUL-ended piece, a last unended one too. */
static char **split_cmdline(const uint8_t *data, size_t size, int *ret_argc)
{
	char *buf = g_malloc(size + 1);
	GPtrArray *argv = g_ptr_array_new();
	char *p = buf;

	memcpy(buf, data, size);
	buf[size] = '\0';
	while (p < buf + size) {
		g_ptr_array_add(argv, g_strdup(p));
		p += strlen(p) + 1;
	}
	g_free(buf);
	*ret_argc = (int)argv->len;
	g_ptr_array_add(argv, NULL);
	return (char **)g_ptr_array_free(argv, false);
}

static bool same_keyval(const struct qemu_keyval *a,
			const struct qemu_keyval *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (g_strcmp0(a->items[i].key, b->items[i].key) ||
		    strcmp(a->items[i].val, b->items[i].val))
			return false;
	return true;
}

/* parse ∘ format is the identity on what parse returns. */
static void check_keyval(const char *arg)
{
	struct qemu_keyval kv, again;
	char *text;

	qemu_keyval_parse(arg, &kv);
	text = qemu_keyval_format(&kv);
	qemu_keyval_parse(text, &again);
	/* "," is one empty bare item, which formats as "": no item. */
	if (!same_keyval(&kv, &again) &&
	    !(kv.n == 1 && !kv.items[0].key && !kv.items[0].val[0] && !again.n))
		abort();
	g_free(text);
	qemu_keyval_free(&kv);
	qemu_keyval_free(&again);
}

static void check_parse(char **argv, int argc)
{
	struct qemu_cmdline q;

	if (qemu_cmdline_parse(argv, argc, &q) < 0)
		abort();
	for (size_t i = 0; i < q.n; i++) {
		const struct qemu_opt *o = &q.opts[i];
		const struct qemu_opt *user = qemu_chardev_user(&q, o->id);

		if (o->n_fds > QEMU_OPT_MAX_FDS ||
		    o->n_vhostfds > QEMU_OPT_MAX_FDS ||
		    (user && (user->kind == QEMU_CHARDEV || !o->id[0])))
			abort();
		/* Fixed-size fields stay terminated. */
		if (!memchr(o->type, 0, sizeof(o->type)) ||
		    !memchr(o->id, 0, sizeof(o->id)) ||
		    !memchr(o->ifname, 0, sizeof(o->ifname)) ||
		    !memchr(o->path, 0, sizeof(o->path)) ||
		    !memchr(o->chardev, 0, sizeof(o->chardev)))
			abort();
	}
	qemu_cmdline_free(&q);
}

static void check_target(char **argv, int argc, bool with_listeners)
{
	const struct qemu_target_spec spec = {
		.qemu = "/new/qemu-system-x86_64",
		.manifest = "/run/fdh/source.fdhm",
		.qmp_path = "/run/fdh/target.qmp",
		.workdir = "/run/fdh",
		.listeners = with_listeners ? listeners : NULL,
		.n_listeners = with_listeners ? G_N_ELEMENTS(listeners) : 0,
	};
	struct qemu_target_argv t = { 0 };
	char *error = NULL;
	size_t n;

	if (qemu_target_argv_build(argv, argc, &spec, &t, &error) < 0) {
		if (!error || !error[0] || t.argv)
			abort();
		g_free(error);
		return;
	}
	if (error || !t.argv || !t.notes)
		abort();
	n = g_strv_length(t.argv);
	if (n < 7 || strcmp(t.argv[0], spec.qemu) ||
	    strcmp(t.argv[n - 6], "-object") ||
	    strcmp(t.argv[n - 4], "-qmp") ||
	    strcmp(t.argv[n - 2], "-incoming") ||
	    strcmp(t.argv[n - 1], "defer"))
		abort();
	for (size_t i = 0; i < t.n_inherit_fds; i++) {
		if (t.inherit_fds[i] < 0)
			abort();
		for (size_t j = 0; j < i; j++)
			if (t.inherit_fds[i] == t.inherit_fds[j])
				abort();
	}
	for (char **note = t.notes; *note; note++)
		if (!**note)
			abort();
	qemu_target_argv_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int argc;
	char **argv = split_cmdline(data, size, &argc);

	qemu_is_qemu(argc ? argv[0] : NULL, argv);
	check_parse(argv, argc);
	g_free(qemu_cmdline_qmp_path(argv, argc));
	check_target(argv, argc, false);
	check_target(argv, argc, true);
	for (int i = 1; i < argc; i++)
		check_keyval(argv[i]);
	g_strfreev(argv);
	return 0;
}
