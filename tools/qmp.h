/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A QMP client (QEMU Machine Protocol over a unix socket) on GLib's main
 * loop: one connection, commands with ids and per-command timeouts,
 * asynchronous events delivered to a callback as they arrive, errors that
 * carry QMP's class and description.  JSON goes through json-glib.
 *
 * Everything runs on the thread-default GMainContext current at
 * qmp_connect().  The synchronous calls (qmp_connect, qmp_execute) iterate
 * that context while they wait, so events, child watches and signal
 * sources keep being dispatched meanwhile; callbacks must therefore not
 * free the connection they are called for.
 */
#ifndef FDH_QMP_H
#define FDH_QMP_H

#include <stdbool.h>
#include <stdint.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#define QMP_ERROR (qmp_error_quark())
GQuark qmp_error_quark(void);

/*
 * GError codes in the QMP_ERROR domain.  A command's error reply maps its
 * "class" to the first five (message: its "desc"); the others are the
 * client's own.
 */
enum qmp_error_code {
	QMP_ERROR_GENERIC,		/* "GenericError", or a class unknown here */
	QMP_ERROR_COMMAND_NOT_FOUND,	/* "CommandNotFound" */
	QMP_ERROR_DEVICE_NOT_ACTIVE,	/* "DeviceNotActive" */
	QMP_ERROR_DEVICE_NOT_FOUND,	/* "DeviceNotFound" */
	QMP_ERROR_KVM_MISSING_CAP,	/* "KVMMissingCap" */
	QMP_ERROR_TIMEOUT,		/* no reply in time: the server hangs */
	QMP_ERROR_CLOSED,		/* the server closed the connection */
	QMP_ERROR_PROTOCOL,		/* not QMP: no greeting, bad JSON */
	QMP_ERROR_ABORTED,		/* the caller's abort cancellable fired */
};

/* The QMP class of a command's error ("GenericError"), else NULL. */
const char *qmp_error_class(const GError *error);

struct qmp;

/*
 * An event: name ("STOP"), its "data" object (NULL when it has none) and
 * QEMU's timestamp in microseconds since the epoch (0 if absent).
 */
typedef void (*qmp_event_fn)(struct qmp *q, const char *name,
			     JsonObject *data, int64_t timestamp_us,
			     void *opaque);
/* The connection ended: the server closed it or reading failed. */
typedef void (*qmp_closed_fn)(struct qmp *q, const GError *why, void *opaque);
/* A command's reply: ret is its "return" (borrowed), or error is set. */
typedef void (*qmp_reply_fn)(struct qmp *q, JsonNode *ret,
			     const GError *error, void *opaque);

/*
 * Connect to the QMP socket path, read the greeting and negotiate
 * (qmp_capabilities), each within timeout_ms.  name ("source") prefixes
 * error messages.  abort, if not NULL, ends every synchronous wait of this
 * connection with QMP_ERROR_ABORTED once cancelled (see qmp_set_abort).
 * NULL with *error set on failure; G_IO_ERROR_NOT_FOUND or
 * G_IO_ERROR_CONNECTION_REFUSED when nobody listens (yet).
 */
struct qmp *qmp_connect(const char *path, const char *name, int timeout_ms,
			GCancellable *abort, GError **error);
/* Close (pending commands fail with QMP_ERROR_CLOSED, unreported) and free. */
void qmp_free(struct qmp *q);

void qmp_set_handlers(struct qmp *q, qmp_event_fn on_event,
		      qmp_closed_fn on_closed, void *opaque);
/* Replace the abort cancellable (NULL: synchronous waits run to the end). */
void qmp_set_abort(struct qmp *q, GCancellable *abort);
/* The greeting's "QMP" object (version, capabilities); owned by q. */
JsonObject *qmp_greeting(struct qmp *q);
bool qmp_is_closed(const struct qmp *q);
const char *qmp_name(const struct qmp *q);

/*
 * Send a command; args (an object, borrowed) may be NULL.  fn is called
 * once, from the main context, with the reply, an error reply, or
 * QMP_ERROR_TIMEOUT after timeout_ms (<= 0: none) / QMP_ERROR_CLOSED.
 * Returns the command's id (> 0), or 0 with *error set when it could not
 * be sent (fn is then not called).
 */
int64_t qmp_send(struct qmp *q, const char *cmd, JsonNode *args,
		 int timeout_ms, qmp_reply_fn fn, void *opaque, GError **error);
/* Forget a sent command: its fn will not be called. */
void qmp_forget(struct qmp *q, int64_t id);

/*
 * Send a command and iterate the main context until its reply.  On
 * success *ret_reply (if not NULL) holds the "return" value (unref it).
 * On failure *error is set (QMP_ERROR domain; the message names the
 * connection and the command) and false is returned.
 */
bool qmp_execute(struct qmp *q, const char *cmd, JsonNode *args,
		 JsonNode **ret_reply, int timeout_ms, GError **error);

/*
 * Arguments built from pairs of key and value, ended by NULL:
 * qmp_args("uri", QMP_STR, path, "announce-rounds", QMP_INT, 0, NULL).
 * QMP_STR takes a const char *, QMP_INT and QMP_BOOL an int, QMP_NODE a
 * JsonNode * (consumed).
 */
enum qmp_arg_type { QMP_STR, QMP_INT, QMP_BOOL, QMP_NODE };
JsonNode *qmp_args(const char *key, ...) G_GNUC_NULL_TERMINATED;

#endif /* FDH_QMP_H */
