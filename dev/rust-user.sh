#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build and test the Rust userspace (tools/kevent): dev/rust-user.sh OUTDIR
#
#  - runs the kevent crate's host unit tests and writes one line a test to
#    OUTDIR/rust-host.results ("ok rust-host.NAME", "not ok rust-host.NAME",
#    "skip rust-host.NAME"; "not ok rust-host.build" if they do not build);
#  - builds the kernel integration test (tests/kernel.rs) as a static musl
#    binary: OUTDIR/selftests/kevent_rs_test;
#  - builds kevent-bench as a static musl binary, if the package exists:
#    OUTDIR/bin/kevent-bench.
#
# Cargo's objects go to $KEVENT_CACHE/cargo-target. Exits non-zero if a build
# fails (after writing the results); failing host tests are only reported.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${1:?usage: dev/rust-user.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
ws=$KEVENT_REPO/tools/kevent
musl=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR=$KEVENT_CACHE/cargo-target
mkdir -p "$CARGO_TARGET_DIR"
# Cargo tells a package's builds apart by its path, but they share the output
# binaries: after a build from another checkout (a worktree of an older
# commit) it can take this checkout's old build for fresh and keep the other
# checkout's binaries. When the checkout changes, make its sources newer than
# anything built before.
stamp=$CARGO_TARGET_DIR/.kevent-checkout
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$KEVENT_REPO" ]; then
	find "$ws" -name target -prune -o -name '*.rs' -print0 | xargs -0 touch
	echo "$KEVENT_REPO" >"$stamp"
fi
cargo=(cargo --quiet --locked)
results=$out/rust-host.results
log=$CARGO_TARGET_DIR/rust-host.log
rc=0

# Print the executable of target $1 (kind $2: "test" or "bin") from cargo's
# JSON messages on stdin.
artifact() {
	python3 -c '
import json, sys
name, kind = sys.argv[1], sys.argv[2]
found = None
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    if msg["target"]["name"] == name and kind in msg["target"]["kind"]:
        found = msg["executable"]
if not found:
    sys.exit("no %s executable %s in cargo output" % (kind, name))
print(found)
' "$1" "$2"
}

# Host unit tests.
log "Rust host unit tests (kevent crate)"
: >"$results"
if ! "${cargo[@]}" test --manifest-path "$ws/Cargo.toml" -p kevent --lib --no-run 2>"$log"; then
	cat "$log" >&2
	echo "not ok rust-host.build" >>"$results"
else
	# Not --quiet: that would make libtest print dots instead of names.
	cargo --locked test --manifest-path "$ws/Cargo.toml" -p kevent --lib >>"$log" 2>&1 || true
	sed -n -E 's/^test (.+) \.\.\. (ok|FAILED|ignored)$/\2 \1/p' "$log" |
		while read -r status name; do
			case "$status" in
			ok) echo "ok rust-host.$name" ;;
			ignored) echo "skip rust-host.$name" ;;
			*) echo "not ok rust-host.$name" ;;
			esac
		done >>"$results"
	if ! grep -q '^test result: ok\.' "$log"; then
		# Print the failures; a run that reported no test at all fails too.
		sed -n '/^failures:/,$p' "$log" >&2
		grep -q . "$results" || echo "not ok rust-host.run" >>"$results"
	fi
fi
log "$(grep -c '^ok' "$results" || true) Rust host tests passed, $(grep -c '^not ok' "$results" || true) failed (log: $log)"

# The kernel integration test, static, for the initramfs.
log "building kevent_rs_test ($musl, static)"
mkdir -p "$out/selftests" "$out/bin"
if json=$("${cargo[@]}" test --manifest-path "$ws/Cargo.toml" -p kevent --test kernel \
		--release --no-run --target "$musl" --message-format=json) &&
   exe=$(artifact kernel test <<<"$json"); then
	cp "$exe" "$out/selftests/kevent_rs_test"
else
	log "error: building the kevent_rs_test binary failed"
	rc=1
fi

# The benchmark, if its crate exists.
if [ -f "$ws/bench/Cargo.toml" ]; then
	log "building kevent-bench ($musl, static)"
	if json=$("${cargo[@]}" build --manifest-path "$ws/Cargo.toml" -p kevent-bench \
			--release --target "$musl" --message-format=json) &&
	   exe=$(artifact kevent-bench bin <<<"$json"); then
		cp "$exe" "$out/bin/kevent-bench"
	else
		log "error: building kevent-bench failed"
		rc=1
	fi
fi

exit $rc
