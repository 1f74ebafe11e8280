#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Check the formatting of every Rust file of the overlay with the kernel's
# .rustfmt.toml. Prints one result line ("ok rustfmt" or "not ok rustfmt ...").
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cd "$KEVENT_REPO"
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.rs' | grep -v '^dev/' || true)
if [ ${#files[@]} -eq 0 ]; then
	echo "skip rustfmt no Rust files"
	exit 0
fi
if out=$(rustfmt --check --edition 2021 --config-path "$TREE_DIR/.rustfmt.toml" "${files[@]}" 2>&1); then
	echo "ok rustfmt ${#files[@]} files"
else
	echo "not ok rustfmt $(grep -c '^Diff in' <<<"$out") hunks differ: $(grep '^Diff in' <<<"$out" | head -n 3 | paste -sd';' -)"
fi
