// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * QMP client on GLib's main loop: one asynchronous line read is always
 * outstanding, and each line is a reply (matched to its command by id),
 * an event (handed to the callback at once) or, first, the greeting.
 * See tools/qmp.h.
 */
#include "qmp.h"
#include "qmp-internal.h"

#include <stdarg.h>
#include <string.h>

#include <gio/gunixsocketaddress.h>

G_DEFINE_QUARK(fdh-qmp-error-quark, qmp_error)

/* QEMU's QapiErrorClass, in enum qmp_error_code order. */
static const char *const error_classes[] = {
	[QMP_ERROR_GENERIC] = "GenericError",
	[QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
	[QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
	[QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
	[QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

struct pending {
	struct qmp *q;
	int64_t id;
	char *cmd;
	GSource *timeout;
	int timeout_ms;
	qmp_reply_fn fn;
	void *opaque;
};

struct qmp {
	char *name;
	GMainContext *ctx;
	GIOStream *conn;
	GDataInputStream *in;
	GOutputStream *out;
	GCancellable *reads;		/* cancelled by qmp_free */
	GCancellable *abort;		/* the caller's; ends synchronous waits */
	bool reading;			/* a read_line_async is outstanding */
	bool closed;
	JsonObject *greeting;
	int64_t next_id;
	GHashTable *pending;		/* id -> struct pending */
	qmp_event_fn on_event;
	qmp_closed_fn on_closed;
	void *opaque;
};

const char *qmp_error_class(const GError *error)
{
	if (!error || error->domain != QMP_ERROR ||
	    error->code < 0 || error->code > QMP_ERROR_KVM_MISSING_CAP)
		return NULL;
	return error_classes[error->code];
}

static void pending_free(struct pending *p)
{
	if (p->timeout) {
		g_source_destroy(p->timeout);
		g_source_unref(p->timeout);
	}
	g_free(p->cmd);
	g_free(p);
}

/* Remove p from the table and call its fn once. */
static void pending_finish(struct pending *p, JsonNode *ret,
			   const GError *error)
{
	struct qmp *q = p->q;

	g_hash_table_steal(q->pending, &p->id);
	if (p->fn)
		p->fn(q, ret, error, p->opaque);
	pending_free(p);
}

/* The connection is over: every command waiting fails, once. */
static void mark_closed(struct qmp *q, const GError *why)
{
	GList *waiting;

	if (q->closed)
		return;
	q->closed = true;
	waiting = g_hash_table_get_values(q->pending);
	for (GList *l = waiting; l; l = l->next) {
		struct pending *p = l->data;
		g_autoptr(GError) e = g_error_new(QMP_ERROR, QMP_ERROR_CLOSED,
						  "%s: %s: %s", q->name, p->cmd,
						  why->message);
		pending_finish(p, NULL, e);
	}
	g_list_free(waiting);
	if (q->on_closed)
		q->on_closed(q, why, q->opaque);
}

/*
 * Member key of o if it holds a string, else "".  json-glib's
 * json_object_get_string_member_with_default() returns NULL for a member
 * that holds a number and logs a critical for an object or an array.
 */
static const char *string_member(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);
	const char *s = n && JSON_NODE_HOLDS_VALUE(n) ?
		json_node_get_string(n) : NULL;

	return s ? s : "";
}

/* Likewise an integer member, else 0 (QEMU's numbers here are integers). */
static int64_t int_member(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);

	return n && JSON_NODE_HOLDS_VALUE(n) &&
	       json_node_get_value_type(n) == G_TYPE_INT64 ?
	       json_node_get_int(n) : 0;
}

static void handle_reply(struct qmp *q, JsonObject *msg)
{
	JsonNode *idn = json_object_get_member(msg, "id");
	struct pending *p;
	int64_t id;

	/* Ours are integers; anything else is not a reply of ours. */
	if (!idn || !JSON_NODE_HOLDS_VALUE(idn) ||
	    json_node_get_value_type(idn) != G_TYPE_INT64)
		return;
	id = json_node_get_int(idn);
	p = g_hash_table_lookup(q->pending, &id);
	if (!p)
		return;		/* timed out or forgotten: nobody waits */
	if (json_object_has_member(msg, "error")) {
		JsonNode *en = json_object_get_member(msg, "error");
		JsonObject *eo = JSON_NODE_HOLDS_OBJECT(en) ?
			json_node_get_object(en) : NULL;
		const char *cls = eo ? string_member(eo, "class") : "";
		const char *desc = eo ? string_member(eo, "desc") : "";
		int code = QMP_ERROR_GENERIC;
		g_autoptr(GError) e = NULL;

		for (int i = 0; i <= QMP_ERROR_KVM_MISSING_CAP; i++)
			if (strcmp(cls, error_classes[i]) == 0)
				code = i;
		if (code == QMP_ERROR_GENERIC && strcmp(cls, "GenericError"))
			e = g_error_new(QMP_ERROR, code, "%s (class %s)", desc,
					cls);
		else
			e = g_error_new_literal(QMP_ERROR, code, desc);
		pending_finish(p, NULL, e);
		return;
	}
	if (!json_object_has_member(msg, "return")) {
		g_autoptr(GError) e = g_error_new(
			QMP_ERROR, QMP_ERROR_PROTOCOL,
			"%s: %s: a reply with neither \"return\" nor \"error\"",
			q->name, p->cmd);

		pending_finish(p, NULL, e);
		return;
	}
	pending_finish(p, json_object_get_member(msg, "return"), NULL);
}

static void handle_event(struct qmp *q, JsonObject *msg)
{
	JsonNode *data = json_object_get_member(msg, "data");
	JsonNode *tsn = json_object_get_member(msg, "timestamp");
	int64_t ts = 0;

	if (tsn && JSON_NODE_HOLDS_OBJECT(tsn)) {
		JsonObject *t = json_node_get_object(tsn);

		/* One that does not fit is as good as none. */
		if (__builtin_mul_overflow(int_member(t, "seconds"),
					   G_USEC_PER_SEC, &ts) ||
		    __builtin_add_overflow(ts, int_member(t, "microseconds"),
					   &ts))
			ts = 0;
	}
	if (q->on_event)
		q->on_event(q, string_member(msg, "event"),
			    data && JSON_NODE_HOLDS_OBJECT(data) ?
			    json_node_get_object(data) : NULL,
			    ts, q->opaque);
}

void qmp_dispatch_line(struct qmp *q, const char *line, size_t len)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) err = NULL;
	JsonNode *root;
	JsonObject *msg;

	if (len == 0)
		return;
	if (!json_parser_load_from_data(parser, line, (gssize)len, &err) ||
	    !(root = json_parser_get_root(parser)) ||
	    !JSON_NODE_HOLDS_OBJECT(root)) {
		g_autoptr(GError) e = g_error_new(QMP_ERROR, QMP_ERROR_PROTOCOL,
						  "not a QMP message: %.80s",
						  line);
		mark_closed(q, e);
		return;
	}
	msg = json_node_get_object(root);
	if (!q->greeting) {
		JsonNode *g = json_object_get_member(msg, "QMP");

		if (!g || !JSON_NODE_HOLDS_OBJECT(g)) {
			g_autoptr(GError) e = g_error_new(
				QMP_ERROR, QMP_ERROR_PROTOCOL,
				"no QMP greeting: %.80s", line);
			mark_closed(q, e);
			return;
		}
		q->greeting = json_object_ref(json_node_get_object(g));
		return;
	}
	if (json_object_has_member(msg, "event"))
		handle_event(q, msg);
	else
		handle_reply(q, msg);
}

static void read_next(struct qmp *q);

static void on_line(GObject *src, GAsyncResult *res, gpointer data)
{
	struct qmp *q = data;
	g_autoptr(GError) err = NULL;
	gsize len = 0;
	char *line;

	q->reading = false;
	line = g_data_input_stream_read_line_finish(q->in, res, &len, &err);
	if (!line) {
		if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			return;		/* qmp_free is waiting for this */
		if (!err)
			err = g_error_new_literal(QMP_ERROR, QMP_ERROR_CLOSED,
						  "connection closed by QEMU");
		else
			g_prefix_error(&err, "reading: ");
		mark_closed(q, err);
		return;
	}
	qmp_dispatch_line(q, line, len);
	g_free(line);
	read_next(q);
}

static void read_next(struct qmp *q)
{
	if (q->closed || q->reading)
		return;
	q->reading = true;
	g_data_input_stream_read_line_async(q->in, G_PRIORITY_DEFAULT,
					    q->reads, on_line, q);
}

static gboolean on_timeout(gpointer data)
{
	struct pending *p = data;
	g_autoptr(GError) e = g_error_new(QMP_ERROR, QMP_ERROR_TIMEOUT,
					  "%s: %s: no reply within %d ms",
					  p->q->name, p->cmd, p->timeout_ms);

	/* The source is finished once we return: not ours to destroy. */
	g_source_unref(p->timeout);
	p->timeout = NULL;
	pending_finish(p, NULL, e);
	return G_SOURCE_REMOVE;
}

static bool aborted(const struct qmp *q)
{
	return q->abort && g_cancellable_is_cancelled(q->abort);
}

int64_t qmp_send(struct qmp *q, const char *cmd, JsonNode *args,
		 int timeout_ms, qmp_reply_fn fn, void *opaque, GError **error)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) msg = NULL;
	g_autofree char *text = NULL;
	struct pending *p;
	GString *line;
	bool ok;

	if (q->closed) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_CLOSED,
			    "%s: %s: the connection is closed", q->name, cmd);
		return 0;
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "execute");
	json_builder_add_string_value(b, cmd);
	if (args) {
		json_builder_set_member_name(b, "arguments");
		json_builder_add_value(b, json_node_copy(args));
	}
	json_builder_set_member_name(b, "id");
	json_builder_add_int_value(b, ++q->next_id);
	json_builder_end_object(b);
	msg = json_builder_get_root(b);
	text = json_to_string(msg, FALSE);
	line = g_string_new(text);
	g_string_append_c(line, '\n');
	/* A few hundred bytes into a unix socket: this does not block. */
	ok = g_output_stream_write_all(q->out, line->str, line->len, NULL,
				       NULL, error);
	g_string_free(line, TRUE);
	if (!ok) {
		g_prefix_error(error, "%s: %s: ", q->name, cmd);
		return 0;
	}
	p = g_new0(struct pending, 1);
	p->q = q;
	p->id = q->next_id;
	p->cmd = g_strdup(cmd);
	p->fn = fn;
	p->opaque = opaque;
	p->timeout_ms = timeout_ms;
	if (timeout_ms > 0) {
		p->timeout = g_timeout_source_new((guint)timeout_ms);
		g_source_set_callback(p->timeout, on_timeout, p, NULL);
		g_source_attach(p->timeout, q->ctx);
	}
	g_hash_table_insert(q->pending, &p->id, p);
	return p->id;
}

