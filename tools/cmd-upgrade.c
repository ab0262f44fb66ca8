// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover upgrade: live upgrade of a running QEMU by fd handover.
 *
 * The QMP driving lives in qemu-glue/fdh_upgrade.py (standard-library
 * Python: QMP is JSON, and the driver is the documented reference for
 * managers that drive QMP themselves, Documentation/upgrade.md).  This
 * command finds it and hands over the arguments; the -j/-p global
 * options become its --json/--pretty.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Installed copy first, then the source tree this binary was built from. */
static const char *driver_path(void)
{
	static const char *const candidates[] = {
		FDH_DATADIR "/fdh_upgrade.py",
		FDH_SOURCE_DIR "/qemu-glue/fdh_upgrade.py",
	};
	const char *env = getenv("FDH_UPGRADE_DRIVER");

	if (env)
		return env;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(*candidates); i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

int cmd_upgrade(int argc, char **argv)
{
	const char *driver = driver_path();
	char **args;
	int n = 0;

	if (!driver)
		return cli_fail(-ENOENT,
				"upgrade: the driver fdh_upgrade.py is not installed in %s; set FDH_UPGRADE_DRIVER to its path",
				FDH_DATADIR);
	args = calloc((size_t)argc + 5, sizeof(*args));
	if (!args)
		return cli_fail(-ENOMEM, "upgrade: out of memory");
	args[n++] = "python3";
	args[n++] = (char *)driver;
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	if (cli.json)
		args[n++] = "--json";
	if (cli.pretty)
		args[n++] = "--pretty";
	execvp("python3", args);
	free(args);
	return cli_fail(-errno, "upgrade: cannot run python3 %s: %s", driver,
			strerror(errno));
}
