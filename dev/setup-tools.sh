#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install every tool the kevent build needs. Idempotent: a second run only checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DEB_PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev qemu-system-x86 bc flex bison
	  libelf-dev libssl-dev cpio busybox-static python3-venv python3-ply python3-git perl make
	  xz-utils kmod rsync)
BINDGEN_VERSION=0.73.2

missing=()
for p in "${DEB_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

command -v rustup >/dev/null || die "rustup not found: the kevent build needs rustc from rustup"
rustup component list --installed | grep -q '^rust-src' || {
	log "adding rustup component rust-src"
	rustup component add rust-src
}
rustup target list --installed | grep -q '^x86_64-unknown-linux-musl$' || {
	log "adding rustup target x86_64-unknown-linux-musl"
	rustup target add x86_64-unknown-linux-musl
}
if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
fi
exit 0
