// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The QEMU command line reader and the upgrade target's argv rewriter
 * (tools/qemu-cmdline.c): one rule per test, on small argvs, then on
 * command lines captured from our e2e VM and from libvirt (tests/data/).
 */
#include "harness.h"
#include "../tools/qemu-cmdline.h"

#include <glib.h>

static const struct qemu_target_spec spec = {
	.qemu = "/new/qemu-system-x86_64",
	.manifest = "/run/fdh/source.fdhm",
	.qmp_path = "/run/fdh/target.qmp",
	.workdir = "/run/fdh",
};

/* Index of the option opt with value val in argv, or -1. */
static int find_opt(char **argv, const char *opt, const char *val)
{
	for (int i = 0; argv[i]; i++)
		if (strcmp(argv[i], opt) == 0 &&
		    (!val || (argv[i + 1] && strcmp(argv[i + 1], val) == 0)))
			return i;
	return -1;
}

static G_GNUC_UNUSED bool has_fd(const struct qemu_target_argv *t, int fd)
{
	for (size_t i = 0; i < t->n_inherit_fds; i++)
		if (t->inherit_fds[i] == fd)
			return true;
	return false;
}

/* Builds from a NULL-terminated list; the error, if any, into *err. */
static int build(const char *const *src, struct qemu_target_argv *t, char **err)
{
	int argc = 0;

	while (src[argc])
		argc++;
	*err = NULL;
	memset(t, 0, sizeof(*t));
	return qemu_target_argv_build((char *const *)src, argc, &spec, t, err);
}

TEST(keyval_commas_are_doubled_both_ways)
{
	struct qemu_keyval kv;
	g_autofree char *back = NULL;

	qemu_keyval_parse("file,id=a,,b,path=/x,,y=z", &kv);
	ASSERT_EQ(kv.n, 3, "three items: the type, id, path");
	ASSERT_TRUE(kv.items[0].key == NULL, "the type is a bare item");
	ASSERT_STREQ(kv.items[1].val, "a,b", "',,' is a literal comma");
	ASSERT_STREQ(qemu_keyval_get(&kv, "path"), "/x,y=z",
		     "a value splits at the first '=' only");
	back = qemu_keyval_format(&kv);
	ASSERT_STREQ(back, "file,id=a,,b,path=/x,,y=z", "formatting doubles commas again");
	qemu_keyval_free(&kv);
}

TEST(keyval_set_replaces_every_duplicate)
{
	struct qemu_keyval kv;
	g_autofree char *s = NULL;

	qemu_keyval_parse("file,append=off,path=p,append=off", &kv);
	qemu_keyval_set(&kv, "append", "on");
	s = qemu_keyval_format(&kv);
	ASSERT_STREQ(s, "file,append=on,path=p", "one append=on, where the first was");
	qemu_keyval_free(&kv);
}

TEST(adds_handover_object_qmp_and_incoming_defer)
{
	const char *src[] = { "qemu-system-x86_64", "-m", "256M", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_STREQ(t.argv[0], spec.qemu, "argv[0] is the new binary");
	ASSERT_GE(find_opt(t.argv, "-m", "256M"), 0, "unknown options pass through");
	ASSERT_GE(find_opt(t.argv, "-object",
			   "x-fd-handover,id=fdh0,manifest=/run/fdh/source.fdhm"), 0);
	ASSERT_GE(find_opt(t.argv, "-qmp",
			   "unix:/run/fdh/target.qmp,server=on,wait=off"), 0);
	ASSERT_GE(find_opt(t.argv, "-incoming", "defer"), 0);
	qemu_target_argv_free(&t);
}

TEST(drops_S_daemonize_pidfile_incoming_and_old_handover_object)
{
	const char *src[] = { "qemu-system-x86_64", "-S", "-daemonize",
		"-pidfile", "/run/vm.pid", "-incoming", "unix:/x.sock",
		"-object", "x-fd-handover,id=fdh0,manifest=/old.fdhm",
		"--no-reboot", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_TRUE(t.had_S, "-S is reported");
	ASSERT_EQ(find_opt(t.argv, "-S", NULL), -1, "-S would keep the target paused");
	ASSERT_EQ(find_opt(t.argv, "-daemonize", NULL), -1);
	ASSERT_EQ(find_opt(t.argv, "-pidfile", NULL), -1);
	ASSERT_STREQ(t.pidfile, "/run/vm.pid", "the pidfile is returned to the driver");
	ASSERT_EQ(find_opt(t.argv, "-incoming", "unix:/x.sock"), -1);
	ASSERT_EQ(find_opt(t.argv, "-object",
			   "x-fd-handover,id=fdh0,manifest=/old.fdhm"), -1);
	ASSERT_GE(find_opt(t.argv, "--no-reboot", NULL), 0, "'--' options are options too");
	qemu_target_argv_free(&t);
}

TEST_HARNESS_MAIN
