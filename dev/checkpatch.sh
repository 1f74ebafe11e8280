#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run scripts/checkpatch.pl over an exported series: dev/checkpatch.sh DIR
# Prints one result line a patch ("ok checkpatch.NAME ..." or "not ok ...");
# errors fail a patch, warnings are listed. Full output: DIR/checkpatch.log
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=${1:?usage: dev/checkpatch.sh DIR}
: >"$dir/checkpatch.log"
for p in "$dir"/[0-9]*.patch; do
	name=$(basename "$p" .patch)
	[ "${name#0000-}" = "$name" ] || continue
	out=$(cd "$KEVENT_CACHE/export-git" &&
	      perl scripts/checkpatch.pl --no-summary --terse --show-types "$p" 2>&1 || true)
	printf '== %s\n%s\n' "$name" "$out" >>"$dir/checkpatch.log"
	nerr=$(grep -c ': ERROR:' <<<"$out" || true)
	nwarn=$(grep -c ': WARNING:\|: CHECK:' <<<"$out" || true)
	warns=$(grep ': WARNING:\|: CHECK:' <<<"$out" | sed 's/^[^:]*:[0-9]*: //' | head -n 5 | paste -sd';' - || true)
	if [ "$nerr" -gt 0 ]; then
		echo "not ok checkpatch.${name:0:4} $nerr errors: $(grep ': ERROR:' <<<"$out" | head -n 3 | paste -sd';' -)"
	else
		echo "ok checkpatch.${name:0:4} $nwarn warnings${warns:+: $warns}"
	fi
done
