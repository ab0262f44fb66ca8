// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Renderings of a manifest: an aligned table for people and JSON for
 * tools (schema in Documentation/manifest.md).
 *
 * Both walk the manifest's wire form (fdh_manifest_variant()) with the
 * member names below, so that they show every field the wire carries, in
 * its order, and cannot drift from it.  Both validate first: every string
 * is then terminated and every kind has a name.
 *
 * Strings come from the source process (comm, memfd names, owners) and
 * may hold any byte but NUL: both renderings escape them, so printing a
 * manifest can neither break its layout nor send terminal escapes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "fdh-internal.h"
#include "fdh-shared.h"
#include "manifest-internal.h"

/*
 * Member names of each tuple of the wire form, keyed by the name of the
 * member that holds it ("" for the top).  A suffix says how text shows a
 * number: x hex, o octal, d major:minor, k kind name (JSON too).
 */
static const struct {
	const char *key;
	const char *names;
} schema[] = {
	{ "", "version source entries devices" },
	{ "source", "pid start_time boot_id uid comm" },
	{ "entries", "owner index kind:k remote_fd dev:d ino mode:o "
		     "open_flags:o kind_id tap memfd eventfd vhost_user" },
	{ "tap", "ifname queue iff_flags:x vnet_hdr_sz offloads:x" },
	{ "memfd", "name size seals:x" },
	{ "eventfd", "semaphore" },
	{ "vhost_user", "inflight_size inflight_offset inflight_queue_size "
			"inflight_num_queues protocol_features:x" },
	{ "devices", "owner acked_features:x vrings" },
	{ "vrings", "index size desc:x avail:x used:x last_avail_idx "
		    "used_idx" },
};

static const char *names_of(const char *key)
{
	for (size_t i = 0; i < G_N_ELEMENTS(schema); i++)
		if (strcmp(schema[i].key, key) == 0)
			return schema[i].names;
	return "";
}

/* The i-th "name[:fmt]" of a names list into name; returns fmt or 0. */
static char member_name(const char *names, size_t i, char name[32])
{
	size_t len;

	while (i--)
		names = strchr(names, ' ') + 1;
	len = strcspn(names, " :");
	snprintf(name, 32, "%.*s", (int)len, names);
	return names[len] == ':' ? names[len + 1] : 0;
}

/*
 * A value's members: the children of a tuple, or the value itself (the
 * eventfd fields are a bare boolean).  Returns a new reference.
 */
static size_t n_members(GVariant *v)
{
	return g_variant_is_container(v) ? g_variant_n_children(v) : 1;
}

static GVariant *member_value(GVariant *v, size_t i)
{
	return g_variant_is_container(v) ? g_variant_get_child_value(v, i)
					 : g_variant_ref(v);
}

static bool is_list(GVariant *v)
{
	return g_variant_is_of_type(v, G_VARIANT_TYPE_ARRAY) &&
	       !g_variant_is_of_type(v, G_VARIANT_TYPE_BYTESTRING);
}

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

/*
 * Validate m, then give the wire form with the version in front:
 * (version, source, entries, devices).
 */
