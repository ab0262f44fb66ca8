/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * List the USDT probes an ELF file carries (.note.stapsdt), so that the
 * tracer attaches only what exists: libbpf can attach a named probe but
 * cannot list them.
 */
#ifndef FDH_BPF_STAPSDT_H
#define FDH_BPF_STAPSDT_H

#include <stddef.h>

struct stapsdt_probe {
	char provider[64];
	char name[128];
	unsigned int sites;		/* call sites of this probe */
	unsigned int has_semaphore;	/* an "is enabled" counter (QEMU's dtrace) */
};

/*
 * Every distinct provider:name in path, in note order.  *ret_probes is
 * malloc'd (free() it); a file without notes gives 0 probes.  Errors:
 * -ENOENT/-EACCES (open), -ENOEXEC (not ELF), -ENOMEM.
 */
int stapsdt_list(const char *path, struct stapsdt_probe **ret_probes,
		 size_t *ret_n);

#endif /* FDH_BPF_STAPSDT_H */