void qmp_forget(struct qmp *q, int64_t id)
{
	struct pending *p = g_hash_table_lookup(q->pending, &id);

	if (p) {
		g_hash_table_steal(q->pending, &id);
		pending_free(p);
	}
}

struct sync_wait {
	bool done;
	JsonNode *ret;
	GError *error;
};

static void sync_done(struct qmp *q, JsonNode *ret, const GError *error,
		      void *opaque)
{
	struct sync_wait *w = opaque;

	w->done = true;
	if (error)
		w->error = g_error_copy(error);
	else
		w->ret = ret ? json_node_copy(ret) : json_node_new(JSON_NODE_NULL);
}

bool qmp_execute(struct qmp *q, const char *cmd, JsonNode *args,
		 JsonNode **ret_reply, int timeout_ms, GError **error)
{
	struct sync_wait w = { 0 };
	int64_t id;

	id = qmp_send(q, cmd, args, timeout_ms, sync_done, &w, error);
	if (!id)
		return false;
	while (!w.done && !aborted(q))
		g_main_context_iteration(q->ctx, TRUE);
	if (!w.done) {
		qmp_forget(q, id);
		g_set_error(error, QMP_ERROR, QMP_ERROR_ABORTED,
			    "%s: %s: interrupted", q->name, cmd);
		return false;
	}
	if (w.error) {
		/* The reply's error names neither side nor command. */
		if (w.error->domain == QMP_ERROR &&
		    w.error->code <= QMP_ERROR_KVM_MISSING_CAP)
			g_prefix_error(&w.error, "%s: %s: ", q->name, cmd);
		g_propagate_error(error, w.error);
		return false;
	}
	if (ret_reply)
		*ret_reply = w.ret;
	else
		json_node_unref(w.ret);
	return true;
}

