// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Renderings of a manifest: an aligned table for people and JSON for
 * tools (schema in Documentation/manifest.md).  Both validate first, so
 * every string is known to be terminated and every kind to have a name.
 *
 * Strings in a manifest come from the source process (comm, memfd names,
 * owners) and may hold any byte but NUL: both renderings escape them, so
 * printing a manifest can neither break its layout nor send terminal
 * escapes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <glib.h>

#include "fdh-internal.h"

/* Hand the text to the caller in malloc() memory, as the API promises. */
static int finish(GString *s, char **ret)
{
	char *out = strdup(s->str);

	g_string_free(s, TRUE);
	if (!out)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	*ret = out;
	return 0;
}

static int check_args(const struct fdh_manifest *m, char **ret)
{
	if (!m || !ret)
		return fdh_fail(-EINVAL, -1, "render: NULL argument");
	return fdh_manifest_validate(m);
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

/* "name" with quotes, backslashes and non-printable bytes as \xHH. */
static void text_quote(GString *s, const char *str)
{
	g_string_append_c(s, '"');
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(s, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			g_string_append_printf(s, "\\x%02x", *p);
		else
			g_string_append_c(s, (char)*p);
	}
	g_string_append_c(s, '"');
}

/* A table of cells, printed with every column as wide as its widest. */
struct table {
	size_t n_cols;
	GPtrArray *cells;	/* row-major, n_cols per row */
};

static void table_init(struct table *t, size_t n_cols)
{
	t->n_cols = n_cols;
	t->cells = g_ptr_array_new_with_free_func(g_free);
}

static void table_add(struct table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void table_add(struct table *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(t->cells, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

/* Cells are ASCII (strings are escaped), so bytes are columns. */
static void table_print(struct table *t, GString *s, const char *indent)
{
	size_t width[16] = { 0 };
	size_t n = t->cells->len;

	g_assert(t->n_cols <= G_N_ELEMENTS(width));
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(g_ptr_array_index(t->cells, i));

		if (len > width[i % t->n_cols])
			width[i % t->n_cols] = len;
	}
	for (size_t i = 0; i < n; i++) {
		const char *cell = g_ptr_array_index(t->cells, i);
		size_t col = i % t->n_cols;

		if (col == 0)
			g_string_append(s, indent);
		if (col + 1 == t->n_cols) {
			g_string_append_printf(s, "%s\n", cell);
			continue;
		}
		g_string_append_printf(s, "%-*s  ", (int)width[col], cell);
	}
	g_ptr_array_free(t->cells, TRUE);
}

static void text_details(GString *s, const struct fdh_manifest_entry *e)
{
	switch (e->kind) {
	case FDH_KIND_TAP:
		g_string_append(s, "ifname ");
		text_quote(s, e->u.tap.ifname);
		g_string_append_printf(s,
				       " queue %" PRIu32 " iff_flags 0x%" PRIx32
				       " vnet_hdr_sz %" PRId32 " offloads 0x%" PRIx32,
				       e->u.tap.queue, e->u.tap.iff_flags,
				       e->u.tap.vnet_hdr_sz, e->u.tap.offloads);
		break;
	case FDH_KIND_MEMFD:
		g_string_append(s, "name ");
		text_quote(s, e->u.memfd.name);
		g_string_append_printf(s, " size %" PRIu64 " seals 0x%" PRIx32,
				       e->u.memfd.size, e->u.memfd.seals);
		break;
	case FDH_KIND_EVENTFD:
		g_string_append_printf(s, "semaphore %s",
				       e->u.eventfd.semaphore ? "yes" : "no");
		break;
	case FDH_KIND_VHOST_USER:
		g_string_append_printf(s,
				       "inflight_size %" PRIu64 " inflight_offset %" PRIu64
				       " inflight_queue_size %u inflight_num_queues %u"
				       " protocol_features 0x%" PRIx64,
				       e->u.vhost_user.inflight_size,
				       e->u.vhost_user.inflight_offset,
				       e->u.vhost_user.inflight_queue_size,
				       e->u.vhost_user.inflight_num_queues,
				       e->u.vhost_user.protocol_features);
		break;
	default:
		g_string_append_c(s, '-');
		break;
	}
}

static void text_entries(GString *s, const struct fdh_manifest *m)
{
	struct table t;

	g_string_append_printf(s, "entries: %zu\n", m->n_entries);
	if (!m->n_entries)
		return;
	table_init(&t, 11);
	for (const char *const *h = (const char *const[]){ "#", "OWNER",
		"INDEX", "KIND", "FD", "DEV", "INO", "MODE", "FLAGS",
		"KIND_ID", "DETAILS", NULL }; *h; h++)
		table_add(&t, "%s", *h);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct fdh_manifest_entry *e = &m->entries[i];
		GString *cell = g_string_new(NULL);

		table_add(&t, "%zu", i);
		text_quote(cell, e->owner);
		table_add(&t, "%s", cell->str);
		table_add(&t, "%" PRIu32, e->index);
		table_add(&t, "%s", fdh_kind_name(e->kind));
		table_add(&t, "%" PRId32, e->remote_fd);
		table_add(&t, "%u:%u", major(e->dev), minor(e->dev));
		table_add(&t, "%" PRIu64, e->ino);
		table_add(&t, "0%" PRIo32, e->mode);
		table_add(&t, "0%" PRIo32, e->open_flags);
		table_add(&t, "%" PRIu64, e->kind_id);
		g_string_truncate(cell, 0);
		text_details(cell, e);
		table_add(&t, "%s", cell->str);
		g_string_free(cell, TRUE);
	}
	table_print(&t, s, "  ");
}

static void text_device(GString *s, const struct fdh_manifest_device *d)
{
	struct table t;

	g_string_append(s, "  ");
	text_quote(s, d->owner);
	g_string_append_printf(s, "  acked_features 0x%" PRIx64 "  vrings %" PRIu32 "\n",
			       d->acked_features, d->n_vrings);
	if (!d->n_vrings)
		return;
	table_init(&t, 7);
	for (const char *const *h = (const char *const[]){ "INDEX", "SIZE",
		"DESC", "AVAIL", "USED", "LAST_AVAIL_IDX", "USED_IDX", NULL };
	     *h; h++)
		table_add(&t, "%s", *h);
	for (uint32_t i = 0; i < d->n_vrings; i++) {
		const struct fdh_vring *v = &d->vrings[i];

		table_add(&t, "%" PRIu32, v->index);
		table_add(&t, "%" PRIu32, v->size);
		table_add(&t, "0x%" PRIx64, v->desc);
		table_add(&t, "0x%" PRIx64, v->avail);
		table_add(&t, "0x%" PRIx64, v->used);
		table_add(&t, "%u", v->last_avail_idx);
		table_add(&t, "%u", v->used_idx);
	}
	table_print(&t, s, "    ");
}

int fdh_manifest_to_text(const struct fdh_manifest *m, char **ret)
{
	const struct fdh_manifest_source *src;
	GString *s;
	int r;

	r = check_args(m, ret);
	if (r < 0)
		return r;
	src = &m->source;
	s = g_string_new(NULL);
	g_string_append_printf(s, "manifest version %" PRIu32 "\n", m->version);
	g_string_append_printf(s, "source: pid %" PRId32 "  comm ", src->pid);
	text_quote(s, src->comm);
	g_string_append_printf(s, "  uid %" PRIu32 "  start_time %" PRIu64
			       "  boot_id %s\n", src->uid, src->start_time,
			       src->boot_id);
	text_entries(s, m);
	g_string_append_printf(s, "devices: %zu\n", m->n_devices);
	for (size_t i = 0; i < m->n_devices; i++)
		text_device(s, &m->devices[i]);
	return finish(s, ret);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

struct json {
	GString *s;
	bool pretty;
	int depth;
	bool first;		/* nothing written yet at this depth */
};

/*
 * A JSON string.  Valid UTF-8 passes through; each byte that is not part
 * of a valid sequence becomes U+FFFD, since JSON text must be UTF-8 and
 * the strings here are bytes (the binary manifest keeps them exactly).
 */
static void json_quote(GString *s, const char *str)
{
	const char *p = str, *end = str + strlen(str);

	g_string_append_c(s, '"');
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		gunichar u;

		if (c == '"' || c == '\\') {
			g_string_append_printf(s, "\\%c", c);
		} else if (c == '\n') {
			g_string_append(s, "\\n");
		} else if (c == '\t') {
			g_string_append(s, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			g_string_append_printf(s, "\\u%04x", c);
		} else if (c >= 0x80) {
			u = g_utf8_get_char_validated(p, end - p);
			if (u == (gunichar)-1 || u == (gunichar)-2) {
				g_string_append(s, "\\ufffd");
			} else {
				const char *next = g_utf8_next_char(p);

				g_string_append_len(s, p, next - p);
				p = next;
				continue;
			}
		} else {
			g_string_append_c(s, (char)c);
		}
		p++;
	}
	g_string_append_c(s, '"');
}

/* Separator, indentation and key before the next value. */
static void json_next(struct json *j, const char *key)
{
	if (!j->first)
		g_string_append_c(j->s, ',');
	j->first = false;
	if (j->pretty && j->depth) {
		g_string_append_c(j->s, '\n');
		for (int i = 0; i < j->depth; i++)
			g_string_append(j->s, "  ");
	}
	if (key) {
		json_quote(j->s, key);
		g_string_append(j->s, j->pretty ? ": " : ":");
	}
}

static void json_open(struct json *j, const char *key, char bracket)
{
	json_next(j, key);
	g_string_append_c(j->s, bracket);
	j->depth++;
	j->first = true;
}

static void json_close(struct json *j, char bracket)
{
	bool empty = j->first;

	j->depth--;
	j->first = false;
	if (j->pretty && !empty) {
		g_string_append_c(j->s, '\n');
		for (int i = 0; i < j->depth; i++)
			g_string_append(j->s, "  ");
	}
	g_string_append_c(j->s, bracket);
}

static void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_next(j, key);
	g_string_append_printf(j->s, "%" PRIu64, v);
}

static void json_i64(struct json *j, const char *key, int64_t v)
{
	json_next(j, key);
	g_string_append_printf(j->s, "%" PRId64, v);
}

static void json_str(struct json *j, const char *key, const char *v)
{
	json_next(j, key);
	json_quote(j->s, v);
}

static void json_details(struct json *j, const struct fdh_manifest_entry *e)
{
	switch (e->kind) {
	case FDH_KIND_TAP:
		json_open(j, "tap", '{');
		json_str(j, "ifname", e->u.tap.ifname);
		json_u64(j, "queue", e->u.tap.queue);
		json_u64(j, "iff_flags", e->u.tap.iff_flags);
		json_i64(j, "vnet_hdr_sz", e->u.tap.vnet_hdr_sz);
		json_u64(j, "offloads", e->u.tap.offloads);
		break;
	case FDH_KIND_MEMFD:
		json_open(j, "memfd", '{');
		json_str(j, "name", e->u.memfd.name);
		json_u64(j, "size", e->u.memfd.size);
		json_u64(j, "seals", e->u.memfd.seals);
		break;
	case FDH_KIND_EVENTFD:
		json_open(j, "eventfd", '{');
		json_next(j, "semaphore");
		g_string_append(j->s,
				e->u.eventfd.semaphore ? "true" : "false");
		break;
	case FDH_KIND_VHOST_USER:
		json_open(j, "vhost_user", '{');
		json_u64(j, "inflight_size", e->u.vhost_user.inflight_size);
		json_u64(j, "inflight_offset", e->u.vhost_user.inflight_offset);
		json_u64(j, "inflight_queue_size",
			 e->u.vhost_user.inflight_queue_size);
		json_u64(j, "inflight_num_queues",
			 e->u.vhost_user.inflight_num_queues);
		json_u64(j, "protocol_features",
			 e->u.vhost_user.protocol_features);
		break;
	default:
		return;
	}
	json_close(j, '}');
}

static void json_entry(struct json *j, const struct fdh_manifest_entry *e)
{
	json_open(j, NULL, '{');
	json_str(j, "owner", e->owner);
	json_u64(j, "index", e->index);
	json_str(j, "kind", fdh_kind_name(e->kind));
	json_i64(j, "remote_fd", e->remote_fd);
	json_u64(j, "dev", e->dev);
	json_u64(j, "ino", e->ino);
	json_u64(j, "mode", e->mode);
	json_u64(j, "open_flags", e->open_flags);
	json_u64(j, "kind_id", e->kind_id);
	json_details(j, e);
	json_close(j, '}');
}

static void json_device(struct json *j, const struct fdh_manifest_device *d)
{
	json_open(j, NULL, '{');
	json_str(j, "owner", d->owner);
	json_u64(j, "acked_features", d->acked_features);
	json_open(j, "vrings", '[');
	for (uint32_t i = 0; i < d->n_vrings; i++) {
		const struct fdh_vring *v = &d->vrings[i];

		json_open(j, NULL, '{');
		json_u64(j, "index", v->index);
		json_u64(j, "size", v->size);
		json_u64(j, "desc", v->desc);
		json_u64(j, "avail", v->avail);
		json_u64(j, "used", v->used);
		json_u64(j, "last_avail_idx", v->last_avail_idx);
		json_u64(j, "used_idx", v->used_idx);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_close(j, '}');
}

int fdh_manifest_to_json(const struct fdh_manifest *m, bool pretty,
			 char **ret)
{
	struct json j = { .pretty = pretty, .first = true };
	int r;

	r = check_args(m, ret);
	if (r < 0)
		return r;
	j.s = g_string_new(NULL);
	json_open(&j, NULL, '{');
	json_u64(&j, "version", m->version);
	json_open(&j, "source", '{');
	json_i64(&j, "pid", m->source.pid);
	json_u64(&j, "start_time", m->source.start_time);
	json_str(&j, "boot_id", m->source.boot_id);
	json_u64(&j, "uid", m->source.uid);
	json_str(&j, "comm", m->source.comm);
	json_close(&j, '}');
	json_open(&j, "entries", '[');
	for (size_t i = 0; i < m->n_entries; i++)
		json_entry(&j, &m->entries[i]);
	json_close(&j, ']');
	json_open(&j, "devices", '[');
	for (size_t i = 0; i < m->n_devices; i++)
		json_device(&j, &m->devices[i]);
	json_close(&j, ']');
	json_close(&j, '}');
	if (pretty)
		g_string_append_c(j.s, '\n');
	return finish(j.s, ret);
}
