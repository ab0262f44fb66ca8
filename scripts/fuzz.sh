#!/usr/bin/env bash
# Fuzz the manifest decoder, then both ends of the SCM_RIGHTS fallback,
# each for a bounded time.
#
#	scripts/fuzz.sh [SECONDS]	(default 60 each; CI uses at most 120)
#
# Builds tests/fuzz/fuzz-manifest and fuzz-fallback with clang, libFuzzer,
# ASan and UBSan in build-fuzz/ (FUZZ_BUILD_DIR overrides), runs each on a
# copy of its seeds (tests/fuzz/corpus/, tests/fuzz/corpus-fallback/; the
# committed seeds stay as they are), and exits non-zero if either finds a
# crash, a leak, undefined behaviour or a hang.
# Reproducers are kept in build-fuzz/fuzz-artifacts/; replay one with
#	build-fuzz/tests/fuzz/fuzz-manifest build-fuzz/fuzz-artifacts/crash-...
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 [SECONDS]" >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

# fuzzer-no-link instruments the library too, not only the target: without
# coverage feedback from lib/manifest.c libFuzzer mutates blindly.
opts=(-Dfuzz=true -Dsanitize=true -Db_lundef=false
      "-Dc_args=['-fsanitize=fuzzer-no-link']")
if [ -f "$build/build.ninja" ]; then
	meson configure "$build" "${opts[@]}" >/dev/null
else
	CC=clang meson setup "$build" "$root" "${opts[@]}"
fi
ninja -C "$build" tests/fuzz/fuzz-manifest tests/fuzz/fuzz-fallback

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/corpus-fallback" "$build/fuzz-artifacts"
cp "$root"/tests/fuzz/corpus/* "$work/corpus/"
cp "$root"/tests/fuzz/corpus-fallback/* "$work/corpus-fallback/"

# UBSan only reports by default; a finding must fail the run.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
"$build/tests/fuzz/fuzz-manifest" \
	-max_total_time="$seconds" \
	-timeout=10 \
	-rss_limit_mb=2048 \
	-max_len=16384 \
	-print_final_stats=1 \
	-artifact_prefix="$build/fuzz-artifacts/" \
	"$work/corpus"

"$build/tests/fuzz/fuzz-fallback" \
	-max_total_time="$seconds" \
	-timeout=10 \
	-rss_limit_mb=2048 \
	-max_len=4096 \
	-print_final_stats=1 \
	-artifact_prefix="$build/fuzz-artifacts/" \
	"$work/corpus-fallback"
