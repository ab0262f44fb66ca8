/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What qmp_connect() and its reader are made of, for tools/qmp.c and its
 * tests only: tests/fuzz/fuzz-qmp.c hands it server lines without a socket.
 */
#ifndef FDH_QMP_INTERNAL_H
#define FDH_QMP_INTERNAL_H

#include <stddef.h>

#include "qmp.h"

/*
 * A connection over conn (consumed; closed and unreferenced by qmp_free)
 * that reads nothing yet and has no greeting: qmp_connect() starts its
 * reads and waits for the greeting.
 */
struct qmp *qmp_new(GIOStream *conn, const char *name, GCancellable *abort);

/*
 * One line the server sent, without its '\n' (len bytes; line[len] is
 * '\0'): first the greeting, then replies (finishing their command) and
 * events (handed to on_event).  A line that is not a QMP message closes
 * the connection (on_closed, pending commands fail); an empty one is
 * ignored.
 */
void qmp_dispatch_line(struct qmp *q, const char *line, size_t len);

#endif /* FDH_QMP_INTERNAL_H */