static int top_variant(const struct fdh_manifest *m, char **ret,
		       GVariant **ret_top)
{
	g_autoptr(GVariant) body = NULL;
	GVariant *members[4];
	int r;

	if (!m || !ret)
		return fdh_fail(-EINVAL, -1, "render: NULL argument");
	r = fdh_manifest_validate(m);
	if (r < 0)
		return r;
	body = fdh_manifest_variant(m);
	members[0] = g_variant_new_uint32(m->version);
	for (size_t i = 1; i < G_N_ELEMENTS(members); i++)
		members[i] = g_variant_get_child_value(body, i - 1);
	*ret_top = g_variant_ref_sink(g_variant_new_tuple(members, 4));
	/* The tuple took its own references to the children. */
	for (size_t i = 1; i < G_N_ELEMENTS(members); i++)
		g_variant_unref(members[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Scalars                                                            */

/* "name" with quotes, backslashes and non-printable bytes as \xHH. */
static void text_quote(GString *s, const char *p, size_t n)
{
	g_string_append_c(s, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\')
			g_string_append_printf(s, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			g_string_append_printf(s, "\\x%02x", c);
		else
			g_string_append_c(s, (char)c);
	}
	g_string_append_c(s, '"');
}

static void put_gstring(void *ctx, const char *p, size_t n)
{
	g_string_append_len(ctx, p, (gssize)n);
}

/* A JSON string: the one quoter the CLI uses too (lib/fdh-shared.h).  The
 * binary manifest keeps these bytes exactly; JSON shows them as UTF-8. */
static void json_quote(GString *s, const char *p, size_t n)
{
	fdh_json_quote(p, n, put_gstring, s);
}

/* A string, boolean or number of the wire form, as JSON or as text. */
static void scalar(GString *s, GVariant *v, char fmt, bool json)
{
	const char *kind;
	uint64_t u;
	gsize n;

	switch (g_variant_classify(v)) {
	case G_VARIANT_CLASS_ARRAY: {
		const char *p = g_variant_get_fixed_array(v, &n, 1);

		(json ? json_quote : text_quote)(s, p, n);
		return;
	}
	case G_VARIANT_CLASS_BOOLEAN:
		if (g_variant_get_boolean(v))
			g_string_append(s, json ? "true" : "yes");
		else
			g_string_append(s, json ? "false" : "no");
		return;
	case G_VARIANT_CLASS_INT32:
		g_string_append_printf(s, "%" PRId32, g_variant_get_int32(v));
		return;
	case G_VARIANT_CLASS_UINT16:
		u = g_variant_get_uint16(v);
		break;
	case G_VARIANT_CLASS_UINT32:
		u = g_variant_get_uint32(v);
		break;
	default:
		u = g_variant_get_uint64(v);
		break;
	}
	if (fmt == 'k') {
		/* Validated: every kind has a name. */
		kind = fdh_kind_name((enum fdh_kind)u);
		if (json)
			json_quote(s, kind, strlen(kind));
		else
			g_string_append(s, kind);
	} else if (json || !fmt) {
		g_string_append_printf(s, "%" PRIu64, u);
	} else if (fmt == 'x') {
		g_string_append_printf(s, "0x%" PRIx64, u);
	} else if (fmt == 'o') {
		g_string_append_printf(s, "0%" PRIo64, u);
	} else {
		g_string_append_printf(s, "%u:%u", major(u), minor(u));
	}
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

/*
 * "name value  name value": scalars with their values, lists with their
 * length, present maybes with their own members.  Returns false if it
 * wrote nothing.
 */
static bool text_pairs(GString *s, GVariant *v, const char *names,
		       const char *sep, bool first)
{
	for (size_t i = 0; i < n_members(v); i++) {
		g_autoptr(GVariant) c = member_value(v, i);
		g_autoptr(GVariant) inner = NULL;
		char name[32], fmt = member_name(names, i, name);

		if (g_variant_is_of_type(c, G_VARIANT_TYPE_MAYBE)) {
			inner = g_variant_get_maybe(c);
			if (inner && text_pairs(s, inner, names_of(name), sep,
						first))
				first = false;
			continue;
		}
		g_string_append_printf(s, "%s%s ", first ? "" : sep, name);
		first = false;
		if (is_list(c))
			g_string_append_printf(s, "%zu",
					       g_variant_n_children(c));
		else
			scalar(s, c, fmt, false);
	}
	return !first;
}

/* Cells printed with every column as wide as its widest. */
struct table {
	size_t n_cols;
	GPtrArray *cells;	/* row-major, n_cols per row */
};

/* The layout the CLI's tables use too (lib/fdh-shared.h). */
static void table_print(struct table *t, GString *s, const char *indent)
{
	g_autofree size_t *width = g_new0(size_t, t->n_cols);

	fdh_table_layout((const char *const *)t->cells->pdata, t->cells->len,
			 t->n_cols, width, indent, put_gstring, s);
	g_ptr_array_free(t->cells, TRUE);
}

/*
 * A list of tuples as a table: "#", a column per scalar member, and the
 * members of whatever maybe is present under DETAILS.
 */
static void text_table(GString *s, GVariant *list, const char *names,
		       const char *indent)
{
	g_autoptr(GVariant) first = g_variant_get_child_value(list, 0);
	struct table t = { .n_cols = 1 };
	bool details = false;
	char name[32];

	t.cells = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(t.cells, g_strdup("#"));
	for (size_t i = 0; i < n_members(first); i++) {
		g_autoptr(GVariant) c = member_value(first, i);

		member_name(names, i, name);
		if (g_variant_is_of_type(c, G_VARIANT_TYPE_MAYBE)) {
			details = true;
			continue;
		}
		g_ptr_array_add(t.cells, g_ascii_strup(name, -1));
		t.n_cols++;
	}
	if (details) {
		g_ptr_array_add(t.cells, g_strdup("DETAILS"));
		t.n_cols++;
	}
	for (size_t row = 0; row < g_variant_n_children(list); row++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(list, row);
		GString *extra = g_string_new(NULL);

		g_ptr_array_add(t.cells, g_strdup_printf("%zu", row));
		for (size_t i = 0; i < n_members(v); i++) {
			g_autoptr(GVariant) c = member_value(v, i);
			g_autoptr(GVariant) inner = NULL;
			GString *cell;
			char fmt = member_name(names, i, name);

			if (g_variant_is_of_type(c, G_VARIANT_TYPE_MAYBE)) {
				inner = g_variant_get_maybe(c);
				if (inner)
					text_pairs(extra, inner, names_of(name),
						   " ", !extra->len);
				continue;
			}
			cell = g_string_new(NULL);
			scalar(cell, c, fmt, false);
			g_ptr_array_add(t.cells, g_string_free(cell, FALSE));
		}
		if (details && !extra->len)
			g_string_append_c(extra, '-');
		if (details)
			g_ptr_array_add(t.cells, g_string_free(extra, FALSE));
		else
			g_string_free(extra, TRUE);
	}
	table_print(&t, s, indent);
}

static bool has_list(GVariant *v)
{
	for (size_t i = 0; i < n_members(v); i++) {
		g_autoptr(GVariant) c = member_value(v, i);

		if (is_list(c))
			return true;
	}
	return false;
}

/*
 * A list of tuples: a table, or, when the tuples hold lists of their own
 * (devices and their rings), a line per tuple and a table per list.
 */
static void text_list(GString *s, GVariant *list, const char *names,
		      const char *indent)
{
	g_autofree char *deeper = g_strconcat(indent, "  ", NULL);
	g_autoptr(GVariant) first = NULL;
	char name[32];

	if (!g_variant_n_children(list))
		return;
	first = g_variant_get_child_value(list, 0);
	if (!has_list(first)) {
		text_table(s, list, names, indent);
		return;
	}
	for (size_t row = 0; row < g_variant_n_children(list); row++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(list, row);

		g_string_append(s, indent);
		text_pairs(s, v, names, "  ", true);
		g_string_append_c(s, '\n');
		for (size_t i = 0; i < n_members(v); i++) {
			g_autoptr(GVariant) c = member_value(v, i);

			member_name(names, i, name);
			if (is_list(c))
				text_list(s, c, names_of(name), deeper);
		}
	}
}

int fdh_manifest_to_text(const struct fdh_manifest *m, char **ret)
{
	g_autoptr(GVariant) top = NULL;
	const char *names = names_of("");
	GString *s;
	char name[32];
	int r;

	r = top_variant(m, ret, &top);
	if (r < 0)
		return r;
	s = g_string_new(NULL);
	for (size_t i = 0; i < n_members(top); i++) {
		g_autoptr(GVariant) c = member_value(top, i);

		member_name(names, i, name);
		g_string_append_printf(s, "%s: ", name);
		if (is_list(c))
			g_string_append_printf(s, "%zu",
					       g_variant_n_children(c));
		else if (g_variant_is_of_type(c, G_VARIANT_TYPE_TUPLE))
			text_pairs(s, c, names_of(name), "  ", true);
		else
			scalar(s, c, 0, false);
		g_string_append_c(s, '\n');
		if (is_list(c))
			text_list(s, c, names_of(name), "  ");
	}
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

static void json_newline(struct json *j)
{
	g_string_append_c(j->s, '\n');
	for (int i = 0; i < j->depth; i++)
		g_string_append(j->s, "  ");
}

/* Separator, indentation and key before the next value. */
static void json_next(struct json *j, const char *key)
{
	if (!j->first)
		g_string_append_c(j->s, ',');
	j->first = false;
	if (j->pretty && j->depth)
		json_newline(j);
	if (key) {
		json_quote(j->s, key, strlen(key));
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
	if (j->pretty && !empty)
		json_newline(j);
	g_string_append_c(j->s, bracket);
}

static void json_object(struct json *j, const char *key, GVariant *v,
			const char *names);

/* One member: absent maybes are left out, lists become arrays. */
static void json_member(struct json *j, const char *name, GVariant *v,
			char fmt)
{
	g_autoptr(GVariant) inner = NULL;

	if (g_variant_is_of_type(v, G_VARIANT_TYPE_MAYBE)) {
		inner = g_variant_get_maybe(v);
		if (inner)
			json_object(j, name, inner, names_of(name));
	} else if (g_variant_is_of_type(v, G_VARIANT_TYPE_TUPLE)) {
		json_object(j, name, v, names_of(name));
	} else if (is_list(v)) {
		json_open(j, name, '[');
		for (size_t i = 0; i < g_variant_n_children(v); i++) {
			g_autoptr(GVariant) c = g_variant_get_child_value(v, i);

			json_object(j, NULL, c, names_of(name));
		}
		json_close(j, ']');
	} else {
		json_next(j, name);
		scalar(j->s, v, fmt, true);
	}
}

static void json_object(struct json *j, const char *key, GVariant *v,
			const char *names)
{
	json_open(j, key, '{');
	for (size_t i = 0; i < n_members(v); i++) {
		g_autoptr(GVariant) c = member_value(v, i);
		char name[32], fmt = member_name(names, i, name);

		json_member(j, name, c, fmt);
	}
	json_close(j, '}');
}

int fdh_manifest_to_json(const struct fdh_manifest *m, bool pretty,
			 char **ret)
{
	struct json j = { .pretty = pretty, .first = true };
	g_autoptr(GVariant) top = NULL;
	int r;

	r = top_variant(m, ret, &top);
	if (r < 0)
		return r;
	j.s = g_string_new(NULL);
	json_object(&j, NULL, top, names_of(""));
	if (pretty)
		g_string_append_c(j.s, '\n');
	return finish(j.s, ret);
}
