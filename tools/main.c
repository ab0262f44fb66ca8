// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover: see what a process holds, plan and verify a handover, and
 * start a successor with the fds of a live process.
 *
 * The shape is bpftool's: global options, then a subcommand looked up by
 * name (a unique prefix is enough: "fd-handover man show"), each in its
 * own file with its own options and man page.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fdhandover.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cli_cmd commands[] = {
	{ "ls", cmd_ls, "ls PID [FD...] [--kind KIND[,KIND...]] [--no-pull]" },
	{ "plan", cmd_plan, "plan PID [--no-pull]" },
	{ "manifest", cmd_manifest,
	  "manifest { show FILE|- | verify PID FILE|- | make PID [FD...] [-o FILE] }" },
	{ "take", cmd_take, "take PID FD[=NEWFD][:NAME]... [--] CMD [ARGS...]" },
	{ "upgrade", cmd_upgrade,
	  "upgrade {--qmp SOCKET | --pid PID} --new-qemu PATH [--timeout S] [--dry-run] [--keep-source]" },
	{ "trace", cmd_trace,
	  "trace [--pid P...] [--tap IFNAME] [--perfetto FILE] [-- CMD...]" },
	{ "version", cmd_version, "version" },
	{ "help", cmd_help, "help [COMMAND]" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char usage_head[] =
	"Usage: fd-handover [OPTIONS] COMMAND [ARGS...]\n"
	"\n"
	"Inspect the file descriptors of a live process, plan and verify a\n"
	"handover, and start a successor with them.\n"
	"\n"
	"Commands:\n";

static const char usage_tail[] =
	"\n"
	"Options (anywhere before a command's CMD or --):\n"
	"  -j, --json     output and errors as JSON (Documentation/cli-json.md)\n"
	"  -p, --pretty   indented JSON (implies --json)\n"
	"  -h, --help     this help, or a command's with `help COMMAND`\n"
	"  -V, --version  print the version\n"
	"\n"
	"Exit codes: 0 ok, 1 failure, 2 usage, 3 no such process,\n"
	"4 permission, 5 manifest mismatch, 126/127 take: CMD not runnable/found.\n"
	"See fd-handover(1) and fd-handover-COMMAND(1).\n";

static void print_usage(void)
{
	fputs(usage_head, stdout);
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %s\n", commands[i].synopsis);
	fputs(usage_tail, stdout);
}

/* Exact name, else a unique prefix, else NULL (ambiguous or unknown). */
static const struct cli_cmd *find_command(const char *name)
{
	bool ambiguous;

	return cli_find_cmd(commands, N_COMMANDS, name, &ambiguous);
}

static int run_command(const struct cli_cmd *c, int argc, char **argv)
{
	/* Each command parses its own options from a fresh getopt state. */
	optind = 0;
	return c->run(argc, argv);
}

static int cmd_version(int argc, char **argv)
{
	if (cli.json) {
		json_begin_object(NULL);
		json_string("version", fdh_version());
		json_u64("manifest_version", FDH_MANIFEST_VERSION);
		/* Always true since the tracer is always built; kept in
		 * the format (Documentation/cli-json.md) for its readers. */
		json_bool("trace", true);
		json_end();
	} else {
		printf("fd-handover %s (libfdhandover %s, manifest version %d, trace)\n",
		       FDH_CLI_VERSION, fdh_version(), FDH_MANIFEST_VERSION);
	}
	return CLI_EXIT_OK;
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_cmd *c;
	char *help_argv[] = { NULL, (char *)"--help", NULL };

	if (argc < 2) {
		print_usage();
		return CLI_EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c)
		return cli_usage("help: no command '%s'", argv[1]);
	help_argv[0] = (char *)c->name;
	return run_command(c, 2, help_argv);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const struct cli_cmd *c;
	int opt;

	/* Errors are ours to print: as JSON under -j. */
	opterr = 0;
	/* "+": stop at the command name; its options are its own. */
	while ((opt = getopt_long(argc, argv, "+" CLI_COMMON_SHORTOPTS "V",
				  opts, NULL)) != -1) {
		if (cli_common_opt(opt))
			continue;
		switch (opt) {
		case 'h':
			print_usage();
			return CLI_EXIT_OK;
		case 'V':
			return cmd_version(0, NULL);
		default:
			return cli_bad_option(opt, argv);
		}
	}
	if (optind >= argc) {
		print_usage();
		return CLI_EXIT_USAGE;
	}
	c = find_command(argv[optind]);
	if (!c)
		return cli_usage("no command '%s' (commands: ls, plan, manifest, take, upgrade, trace, version, help)",
				 argv[optind]);
	return run_command(c, argc - optind, argv + optind);
}
