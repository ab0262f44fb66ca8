/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to the tracer: turn collected events into the report's tables. */
#ifndef FDH_BPF_HANDOVER_ANALYZE_H
#define FDH_BPF_HANDOVER_ANALYZE_H

#include "handover-trace.h"

/*
 * r has events, packets, probe names, and what the maps summed up (wire,
 * sched, tb); fill in processes, threads, phases, pulls, syscalls, and the
 * exact wire gaps.  Sorts events and packets by time.  0 or -ENOMEM.
 */
int ht_analyze(struct ht_report *r);

#endif /* FDH_BPF_HANDOVER_ANALYZE_H */
