// SPDX-License-Identifier: LGPL-2.1-or-later
/* Error detail, names of transports, version (kinds: lib/kind.c). */
#include <stdio.h>
#include <string.h>

#include "fdh-internal.h"
#include "fdh-shared.h"

static _Thread_local struct fdh_error last_error = { .entry = -1 };

const struct fdh_error *fdh_last_error(void)
{
	return &last_error;
}

void fdh_clear_error(void)
{
	last_error.code = 0;
	last_error.entry = -1;
	last_error.msg[0] = '\0';
}

int fdh_fail(int code, int entry, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fdh_error_vrecord(&last_error, code, entry, fmt, ap);
	va_end(ap);
	return code;
}

const char *fdh_version(void)
{
	return FDH_VERSION;	/* meson.build's project version */
}

const char *fdh_transport_name(enum fdh_transport transport)
{
	switch (transport) {
	case FDH_TRANSPORT_PIDFD:
		return "pidfd_getfd";
	case FDH_TRANSPORT_SCM_RIGHTS:
		return "scm_rights";
	case FDH_TRANSPORT_NONE:
		break;
	}
	return "none";
}
