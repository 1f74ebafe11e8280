#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build a kevent kernel: dev/build.sh test|bench
#   test:  tinyconfig + dev/configs/base.config + debug.config (KASAN, lockdep, ...)
#   bench: tinyconfig + dev/configs/base.config + bench.config (no debug options)
# Objects live in $KEVENT_CACHE/build/<kind>; builds are incremental.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kind=${1:-test}
case "$kind" in
test) frags=(base.config debug.config) ;;
bench) frags=(base.config bench.config) ;;
*) die "usage: dev/build.sh test|bench" ;;
esac

"$KEVENT_REPO/dev/setup-tools.sh"
"$KEVENT_REPO/dev/apply.sh"

out=$KEVENT_CACHE/build/$kind
mkdir -p "$out"
K=(make -C "$TREE_DIR" O="$out" "${MAKE_FLAGS[@]}" -s)

if ! msg=$("${K[@]}" rustavailable 2>&1); then
	echo "$msg" >&2
	die "Rust is not available for this kernel build (see above)"
fi

# Regenerate .config only when its inputs changed.
paths=()
for f in "${frags[@]}"; do paths+=("$KEVENT_REPO/dev/configs/$f"); done
want=$(cat "${paths[@]}" "$KEVENT_REPO/patches/series" \
	"$(find "$KEVENT_REPO" -name Kconfig -not -path '*/.git/*' | sort)" 2>/dev/null |
	sha256sum | cut -d' ' -f1)
if [ ! -f "$out/.config" ] || [ "$(cat "$out/.kevent-config" 2>/dev/null)" != "$want" ]; then
	log "configuring $kind kernel"
	"${K[@]}" tinyconfig >/dev/null
	"$TREE_DIR/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${paths[@]}" >/dev/null
	"${K[@]}" olddefconfig >/dev/null
	# Every option a fragment asks for must have survived olddefconfig (a later
	# fragment overrides an earlier one).
	missing=$(cat "${paths[@]}" | grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' |
		awk '{ s = $0; sub(/^# /, "", s); sub(/[= ].*/, "", s); last[s] = $0; order[s] = NR }
		     END { for (s in last) print order[s] "\t" last[s] }' | sort -n | cut -f2- |
		while read -r line; do
			case "$line" in
			"# "*) sym=${line#\# }; sym=${sym%% *}
			       grep -q "^$sym=" "$out/.config" && echo "  $line" ;;
			*) grep -qxF "$line" "$out/.config" || echo "  $line" ;;
			esac
		done; true)
	[ -z "$missing" ] || die "config fragment options not met (check dependencies):
$missing"
	echo "$want" >"$out/.kevent-config"
fi

log "building $kind kernel in $out"
"${K[@]}" -j"$(nproc)" bzImage
"${K[@]}" headers_install >/dev/null
log "built $out/arch/x86/boot/bzImage"
