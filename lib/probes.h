/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * USDT probes, provider "fdhandover".  The tracer (bpf/) attaches to
 * these; they cost a nop when nobody listens.  Documented with their
 * arguments in Documentation/tracing.md.
 */
#ifndef FDH_PROBES_H
#define FDH_PROBES_H

#include <sys/sdt.h>

#define FDH_PROBE0(name) DTRACE_PROBE(fdhandover, name)
#define FDH_PROBE1(name, a) DTRACE_PROBE1(fdhandover, name, a)
#define FDH_PROBE2(name, a, b) DTRACE_PROBE2(fdhandover, name, a, b)
#define FDH_PROBE3(name, a, b, c) DTRACE_PROBE3(fdhandover, name, a, b, c)
#define FDH_PROBE4(name, a, b, c, d) DTRACE_PROBE4(fdhandover, name, a, b, c, d)

#endif /* FDH_PROBES_H */
