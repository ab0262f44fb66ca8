// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: what `fd-handover upgrade` reads from a QEMU monitor.
 * The input is the server's side of a QMP connection, lines ended by '\n'
 * (the last one may lack it), handed to qmp_dispatch_line() one by one as
 * the client's reader would: the greeting, then replies and events.  Four
 * commands (ids 1..4) are waiting before the first line, each with a
 * callback; if the input starts with a space, command 3 is forgotten.
 * Lines with several JSON values are left out (see several_values()).
 *
 * Whatever the lines, the client must not crash, leak or log a GLib
 * critical or warning (a g_return_if_fail() is a bug of ours: those are
 * made fatal), must finish each command at most once and a forgotten one
 * never, hand every callback an error or a result (never neither), an
 * event a name, and fail every command still waiting once it closes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-glib.h"
#include "qmp-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_CMDS 4

struct seen {
	int finished[N_CMDS + 1];	/* by id: how often fn was called */
	int closed;
};

static void on_reply(struct qmp *q, JsonNode *ret, const GError *error,
		     void *opaque)
{
	int *finished = opaque;

	(void)q;
	if (++*finished != 1 || (!ret) == (!error))
		abort();
	if (error && (error->domain != QMP_ERROR || !error->message))
		abort();
	if (ret)	/* borrowed: must still be alive and whole */
		g_free(json_to_string(ret, FALSE));
}

static void on_event(struct qmp *q, const char *name, JsonObject *data,
		     int64_t timestamp_us, void *opaque)
{
	(void)q, (void)timestamp_us, (void)opaque;
	/* The driver compares the name with strcmp(). */
	if (!name)
		abort();
	if (data)
		g_list_free(json_object_get_members(data));
}

static void on_closed(struct qmp *q, const GError *why, void *opaque)
{
	struct seen *s = opaque;

	(void)q;
	if (!why || !why->message || s->closed++)
		abort();
}

/*
 * json-glib 1.6 (Debian 12) parses "{...} {...}" on one line as its last
 * value and leaks the ones before it (corpus-qmp/two-values-on-a-line).
 * QEMU writes one message a line, and the driver would lose a few bytes a
 * line; not ours to fix, and not suppressible (LeakSanitizer's fast
 * unwinder stops at g_malloc), so such lines are not handed over.  Too
 * careful rather than not enough: a container after a first value at the
 * top, or any ' or / outside a string (json-glib's quotes and comments).
 */
static bool several_values(const char *line, size_t len)
{
	bool in_string = false, seen_value = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = line[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '\'': case '/':
			return true;
		case ' ': case '\t': case '\n': case '\r':
			break;
		case '{': case '[':
			if (depth == 0 && seen_value)
				return true;
			depth++;
			break;
		case '}': case ']':
			if (depth > 0 && --depth == 0)
				seen_value = true;
			break;
		case '"':
			in_string = true;
			/* fall through */
		default:
			if (depth == 0)
				seen_value = true;
		}
	}
	return false;
}

static void fuzz_lines(struct qmp *q, const uint8_t *data, size_t size)
{
	size_t at = 0;

	/* As g_data_input_stream_read_line() cuts them: NULs kept, one added. */
	while (at < size && !qmp_is_closed(q)) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
		char *line = g_malloc(len + 1);

		memcpy(line, data + at, len);
		line[len] = '\0';

		if (!several_values(line, len))
			qmp_dispatch_line(q, line, len);
		g_free(line);
		at += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cmds[N_CMDS + 1] = {
		NULL, "qmp_capabilities", "query-status", "query-migrate",
		"x-query-fd-handover",
	};
	GInputStream *in = g_memory_input_stream_new();
	GOutputStream *out = g_memory_output_stream_new_resizable();
	struct seen s = { 0 };
	bool forget = size && data[0] == ' ';
	struct qmp *q;

	g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
	q = qmp_new(g_simple_io_stream_new(in, out), "fuzz", NULL);
	g_object_unref(in);
	g_object_unref(out);
	qmp_set_handlers(q, on_event, on_closed, &s);
	for (int i = 1; i <= N_CMDS; i++)
		if (qmp_send(q, cmds[i], NULL, 0, on_reply, &s.finished[i],
			     NULL) != i)
			abort();
	if (forget)
		qmp_forget(q, 3);

	fuzz_lines(q, data, size);

	if (forget && s.finished[3])
		abort();
	for (int i = 1; i <= N_CMDS && qmp_is_closed(q); i++)
		if (s.finished[i] != !(forget && i == 3))
			abort();
	if (qmp_is_closed(q) != (s.closed == 1))
		abort();
	qmp_free(q);
	return 0;
}
