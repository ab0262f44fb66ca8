/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rules written once for libfdhandover, the fd-handover CLI and its
 * tracer: how a failure is recorded, how a JSON string is quoted, how a
 * text table is laid out.  Header-only (static inline) because the three
 * do not link each other's internals: the CLI sees only the library's
 * exported API, and the library must stay free of the CLI.  Each keeps
 * its own state and output (a thread's last error, stdout, a GString, a
 * file); the rule is this one.  Never installed.
 */
#ifndef FDH_SHARED_H
#define FDH_SHARED_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fdhandover.h"

/* Record a failure in e (struct fdh_error, fdhandover.h); returns code. */
static inline int fdh_error_vrecord(struct fdh_error *e, int code, int entry,
				    const char *fmt, va_list ap)
{
	e->code = code;
	e->entry = entry;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return code;
}

/* Where quoted or laid-out text goes: len bytes of s. */
typedef void fdh_put_fn(void *ctx, const char *s, size_t len);

/* One UTF-8 sequence at p (at most len bytes): its length, 0 if invalid. */
static inline size_t fdh_utf8_len(const unsigned char *p, size_t len)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	if (n > len)
		return 0;
	cp = p[0] & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * The n bytes at s (fewer if a NUL comes first) as a JSON string, quotes
 * included.  JSON text must be UTF-8, but names from another process
 * (comm, memfd and interface names, paths) are bytes: valid UTF-8 passes,
 * each other byte becomes U+FFFD; control characters are escaped.
 */
static inline void fdh_json_quote(const char *s, size_t n, fdh_put_fn *put,
				  void *ctx)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + n;
	char esc[8];

	put(ctx, "\"", 1);
	while (p < end && *p) {
		size_t len = 1;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(ctx, esc, 2);
		} else if (*p == '\n') {
			put(ctx, "\\n", 2);
		} else if (*p == '\t') {
			put(ctx, "\\t", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(ctx, esc, 6);
		} else if (*p >= 0x80) {
			len = fdh_utf8_len(p, (size_t)(end - p));
			if (len)
				put(ctx, (const char *)p, len);
			else
				put(ctx, "\\ufffd", 6);
			if (!len)
				len = 1;
		} else {
			put(ctx, (const char *)p, 1);
		}
		p += len;
	}
	put(ctx, "\"", 1);
}

/*
 * Cells (row-major, n_cols a row; NULL prints as "?") as an aligned text
 * table: each column as wide as its widest cell plus two spaces, the last
 * column of a row (or the last cell) unpadded, each row after indent.
 * width has room for n_cols.  Cells are ASCII (callers escape what is
 * not), so bytes are columns.
 */
static inline void fdh_table_layout(const char *const *cells, size_t n_cells,
				    size_t n_cols, size_t *width,
				    const char *indent, fdh_put_fn *put,
				    void *ctx)
{
	static const char spaces[] = "                                ";

	for (size_t i = 0; i < n_cols; i++)
		width[i] = 0;
	for (size_t i = 0; i < n_cells; i++) {
		size_t len = cells[i] ? strlen(cells[i]) : 1;

		if (len > width[i % n_cols])
			width[i % n_cols] = len;
	}
	for (size_t i = 0; i < n_cells; i++) {
		const char *cell = cells[i] ? cells[i] : "?";
		size_t col = i % n_cols, len = strlen(cell);

		if (col == 0)
			put(ctx, indent, strlen(indent));
		put(ctx, cell, len);
		if (col + 1 == n_cols || i + 1 == n_cells) {
			put(ctx, "\n", 1);
			continue;
		}
		for (size_t pad = width[col] - len + 2; pad; ) {
			size_t k = pad < sizeof(spaces) - 1 ? pad : sizeof(spaces) - 1;

			put(ctx, spaces, k);
			pad -= k;
		}
	}
}

/* A fdh_put_fn for a FILE *. */
static inline void fdh_put_file(void *ctx, const char *s, size_t len)
{
	fwrite(s, 1, len, (FILE *)ctx);
}

#endif /* FDH_SHARED_H */
