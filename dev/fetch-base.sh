#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch and unpack the pinned base kernel (Debian linux-source-7.3 from
# trixie-backports) into $KEVENT_CACHE/base, through a private apt
# configuration: the system's apt sources are never touched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_DIR=$KEVENT_CACHE/apt
DEB_DIR=$KEVENT_CACHE/deb
mkdir -p "$APT_DIR/lists/partial" "$DEB_DIR"

if [ -f "$BASE_DIR/.kevent-base-ok" ] &&
   [ "$(cat "$BASE_DIR/.kevent-base-ok")" = "$BASE_VERSION $BASE_SHA256" ]; then
	exit 0
fi

deb=$(ls "$DEB_DIR"/${BASE_PKG}_*.deb 2>/dev/null | grep -F "$(echo "$BASE_VERSION" | sed 's/:/%3a/')" | head -n1 || true)
if [ -z "$deb" ]; then
	cat >"$APT_DIR/sources.list" <<-EOF
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
	EOF
	APT=(apt-get -q -o Dir::Etc::sourcelist="$APT_DIR/sources.list"
	     -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$APT_DIR/lists"
	     -o Dir::Cache="$APT_DIR/cache" -o Debug::NoLocking=1
	     -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
	mkdir -p "$APT_DIR/cache/archives/partial"
	log "updating private apt lists for trixie-backports"
	"${APT[@]}" update >/dev/null
	if ! (cd "$DEB_DIR" && "${APT[@]}" download "$BASE_PKG=$BASE_VERSION" >/dev/null); then
		avail=$(apt-cache -o Dir::Etc::sourcelist="$APT_DIR/sources.list" \
			-o Dir::Etc::sourceparts=- -o Dir::State::Lists="$APT_DIR/lists" \
			-o Dir::Cache="$APT_DIR/cache" madison "$BASE_PKG" | awk -F'|' '{print $2}' | xargs)
		die "$BASE_PKG=$BASE_VERSION is not in trixie-backports any more; versions there: ${avail:-none}. Update dev/base.pin on purpose."
	fi
	deb=$(ls "$DEB_DIR"/${BASE_PKG}_*.deb | head -n1)
fi

x=$KEVENT_CACHE/deb/x
rm -rf "$x"; mkdir -p "$x"
dpkg -x "$deb" "$x"
tarball=$x/usr/src/$BASE_TARBALL_NAME
[ -f "$tarball" ] || die "no $BASE_TARBALL_NAME in $deb"
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$sum" != "$BASE_SHA256" ]; then
	die "sha256 of $BASE_TARBALL_NAME is $sum, dev/base.pin says ${BASE_SHA256:-nothing}"
fi
log "unpacking base $BASE_VERSION"
rm -rf "$KEVENT_CACHE/base"; mkdir -p "$KEVENT_CACHE/base"
tar -C "$KEVENT_CACHE/base" -xf "$tarball"
top=$(ls "$KEVENT_CACHE/base")
[ "$top" = linux ] || mv "$KEVENT_CACHE/base/$top" "$BASE_DIR"
echo "$BASE_VERSION $BASE_SHA256" >"$BASE_DIR/.kevent-base-ok"
rm -rf "$x"
