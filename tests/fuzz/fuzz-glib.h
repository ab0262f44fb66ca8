/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For the harnesses of GLib code (fuzz-qmp, fuzz-qemu-cmdline).  GLib 2.74
 * (Debian 12) keeps freed GSlice blocks in per-thread magazines, so after
 * every input more has been allocated than freed; libFuzzer takes that for
 * a possible leak and runs LeakSanitizer's full check after each input,
 * which costs 4-5 times the input itself.  With G_SLICE=always-malloc every
 * block is freed at once (and a real leak is still one).  GSlice reads
 * G_SLICE when GLib's constructors first use it, before any of ours runs:
 * hence a re-exec with it set.
 */
#ifndef FDH_FUZZ_GLIB_H
#define FDH_FUZZ_GLIB_H

#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	if (!getenv("G_SLICE") && setenv("G_SLICE", "always-malloc", 1) == 0)
		execv("/proc/self/exe", *argv);
	return 0;	/* no re-exec: slower, not wrong */
}

#endif /* FDH_FUZZ_GLIB_H */
