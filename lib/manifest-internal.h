/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal to the manifest code (lib/manifest.c, lib/manifest-render.c)
 * and its tests: never installed.
 */
#ifndef FDH_MANIFEST_INTERNAL_H
#define FDH_MANIFEST_INTERNAL_H

#include <glib.h>

#include "fdhandover.h"

/*
 * The body of the wire form as a GVariant in host byte order (a new,
 * non-floating reference).  m is not validated: the renderings validate
 * first; fields the format bounds are cut to their bound, so that even
 * an invalid m is never overrun.
 */
GVariant *fdh_manifest_variant(const struct fdh_manifest *m);

/*
 * fdh_manifest_encode() without the validation: tests write invalid
 * manifests with it to prove that decode refuses them.
 */
int fdh_manifest_encode_unchecked(const struct fdh_manifest *m,
				  void **ret_buf, size_t *ret_len);

#endif /* FDH_MANIFEST_INTERNAL_H */
