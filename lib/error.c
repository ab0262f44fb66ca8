// SPDX-License-Identifier: LGPL-2.1-or-later
/* Error detail, names of kinds and transports, version. */
#include <stdio.h>
#include <string.h>

#include "fdh-internal.h"

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

	last_error.code = code;
	last_error.entry = entry;
	va_start(ap, fmt);
	vsnprintf(last_error.msg, sizeof(last_error.msg), fmt, ap);
	va_end(ap);
	return code;
}

const char *fdh_version(void)
{
	return FDH_VERSION;	/* meson.build's project version */
}

/* Indexed by enum fdh_kind; the names are part of the JSON and text formats. */
static const char *const kind_names[FDH_KIND__MAX] = {
	"other", "memfd", "tap", "eventfd", "vhost-net", "vhost-user", "unix",
	"pidfd", "epoll", "pipe", "file", "socket",
};
_Static_assert(FDH_KIND_SOCKET == 11 && FDH_KIND__MAX == 12,
	       "kind_names must follow enum fdh_kind");

const char *fdh_kind_name(enum fdh_kind kind)
{
	if ((unsigned int)kind >= FDH_KIND__MAX)
		return NULL;
	return kind_names[kind];
}

int fdh_kind_from_name(const char *name)
{
	for (int k = 0; k < FDH_KIND__MAX; k++)
		if (name && strcmp(name, kind_names[k]) == 0)
			return k;
	return fdh_fail(-EINVAL, -1, "no fd kind named '%s'",
			name ? name : "(null)");
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
