#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make $KEVENT_CACHE/tree = pinned base + patches/series + the overlay.
#
# Incremental: only files whose content changed are rewritten, so kbuild
# rebuilds only what depends on them. Files this script placed before and no
# longer places are restored from the base (or deleted). A patch that does
# not apply cleanly (no fuzz) fails the run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$KEVENT_REPO/dev/fetch-base.sh"

manifest=$KEVENT_CACHE/tree.manifest
if [ ! -f "$TREE_DIR/.kevent-tree-ok" ] ||
   [ "$(cat "$TREE_DIR/.kevent-tree-ok")" != "$BASE_VERSION $BASE_SHA256" ]; then
	log "copying base into $TREE_DIR"
	rm -rf "$TREE_DIR" "$manifest"
	cp -a "$BASE_DIR" "$TREE_DIR"
	rm -f "$TREE_DIR/.kevent-base-ok"
	echo "$BASE_VERSION $BASE_SHA256" >"$TREE_DIR/.kevent-tree-ok"
fi

stage=$(mktemp -d "$KEVENT_CACHE/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# 1. Patched files: base copies of what the series touches, patched in $stage.
series=$KEVENT_REPO/patches/series
if [ -f "$series" ]; then
	mapfile -t patches < <(grep -vE '^\s*(#|$)' "$series")
	for p in "${patches[@]}"; do
		[ -f "$KEVENT_REPO/patches/$p" ] || die "patches/series names $p, which does not exist"
		sed -n 's@^+++ b/@@p; s@^--- a/@@p' "$KEVENT_REPO/patches/$p"
	done | sort -u | while read -r f; do
		if [ -f "$BASE_DIR/$f" ] && [ ! -e "$stage/$f" ]; then
			mkdir -p "$stage/$(dirname "$f")"
			cp "$BASE_DIR/$f" "$stage/$f"
		fi
	done
	for p in "${patches[@]}"; do
		if ! out=$(cd "$stage" && patch -p1 -s -N --fuzz=0 --no-backup-if-mismatch \
				<"$KEVENT_REPO/patches/$p" 2>&1); then
			echo "$out" >&2
			die "patches/$p does not apply to base $BASE_VERSION"
		fi
	done
fi
(cd "$stage" && find . -type f | sed 's@^\./@@') | sort >"$stage.patched"

# 2. Overlay files: every tracked or new (not ignored) file at a kernel path.
(cd "$KEVENT_REPO" && git ls-files -co --exclude-standard) | sort -u |
while read -r f; do
	is_project_path "$f" || { [ -f "$KEVENT_REPO/$f" ] && echo "$f"; }
done >"$stage.overlay"
dup=$(comm -12 "$stage.patched" "$stage.overlay")
[ -z "$dup" ] || die "both patched and overlaid (make it one or the other): $dup"
while read -r f; do
	[ -f "$BASE_DIR/$f" ] && die "overlay file $f exists in the base: change it with a patch"
	mkdir -p "$stage/$(dirname "$f")"
	cp "$KEVENT_REPO/$f" "$stage/$f"
done <"$stage.overlay"

# 3. Sync $stage into the tree, touching only changed files.
sort -u "$stage.patched" "$stage.overlay" >"$stage.new"
changed=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$TREE_DIR/$f"; then
		mkdir -p "$TREE_DIR/$(dirname "$f")"
		cp "$stage/$f" "$TREE_DIR/$f.kevent-tmp"
		mv "$TREE_DIR/$f.kevent-tmp" "$TREE_DIR/$f"
		changed=$((changed + 1))
	fi
done <"$stage.new"
if [ -f "$manifest" ]; then
	comm -23 "$manifest" "$stage.new" | while read -r f; do
		if [ -f "$BASE_DIR/$f" ]; then
			cp "$BASE_DIR/$f" "$TREE_DIR/$f"
		else
			rm -f "$TREE_DIR/$f"
		fi
		log "restored $f"
	done
fi
mv "$stage.new" "$manifest"
rm -f "$stage.patched" "$stage.overlay"
log "tree: $(wc -l <"$manifest") kevent files, $changed changed"
