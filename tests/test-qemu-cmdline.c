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

static bool has_fd(const struct qemu_target_argv *t, int fd)
{
	for (size_t i = 0; i < t->n_inherit_fds; i++)
		if (t->inherit_fds[i] == fd)
			return true;
	return false;
}

/* Builds from a NULL-terminated list with spec s; the error into *err. */
static int build_with(const struct qemu_target_spec *s, const char *const *src,
		      struct qemu_target_argv *t, char **err)
{
	int argc = 0;

	while (src[argc])
		argc++;
	*err = NULL;
	memset(t, 0, sizeof(*t));
	return qemu_target_argv_build((char *const *)src, argc, s, t, err);
}

static int build(const char *const *src, struct qemu_target_argv *t, char **err)
{
	return build_with(&spec, src, t, err);
}

/* A captured argv (tests/data/NAME: one argument per line). */
static char **load_argv(const char *name, int *argc)
{
	const char *dir = getenv("FDH_TEST_DATA");
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	char **argv;

	path = g_build_filename(dir ? dir : "tests/data", name, NULL);
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	g_strchomp(text);
	argv = g_strsplit(text, "\n", -1);
	*argc = (int)g_strv_length(argv);
	return argv;
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

TEST(source_listening_chardev_by_path_is_served_from_its_socket)
{
	static const struct qemu_listener l[] = { { "/run/vm/mon.sock", 9 } };
	struct qemu_target_spec s = spec;
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=charmonitor,path=/run/vm/mon.sock,server=on,wait=on",
		"-mon", "chardev=charmonitor,id=monitor,mode=control", NULL };
	struct qemu_target_argv t;
	char *err;

	s.listeners = l;
	s.n_listeners = 1;
	ASSERT_EQ(build_with(&s, src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev", "socket,id=charmonitor,server=on,wait=off,fd=9"), 0,
		  "path= becomes the listener's fd, and the target must not wait for a client");
	ASSERT_TRUE(has_fd(&t, 9), "the listener is inherited at its number");
	ASSERT_GE(find_opt(t.argv, "-mon", "chardev=charmonitor,id=monitor,mode=control"), 0);
	qemu_target_argv_free(&t);
}

TEST(monitor_by_path_without_its_listener_is_dropped_with_its_mon)
{
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=m,path=/run/vm/mon.sock,server,nowait",
		"-mon", "m", "-qmp", "unix:/run/vm/qmp.sock,server=on,wait=off", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_EQ(find_opt(t.argv, "-chardev", NULL), -1, "binding the path again would unlink the source's");
	ASSERT_EQ(find_opt(t.argv, "-mon", NULL), -1, "a -mon without its chardev would fail");
	ASSERT_EQ(find_opt(t.argv, "-qmp", "unix:/run/vm/qmp.sock,server=on,wait=off"), -1);
	ASSERT_GE(find_opt(t.argv, "-qmp", "unix:/run/fdh/target.qmp,server=on,wait=off"), 0);
	qemu_target_argv_free(&t);
}

TEST(legacy_qmp_with_its_listener_becomes_chardev_and_mon)
{
	static const struct qemu_listener l[] = { { "/run/vm/qmp.sock", 4 } };
	struct qemu_target_spec s = spec;
	const char *src[] = { "qemu-system-x86_64",
		"-qmp-pretty", "unix:/run/vm/qmp.sock,server=on,wait=off",
		"-monitor", "stdio", NULL };
	struct qemu_target_argv t;
	char *err;
	int i;

	s.listeners = l;
	s.n_listeners = 1;
	ASSERT_EQ(build_with(&s, src, &t, &err), 0, "%s", err ? err : "");
	i = find_opt(t.argv, "-chardev", NULL);
	ASSERT_GE(i, 0);
	ASSERT_STREQ(t.argv[i + 1], "socket,id=fdh-qmp-pretty0,server=on,wait=off,fd=4");
	ASSERT_GE(find_opt(t.argv, "-mon", "chardev=fdh-qmp-pretty0,mode=control,pretty=on"), 0);
	ASSERT_TRUE(has_fd(&t, 4));
	ASSERT_GE(find_opt(t.argv, "-monitor", "stdio"), 0, "a stdio monitor is kept");
	qemu_target_argv_free(&t);
}

/* A former target's argv: its driver's ids next to the -qmp it added. */
TEST(chardev_ids_we_make_are_new_to_the_source)
{
	static const struct qemu_listener l[] = {
		{ "/run/vm/qmp.sock", 4 }, { "/run/vm/up2/target-qmp.sock", 5 } };
	struct qemu_target_spec s = spec;
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=fdh-qmp0,server=on,wait=off,fd=4",
		"-mon", "chardev=fdh-qmp0,mode=control",
		"-qmp", "unix:/run/vm/up2/target-qmp.sock,server=on,wait=off", NULL };
	struct qemu_target_argv t;
	char *err;

	s.listeners = l;
	s.n_listeners = 2;
	ASSERT_EQ(build_with(&s, src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev", "socket,id=fdh-qmp0,server=on,wait=off,fd=4"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev", "socket,id=fdh-qmp1,server=on,wait=off,fd=5"), 0,
		  "the -qmp's chardev gets an id the source does not have");
	ASSERT_GE(find_opt(t.argv, "-mon", "chardev=fdh-qmp1,mode=control"), 0);
	qemu_target_argv_free(&t);
}

