#!/usr/bin/env bash
# Fuzz every parser of untrusted input, one harness after the other, each
# for a bounded time:
#
#	fuzz-manifest      the manifest decoder (lib/manifest.c)
#	fuzz-fallback      both ends of the SCM_RIGHTS fallback
#	fuzz-qemu-cmdline  a source QEMU's /proc/PID/cmdline (tools/qemu-cmdline.c)
#	fuzz-qmp           the lines QEMU's monitor sends (tools/qmp.c)
#
#	scripts/fuzz.sh [SECONDS [HARNESS...]]	(default 240, all four)
#
# SECONDS is the whole pass, split evenly among the harnesses run (at least
# 15 s each); HARNESS is a name above without "fuzz-".  CI (scripts/test.sh)
# passes 60, so each harness gets 15 s: four times 60 s would add three
# minutes to every CI run on two shared cores, while 15 s is ample to replay
# the committed corpora (regression seeds included; they load in about a
# second) and mutate from there.  Long runs are one harness at a time by
# hand; Documentation/fuzzing.md has the commands and the counts.
#
# Builds the harnesses with clang, libFuzzer, ASan and UBSan in build-fuzz/
# (FUZZ_BUILD_DIR overrides), runs each on a copy of its seeds
# (tests/fuzz/corpus-*/, tests/fuzz/corpus/ for the manifest; the committed
# seeds stay as they are), and exits non-zero if any finds a crash, a leak,
# undefined behaviour or a hang; the others still run.
# Reproducers are kept in build-fuzz/fuzz-artifacts/; replay one with
#	build-fuzz/tests/fuzz/fuzz-qmp build-fuzz/fuzz-artifacts/crash-...
set -euo pipefail

seconds=${1:-240}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 [SECONDS [HARNESS...]]" >&2
	exit 2
fi
shift $(($# > 0 ? 1 : 0))

# name, seed directory under tests/fuzz/, -max_len: a manifest of 16 KiB
# holds hundreds of entries; a QEMU command line or a QMP line of 8 KiB is
# longer than any libvirt writes or QEMU sends for our commands.
declare -A corpus=([manifest]=corpus [fallback]=corpus-fallback
		   [qemu-cmdline]=corpus-qemu-cmdline [qmp]=corpus-qmp)
declare -A max_len=([manifest]=16384 [fallback]=4096
		    [qemu-cmdline]=8192 [qmp]=8192)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(manifest fallback qemu-cmdline qmp)
for h in "${harnesses[@]}"; do
	if [ -z "${corpus[$h]:-}" ]; then
		echo "$0: no harness '$h' (${!corpus[*]})" >&2
		exit 2
	fi
done
each=$((seconds / ${#harnesses[@]}))
[ "$each" -ge 15 ] || each=15

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

# fuzzer-no-link instruments the library and the tools' sources too, not
# only the targets: without their coverage libFuzzer mutates blindly.
opts=(-Dfuzz=true -Dsanitize=true -Db_lundef=false
      "-Dc_args=['-fsanitize=fuzzer-no-link']")
if [ -f "$build/build.ninja" ]; then
	meson configure "$build" "${opts[@]}" >/dev/null
else
	CC=clang meson setup "$build" "$root" "${opts[@]}"
fi
ninja -C "$build" "${harnesses[@]/#/tests/fuzz/fuzz-}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-artifacts"

# UBSan only reports by default; a finding must fail the run.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
failed=()
for h in "${harnesses[@]}"; do
	mkdir "$work/$h"
	cp "$root/tests/fuzz/${corpus[$h]}"/* "$work/$h/"
	echo "== fuzz-$h: ${each}s"
	"$build/tests/fuzz/fuzz-$h" \
		-max_total_time="$each" \
		-timeout=10 \
		-rss_limit_mb=2048 \
		-max_len="${max_len[$h]}" \
		-print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/" \
		"$work/$h" || failed+=("$h")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: findings in ${failed[*]}; reproducers in $build/fuzz-artifacts/" >&2
	exit 1
fi
