// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: fdh_manifest_decode() on any bytes.  Whatever decodes
 * must also be valid, encode back to exactly the input (normal form: one
 * manifest, one encoding) and render; anything else aborts, which the
 * fuzzer reports as a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fdhandover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoded(const struct fdh_manifest *m, const uint8_t *data,
			  size_t size)
{
	void *buf;
	char *out;
	size_t len;

	if (fdh_manifest_validate(m) < 0 ||
	    fdh_manifest_encode(m, &buf, &len) < 0)
		abort();
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	free(buf);
	if (fdh_manifest_to_json(m, true, &out) < 0)
		abort();
	free(out);
	if (fdh_manifest_to_text(m, &out) < 0)
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fdh_manifest *m;
	int r;

	r = fdh_manifest_decode(data, size, &m);
	if (r == 0) {
		check_decoded(m, data, size);
		fdh_manifest_free(m);
	} else if (r != -EBADMSG && r != -ENOMEM) {
		abort();	/* decode promises -EBADMSG for bad input */
	}
	return 0;
}