/*
 * A chain of upgrades: the -qmp a former driver appended after its
 * handover object was that driver's; handing it over again would add
 * one listener per upgrade.  The manager's own -qmp is kept.
 */
TEST(a_former_drivers_monitor_is_not_handed_over_again)
{
	static const struct qemu_listener l[] = {
		{ "/run/vm/qmp.sock", 4 }, { "/run/vm/up1/target-qmp.sock", 5 } };
	struct qemu_target_spec s = spec;
	const char *src[] = { "qemu-system-x86_64",
		"-qmp", "unix:/run/vm/qmp.sock,server=on,wait=off",
		"-object", "x-fd-handover,id=fdh0,manifest=/run/vm/up1/source.fdhm",
		"-qmp", "unix:/run/vm/up1/target-qmp.sock,server=on,wait=off",
		"-incoming", "defer", NULL };
	struct qemu_target_argv t;
	char *err;

	s.listeners = l;
	s.n_listeners = 2;
	ASSERT_EQ(build_with(&s, src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_TRUE(has_fd(&t, 4), "the manager's monitor is handed over");
	ASSERT_FALSE(has_fd(&t, 5), "the former driver's monitor is not");
	ASSERT_EQ(t.n_inherit_fds, 1, "one listener, not one more per upgrade");
	ASSERT_GE(find_opt(t.argv, "-qmp",
			   "unix:/run/fdh/target.qmp,server=on,wait=off"), 0,
		  "this driver's own monitor");
	qemu_target_argv_free(&t);
}

TEST(libvirt_monitor_fd_is_inherited)
{
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=charmonitor,fd=23,server=on,wait=off",
		"-mon", "chardev=charmonitor,id=monitor,mode=control", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev", "socket,id=charmonitor,fd=23,server=on,wait=off"), 0);
	ASSERT_GE(find_opt(t.argv, "-mon", NULL), 0);
	ASSERT_TRUE(has_fd(&t, 23), "fd=23 must exist in the target");
	qemu_target_argv_free(&t);
}

TEST(listener_not_a_monitor_nor_handed_over_is_refused)
{
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=con,path=/run/vm/console.sock,server=on,wait=off",
		"-serial", "chardev:con", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(err && strstr(err, "/run/vm/console.sock"), "the message names the path: %s",
		    err ? err : "(none)");
	g_free(err);
}

TEST(tcp_listeners_are_refused)
{
	const char *a[] = { "qemu-system-x86_64", "-monitor", "tcp:127.0.0.1:4444,server=on,wait=off", NULL };
	const char *b[] = { "qemu-system-x86_64", "-chardev", "socket,id=c,host=::1,port=5,server=on", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(a, &t, &err), -EOPNOTSUPP, "the port is the source's");
	g_free(err);
	ASSERT_EQ(build(b, &t, &err), -EOPNOTSUPP, "the port is the source's");
	g_free(err);
}

TEST(unix_client_chardev_is_kept_as_written)
{
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "socket,id=vun0,path=/run/vu.sock", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev", "socket,id=vun0,path=/run/vu.sock"), 0,
		  "vhost-user connections come from the manifest");
	ASSERT_EQ(t.n_inherit_fds, 0);
	qemu_target_argv_free(&t);
}

TEST(file_chardevs_and_serial_files_append)
{
	const char *src[] = { "qemu-system-x86_64",
		"-chardev", "file,id=s0,path=/var/log/vm,,1.log,append=off",
		"-chardev", "pty,id=s1,logfile=/var/log/pty.log",
		"-serial", "file:console.log", "-debugcon", "file:debug.log", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev", "file,id=s0,path=/var/log/vm,,1.log,append=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev", "pty,id=s1,logfile=/var/log/pty.log,logappend=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev", "file,id=fdh-serial0,path=console.log,append=on"), 0,
		  "a relative path stays relative: the target runs in the source's cwd");
	ASSERT_GE(find_opt(t.argv, "-serial", "chardev:fdh-serial0"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev", "file,id=fdh-debugcon1,path=debug.log,append=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-debugcon", "chardev:fdh-debugcon1"), 0);
	qemu_target_argv_free(&t);
}

TEST(add_fd_numbers_are_inherited_and_fdsets_kept)
{
	const char *src[] = { "qemu-system-x86_64",
		"-add-fd", "set=0,fd=31,opaque=serial0-log",
		"-chardev", "file,id=charserial0,path=/dev/fdset/0,append=on", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_TRUE(has_fd(&t, 31));
	ASSERT_GE(find_opt(t.argv, "-add-fd", "set=0,fd=31,opaque=serial0-log"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev", "file,id=charserial0,path=/dev/fdset/0,append=on"), 0);
	qemu_target_argv_free(&t);
}

TEST(tap_fds_are_left_to_the_manifest)
{
	const char *src[] = { "qemu-system-x86_64",
		"-netdev", "tap,id=net0,fds=5:6,vhost=off",
		"-netdev", "{\"type\":\"tap\",\"fd\":\"17\",\"id\":\"hostnet0\"}",
		"-netdev", "socket,id=s0,fd=8", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_FALSE(has_fd(&t, 5) || has_fd(&t, 6) || has_fd(&t, 17),
		     "an adopted TAP never reads fd=");
	ASSERT_TRUE(has_fd(&t, 8), "a socket netdev opens fd=8 itself");
	ASSERT_GE(find_opt(t.argv, "-netdev", "tap,id=net0,fds=5:6,vhost=off"), 0);
	qemu_target_argv_free(&t);
}

/* A source without vhost-net handover (or vhost not open): refused. */
TEST(vhost_net_is_refused_naming_the_netdev)
{
	const char *a[] = { "qemu-system-x86_64", "-netdev", "tap,id=net7,fd=5,vhost=on", NULL };
	const char *b[] = { "qemu-system-x86_64", "-netdev",
		"{\"type\":\"tap\",\"fd\":\"17\",\"vhost\":true,\"vhostfd\":\"19\",\"id\":\"hostnet3\"}", NULL };
	const char *c[] = { "qemu-system-x86_64", "-device", "vhost-vsock-pci,id=vsock0,guest-cid=3,vhostfd=20", NULL };
	const char *d[] = { "qemu-system-x86_64", "-netdev",
		"{\"type\":\"tap\",\"id\":\"hn9\",\"vhostforce\":true}", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(a, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err, "net7") && strstr(err, "vhost"), "%s", err);
	g_free(err);
	ASSERT_EQ(build(b, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err, "hostnet3"), "%s", err);
	g_free(err);
	ASSERT_EQ(build(c, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err, "vsock0"), "%s", err);
	g_free(err);
	ASSERT_EQ(build(d, &t, &err), -EOPNOTSUPP, "vhostforce implies vhost=on");
	ASSERT_TRUE(strstr(err, "hn9"), "%s", err);
	g_free(err);
}

/*
 * The source hands the netdev's vhost-net devices over (its manifest says
 * so): vhost=on and vhostfd(s)= stay as written, their numbers are not
 * inherited (the target takes the devices from the manifest), and only
 * those netdevs: another tap with vhost, or vhost-vsock, is refused.
 */
TEST(vhost_net_handed_over_is_kept_and_not_inherited)
{
	static const char *const ids[] = { "net7", "hostnet3" };
	struct qemu_target_spec s = spec;
	const char *a[] = { "qemu-system-x86_64",
		"-netdev", "tap,id=net7,fds=5:6,vhost=on,queues=2",
		"-netdev", "{\"type\":\"tap\",\"fd\":\"17\",\"vhost\":true,\"vhostfd\":\"19\",\"id\":\"hostnet3\"}",
		NULL };
	const char *b[] = { "qemu-system-x86_64",
		"-netdev", "tap,id=net7,fd=5,vhost=on",
		"-netdev", "tap,id=net8,fd=6,vhostfd=9", NULL };
	const char *c[] = { "qemu-system-x86_64", "-netdev", "tap,id=net7,fd=5,vhost=on",
		"-device", "vhost-vsock-pci,id=vsock0,guest-cid=3,vhostfd=20", NULL };
	struct qemu_target_argv t;
	bool noted = false;
	char *err;

	s.vhost_netdevs = ids;
	s.n_vhost_netdevs = 2;
	ASSERT_EQ(build_with(&s, a, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-netdev", "tap,id=net7,fds=5:6,vhost=on,queues=2"), 0);
	ASSERT_GE(find_opt(t.argv, "-netdev",
			   "{\"type\":\"tap\",\"fd\":\"17\",\"vhost\":true,\"vhostfd\":\"19\",\"id\":\"hostnet3\"}"), 0);
	ASSERT_FALSE(has_fd(&t, 17) || has_fd(&t, 19) || has_fd(&t, 5),
		     "the target takes TAP and vhost-net from the manifest");
	for (char **n = t.notes; n && *n; n++)
		noted = noted || (strstr(*n, "hostnet3") && strstr(*n, "vhostfd"));
	ASSERT_TRUE(noted, "vhostfd= kept as written is noted");
	qemu_target_argv_free(&t);

	ASSERT_EQ(build_with(&s, b, &t, &err), -EOPNOTSUPP, "net8 is not handed over");
	ASSERT_TRUE(strstr(err, "net8") && strstr(err, "vhost=off"), "%s", err);
	g_free(err);
	ASSERT_EQ(build_with(&s, c, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err, "vsock0"), "%s", err);
	g_free(err);
}

TEST(object_and_device_fds_are_inherited)
{
	const char *src[] = { "qemu-system-x86_64",
		"-object", "{\"qom-type\":\"iommufd\",\"id\":\"iommufd0\",\"fd\":\"41\"}",
		"-device", "vfio-pci,host=0000:01:00.0,fd=42", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_TRUE(has_fd(&t, 41) && has_fd(&t, 42));
	qemu_target_argv_free(&t);
}

TEST(log_and_trace_files_go_to_the_workdir)
{
	const char *src[] = { "qemu-system-x86_64", "-D", "/var/log/qemu.log",
		"-trace", "virtio_*,file=trace.out", "-trace", "events=/etc/ev", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-D", "/run/fdh/target-qemu.log"), 0, "QEMU opens -D with \"w\"");
	ASSERT_GE(find_opt(t.argv, "-trace", "virtio_*,file=/run/fdh/target-trace.out"), 0);
	ASSERT_GE(find_opt(t.argv, "-trace", "events=/etc/ev"), 0);
	qemu_target_argv_free(&t);
}

TEST(name_msg_sandbox_and_unknown_options_are_kept)
{
	const char *src[] = { "qemu-system-x86_64",
		"-name", "guest=vm,debug-threads=on", "-msg", "timestamp=on",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-append", "-S console=ttyS0", "-x-future", "a,b", "disk.img", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-name", "guest=vm,debug-threads=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-msg", "timestamp=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-sandbox", NULL), 0);
	ASSERT_GE(find_opt(t.argv, "-append", "-S console=ttyS0"), 0, "a value is never an option");
	ASSERT_FALSE(t.had_S);
	ASSERT_GE(find_opt(t.argv, "-x-future", "a,b"), 0);
	ASSERT_GE(find_opt(t.argv, "disk.img", NULL), 0);
	qemu_target_argv_free(&t);
}

TEST(readconfig_is_refused)
{
	const char *src[] = { "qemu-system-x86_64", "-readconfig", "vm.cfg", NULL };
	struct qemu_target_argv t;
	char *err;

	ASSERT_EQ(build(src, &t, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err, "vm.cfg"), "%s", err);
	g_free(err);
}

TEST(listening_displays_are_refused)
{
	const char *bad[][3] = {
		{ "-vnc", "127.0.0.1:0,audiodev=audio1", "127.0.0.1:0" },
		{ "-vnc", "unix:/run/vm/vnc.sock", "vnc.sock" },
		{ "-spice", "port=5900,addr=127.0.0.1,disable-ticketing=on", "port=5900" },
		{ "-spice", "unix=on,addr=/run/vm/spice.sock", "spice.sock" },
	};
	const char *good[][2] = {
		{ "-vnc", "none" }, { "-vnc", "localhost:5500,reverse=on" },
		{ "-spice", "gl=off" },
	};
	struct qemu_target_argv t;
	char *err;

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		const char *src[] = { "q", bad[i][0], bad[i][1], NULL };

		ASSERT_EQ(build(src, &t, &err), -EOPNOTSUPP, "%s %s", bad[i][0], bad[i][1]);
		ASSERT_TRUE(strstr(err, bad[i][2]), "%s", err);
		g_free(err);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		const char *src[] = { "q", good[i][0], good[i][1], NULL };

		ASSERT_EQ(build(src, &t, &err), 0, "%s %s: %s", good[i][0], good[i][1],
			  err ? err : "");
		ASSERT_GE(find_opt(t.argv, good[i][0], good[i][1]), 0);
		qemu_target_argv_free(&t);
	}
}

TEST(incoming_forms_are_all_dropped)
{
	const char *src[] = { "qemu-system-x86_64", "-incoming", "defer",
		"-incoming", "{\"channel-type\":\"cpr\",\"addr\":{\"transport\":\"socket\",\"type\":\"unix\",\"path\":\"/c\"}}",
		"--incoming", "fd:7", NULL };
	struct qemu_target_argv t;
	char *err;
	int n = 0;

	ASSERT_EQ(build(src, &t, &err), 0, "%s", err ? err : "");
	for (int i = 0; t.argv[i]; i++)
		n += strstr(t.argv[i], "incoming") != NULL;
	ASSERT_EQ(n, 1, "only ours");
	ASSERT_FALSE(has_fd(&t, 7), "the source's own incoming channel is over");
	qemu_target_argv_free(&t);
}

TEST(an_incomplete_spec_is_refused)
{
	struct qemu_target_spec s = spec;
	const char *src[] = { "qemu-system-x86_64", NULL };
	struct qemu_target_argv t;
	char *err;

	s.workdir = NULL;
	ASSERT_EQ(build_with(&s, src, &t, &err), -EINVAL);
	ASSERT_TRUE(err != NULL, "the error says what is missing");
	g_free(err);
}

TEST(our_e2e_command_line)
{
	static const struct qemu_listener l[] = {
		{ "/tmp/fdh-e2e-zr6qf5e7/src.qmp", 7 } };
	struct qemu_target_spec s = spec;
	struct qemu_target_argv t = { 0 };
	char *err = NULL;
	int argc;
	char **argv = load_argv("ours.argv", &argc);

	ASSERT_TRUE(argv, "tests/data/ours.argv");
	s.listeners = l;
	s.n_listeners = 1;
	ASSERT_EQ(qemu_target_argv_build(argv, argc, &s, &t, &err), 0, "%s", err ? err : "");
	ASSERT_GE(find_opt(t.argv, "-chardev",
			   "file,id=fdh-serial0,path=/tmp/fdh-e2e-zr6qf5e7/src.serial,append=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-netdev", "tap,id=net0,vhost=off,fd=5"), 0);
	ASSERT_FALSE(has_fd(&t, 5), "the TAP comes from the manifest");
	ASSERT_TRUE(has_fd(&t, 7), "the source's QMP listener is served on");
	ASSERT_GE(find_opt(t.argv, "-mon", "chardev=fdh-qmp1,mode=control"), 0);
	for (int i = 0; t.notes[i]; i++)
		TH_LOG("%s", t.notes[i]);
	qemu_target_argv_free(&t);
	g_strfreev(argv);
}

TEST(libvirt_command_line)
{
	static const struct qemu_listener l[] = {
		{ "/var/lib/libvirt/qemu/domain--1-fdh-libvirt/monitor.sock", 21 } };
	struct qemu_target_spec s = spec;
	struct qemu_target_argv t = { 0 };
	char *err = NULL;
	int argc;
	char **argv = load_argv("libvirt.argv", &argc);

	ASSERT_TRUE(argv, "tests/data/libvirt.argv (gen-libvirt-argv.sh)");
	s.listeners = l;
	s.n_listeners = 1;
	ASSERT_EQ(qemu_target_argv_build(argv, argc, &s, &t, &err), 0, "%s", err ? err : "");
	ASSERT_TRUE(t.had_S, "libvirt starts paused and sends cont");
	ASSERT_EQ(find_opt(t.argv, "-S", NULL), -1);
	ASSERT_GE(find_opt(t.argv, "-chardev",
			   "socket,id=charmonitor,server=on,wait=off,fd=21"), 0);
	ASSERT_GE(find_opt(t.argv, "-mon", "chardev=charmonitor,id=monitor,mode=control"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev",
			   "socket,id=chr-vu-virtio-disk0,path=/run/fdh-libvirt/vhost-user-blk.sock"), 0);
	ASSERT_GE(find_opt(t.argv, "-chardev",
			   "file,id=charserial0,path=/run/fdh-libvirt/serial.log,append=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-netdev", "{\"type\":\"tap\",\"fd\":\"17\",\"id\":\"hostnet0\"}"), 0);
	ASSERT_GE(find_opt(t.argv, "-name", "guest=fdh-libvirt,debug-threads=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-msg", "timestamp=on"), 0);
	ASSERT_GE(find_opt(t.argv, "-sandbox", NULL), 0);
	ASSERT_EQ(t.n_inherit_fds, 1, "only the monitor's listener");
	for (int i = 0; t.notes[i]; i++)
		TH_LOG("%s", t.notes[i]);
	qemu_target_argv_free(&t);
	g_strfreev(argv);
}

TEST(plan_reader_uses_the_same_words)
{
	const char *src[] = { "qemu-system-x86_64", "-S",
		"-append", "-netdev tap,id=bogus",
		"-netdev", "tap,id=a,,b,fds=3:4,vhost=on",
		"-machine", "pc,aux-ram-share=on", NULL };
	struct qemu_cmdline q;

	ASSERT_EQ(qemu_cmdline_parse((char *const *)src, (int)G_N_ELEMENTS(src) - 1, &q), 0);
	ASSERT_EQ(q.n, 1, "-append's value is not an option");
	ASSERT_STREQ(q.opts[0].id, "a,b", "',,' is a comma");
	ASSERT_EQ(q.opts[0].n_fds, 2);
	ASSERT_TRUE(q.opts[0].vhost);
	ASSERT_TRUE(q.aux_ram_share);
	qemu_cmdline_free(&q);
}

TEST(qmp_path_of_each_monitor_form)
{
	const char *a[] = { "q", "-S", "-qmp", "unix:/r/a,,b.sock,server=on,wait=off", NULL };
	const char *b[] = { "q", "-mon", "chardev=m,mode=readline",
		"-chardev", "socket,id=m,path=/r/hmp.sock,server=on",
		"-chardev", "socket,id=c,path=/r/qmp.sock,server=on",
		"-mon", "chardev=c,id=monitor,mode=control", NULL };
	const char *c[] = { "q", "-chardev", "socket,id=c,fd=3,server=on",
		"-mon", "chardev=c,mode=control", NULL };
	const char *d[] = { "q", "-append", "-qmp unix:/x", NULL };
	const char *e[] = { "q", "--qmp", "unix:path=/r/e.sock,server=on", NULL };
	g_autofree char *pa = qemu_cmdline_qmp_path((char *const *)a, 4);
	g_autofree char *pb = qemu_cmdline_qmp_path((char *const *)b, 9);
	g_autofree char *pc = qemu_cmdline_qmp_path((char *const *)c, 5);
	g_autofree char *pd = qemu_cmdline_qmp_path((char *const *)d, 3);
	g_autofree char *pe = qemu_cmdline_qmp_path((char *const *)e, 3);

	ASSERT_TRUE(pa && strcmp(pa, "/r/a,b.sock") == 0, "%s", pa ? pa : "NULL");
	ASSERT_TRUE(pb && strcmp(pb, "/r/qmp.sock") == 0, "the control one, not HMP: %s",
		    pb ? pb : "NULL");
	ASSERT_TRUE(pc == NULL, "fd= has no path on the command line");
	ASSERT_TRUE(pd == NULL, "-append's value is not an option");
	ASSERT_TRUE(pe && strcmp(pe, "/r/e.sock") == 0,
		    "unix:path=P is QEMU's implied key: %s", pe ? pe : "NULL");
}

TEST_HARNESS_MAIN
