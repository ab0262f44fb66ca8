#!/usr/bin/env bash
# The test command: install what is needed, build (warnings as errors under
# CI), run every test (plain and ASan+UBSan builds), run the bounded fuzz
# pass, and end with one line "N passed, N failed, N skipped".
#
# Usage: scripts/test.sh            (as root: tests need netns, TAP, clone3)
# Env:   CI=true  -Dwerror=true;  FUZZ_SECONDS (default 60; 0 skips fuzzing);
#        FDH_E2E=0 skips the end-to-end QEMU tests (they build QEMU once,
#        ~9 min on 2 cores, then reuse it from the cache)
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh || exit 1

werror=false
[ "${CI:-}" = true ] && werror=true
fuzz_seconds=${FUZZ_SECONDS:-60}
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0

# setup DIR [meson options...]: configure once, reconfigure when options change.
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

run_suite() {
	local dir=$1 tag=$2
	shift 2
	echo "== $tag: build ($dir)"
	if ! setup "$dir" -Dwerror=$werror "$@" || ! ninja -C "$dir" >"$results/$tag.build.log" 2>&1; then
		cat "$results/$tag.build.log" 2>/dev/null | tail -40
		echo "not ok - $tag build" >>"$results/extra.tap"
		status=1
		return
	fi
	echo "== $tag: test"
	meson test -C "$dir" --print-errorlogs --num-processes 1 >"$results/$tag.test.log" 2>&1 || status=1
	tail -n 15 "$results/$tag.test.log"
	cp "$dir/meson-logs/testlog.json" "$results/$tag.testlog.json"
}

run_suite build plain
run_suite build-asan sanitize -Dsanitize=true -Db_lundef=false

if [ "$fuzz_seconds" -gt 0 ]; then
	echo "== fuzz: ${fuzz_seconds}s"
	if scripts/fuzz.sh "$fuzz_seconds" >"$results/fuzz.log" 2>&1; then
		echo "ok - fuzz: manifest, fallback, qemu-cmdline, qmp (${fuzz_seconds}s in all)" >>"$results/extra.tap"
	else
		tail -n 30 "$results/fuzz.log"
		echo "not ok - fuzz: scripts/fuzz.sh found something (see its log)" >>"$results/extra.tap"
		status=1
	fi
	tail -n 3 "$results/fuzz.log"
fi

# End to end: the patched QEMU and a real guest, both cached outside the
# clone (qemu-glue/build.sh, qemu-glue/guest/build.sh).
if [ "${FDH_E2E:-1}" != 0 ]; then
	echo "== e2e: patched QEMU and test guest (cache: ${FDH_CACHE:-/var/cache/fd-handover})"
	if scripts/with-progress.sh "$results/qemu-setup.log" "QEMU and guest" \
		scripts/qemu-setup.sh >"$results/qemu-setup.env"; then
		while IFS='=' read -r key value; do
			[[ $key =~ ^[A-Z][A-Z0-9_]*$ ]] && export "$key=$value"
		done <"$results/qemu-setup.env"
		export FDH_QEMU=$FDH_QEMU_SYSTEM_X86_64_BIN FDH_QSD_BIN=$FDH_QEMU_STORAGE_DAEMON_BIN \
			FDH_VUBR=$FDH_VHOST_USER_BRIDGE_BIN FDH_VUB_BIN=${FDH_VHOST_USER_BLK_BIN:-}
		export FDH_DENY_SYSCALL=$PWD/build/tests/deny-syscall
		# The soak's short version (the note's run: FDH_SOAK_N=100).
		export FDH_SOAK_N=${FDH_SOAK_N:-10}
		for t in upgrade commit vhost_user vhost_user_net virtiofs vhost_net_kernel vhost_net_qemu \
			soak faults peer_migration; do
			(cd qemu-glue && python3 -B -m "e2e.test_$t") >"$results/e2e-$t.tap" \
				2>"$results/e2e-$t.log" || status=1
			grep -E '^(ok|not ok)' "$results/e2e-$t.tap"
			# What each failing test said (its "# " lines come first).
			grep -B 15 '^not ok' "$results/e2e-$t.tap" | grep -E '^# |^not ok' || true
		done
	else
		tail -n 40 "$results/qemu-setup.log"
		echo "not ok - e2e setup: scripts/qemu-setup.sh" >>"$results/extra.tap"
		status=1
	fi
fi

python3 scripts/tap-count.py "$results"/*.testlog.json "$results/extra.tap" \
	"$results"/e2e-*.tap || status=1
exit $status
