#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Export the whole change as a git format-patch series against the pinned
# base, with a cover letter: dev/export-series.sh OUTDIR
#
# Each patch of patches/series becomes one commit, together with the new
# files that patches/overlay-map assigns to it. The exported tree must equal
# the tree that dev/apply.sh builds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

outdir=${1:?usage: dev/export-series.sh OUTDIR}
"$KEVENT_REPO/dev/apply.sh"

g=$KEVENT_CACHE/export-git
G=(git -C "$g" -c user.name="kevent export" -c user.email="kevent@localhost"
   -c core.autocrlf=false -c advice.detachedHead=false)
if [ "$(cat "$g/.kevent-export-base" 2>/dev/null)" != "$BASE_VERSION $BASE_SHA256" ]; then
	log "making the export repository (once)"
	rm -rf "$g"
	cp -a "$BASE_DIR" "$g"
	rm -f "$g/.kevent-base-ok"
	"${G[@]}" init -q
	"${G[@]}" add -A -f .
	"${G[@]}" commit -q -m "linux-source-7.3 $BASE_VERSION"
	"${G[@]}" tag -f base >/dev/null
	echo "$BASE_VERSION $BASE_SHA256" >"$g/.kevent-export-base"
fi
"${G[@]}" checkout -q -f -B series base
"${G[@]}" clean -q -fdx -e .kevent-export-base

# Overlay files and the patch each belongs to.
map=$KEVENT_REPO/patches/overlay-map
declare -A owner=()
while read -r f; do
	p=
	while read -r glob patch; do
		case "$glob" in ''|\#*) continue ;; esac
		# shellcheck disable=SC2254
		case "$f" in $glob) p=$patch; break ;; esac
	done <"$map"
	[ -n "$p" ] || die "overlay file $f has no patch in patches/overlay-map"
	owner[$f]=$p
done < <(comm -13 <(cd "$KEVENT_REPO" && grep -vE '^\s*(#|$)' patches/series |
		      while read -r p; do sed -n 's@^+++ b/@@p' "patches/$p"; done | sort -u) \
		  "$KEVENT_CACHE/tree.manifest")

while read -r p; do
	"${G[@]}" am -q --keep-cr "$KEVENT_REPO/patches/$p" ||
		die "patches/$p does not apply with git am"
	added=0
	for f in "${!owner[@]}"; do
		[ "${owner[$f]}" = "$p" ] || continue
		mkdir -p "$g/$(dirname "$f")"
		cp "$KEVENT_REPO/$f" "$g/$f"
		"${G[@]}" add -f "$f"
		added=1
	done
	[ $added = 0 ] || "${G[@]}" commit -q --amend --no-edit
done < <(grep -vE '^\s*(#|$)' "$KEVENT_REPO/patches/series")

# The exported tree must be the tree we build.
while read -r f; do
	cmp -s "$g/$f" "$TREE_DIR/$f" || die "exported $f differs from the built tree"
done <"$KEVENT_CACHE/tree.manifest"

rm -rf "$outdir"; mkdir -p "$outdir"
n=$("${G[@]}" rev-list --count base..series)
"${G[@]}" format-patch -q --cover-letter --no-signature --zero-commit \
	--subject-prefix="RFC PATCH" -o "$outdir" base..series
cover=$outdir/0000-cover-letter.patch
python3 - "$cover" "$KEVENT_REPO/patches/cover-letter" <<'PY'
import sys
cover, blurb = sys.argv[1], open(sys.argv[2]).read()
subject, _, body = blurb.partition("\n\n")
s = open(cover).read()
s = s.replace("*** SUBJECT HERE ***", subject.strip()).replace("*** BLURB HERE ***", body.strip())
open(cover, "w").write(s)
PY
log "exported $n patches and a cover letter to $outdir"
ls "$outdir"