static gboolean set_flag(gpointer data)
{
	*(bool *)data = true;
	return G_SOURCE_REMOVE;
}

struct qmp *qmp_new(GIOStream *conn, const char *name, GCancellable *abort)
{
	struct qmp *q = g_new0(struct qmp, 1);

	q->name = g_strdup(name);
	q->ctx = g_main_context_ref_thread_default();
	q->conn = conn;
	q->in = g_data_input_stream_new(g_io_stream_get_input_stream(conn));
	g_data_input_stream_set_newline_type(q->in,
					     G_DATA_STREAM_NEWLINE_TYPE_LF);
	q->out = g_io_stream_get_output_stream(conn);
	q->reads = g_cancellable_new();
	q->abort = abort ? g_object_ref(abort) : NULL;
	q->pending = g_hash_table_new(g_int64_hash, g_int64_equal);
	return q;
}

struct qmp *qmp_connect(const char *path, const char *name, int timeout_ms,
			GCancellable *abort, GError **error)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
	GSocketConnection *conn;
	GSource *timer;
	bool expired = false;
	struct qmp *q;

	conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr),
				       abort, error);
	if (!conn) {
		g_prefix_error(error, "%s: connect to %s: ", name, path);
		return NULL;
	}
	q = qmp_new(G_IO_STREAM(conn), name, abort);
	read_next(q);

	timer = g_timeout_source_new((guint)MAX(timeout_ms, 1));
	g_source_set_callback(timer, set_flag, &expired, NULL);
	g_source_attach(timer, q->ctx);
	while (!q->greeting && !q->closed && !expired && !aborted(q))
		g_main_context_iteration(q->ctx, TRUE);
	g_source_destroy(timer);
	g_source_unref(timer);
	if (!q->greeting) {
		if (q->closed)
			g_set_error(error, QMP_ERROR, QMP_ERROR_CLOSED,
				    "%s: %s closed before its QMP greeting",
				    name, path);
		else if (expired)
			g_set_error(error, QMP_ERROR, QMP_ERROR_TIMEOUT,
				    "%s: no QMP greeting on %s within %d ms",
				    name, path, timeout_ms);
		else
			g_set_error(error, QMP_ERROR, QMP_ERROR_ABORTED,
				    "%s: interrupted waiting for the greeting",
				    name);
		qmp_free(q);
		return NULL;
	}
	if (!qmp_execute(q, "qmp_capabilities", NULL, NULL, timeout_ms,
			 error)) {
		qmp_free(q);
		return NULL;
	}
	return q;
}

void qmp_free(struct qmp *q)
{
	GList *waiting;

	if (!q)
		return;
	/* The outstanding read still points at q: let it finish first. */
	g_cancellable_cancel(q->reads);
	while (q->reading)
		g_main_context_iteration(q->ctx, TRUE);
	waiting = g_hash_table_get_values(q->pending);
	for (GList *l = waiting; l; l = l->next)
		pending_free(l->data);
	g_list_free(waiting);
	g_hash_table_destroy(q->pending);
	g_io_stream_close(q->conn, NULL, NULL);
	g_object_unref(q->in);
	g_object_unref(q->conn);
	g_object_unref(q->reads);
	if (q->abort)
		g_object_unref(q->abort);
	if (q->greeting)
		json_object_unref(q->greeting);
	g_main_context_unref(q->ctx);
	g_free(q->name);
	g_free(q);
}

void qmp_set_handlers(struct qmp *q, qmp_event_fn on_event,
		      qmp_closed_fn on_closed, void *opaque)
{
	q->on_event = on_event;
	q->on_closed = on_closed;
	q->opaque = opaque;
}

void qmp_set_abort(struct qmp *q, GCancellable *abort)
{
	if (abort)
		g_object_ref(abort);
	if (q->abort)
		g_object_unref(q->abort);
	q->abort = abort;
}

JsonObject *qmp_greeting(struct qmp *q)
{
	return q->greeting;
}

bool qmp_is_closed(const struct qmp *q)
{
	return q->closed;
}

const char *qmp_name(const struct qmp *q)
{
	return q->name;
}

JsonNode *qmp_args(const char *key, ...)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	va_list ap;

	json_builder_begin_object(b);
	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *)) {
		json_builder_set_member_name(b, key);
		switch (va_arg(ap, enum qmp_arg_type)) {
		case QMP_STR:
			json_builder_add_string_value(b, va_arg(ap, const char *));
			break;
		case QMP_INT:
			json_builder_add_int_value(b, va_arg(ap, int));
			break;
		case QMP_BOOL:
			json_builder_add_boolean_value(b, va_arg(ap, int));
			break;
		case QMP_NODE:
			json_builder_add_value(b, va_arg(ap, JsonNode *));
			break;
		}
	}
	va_end(ap);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}
