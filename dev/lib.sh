# SPDX-License-Identifier: GPL-2.0
# Shared settings for the kevent driver scripts. Sourced, not run.

KEVENT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEVENT_CACHE=${KEVENT_CACHE:-$HOME/.cache/kevent}

# The pinned base: Debian's linux-source-7.3 from trixie-backports.
BASE_PKG=linux-source-7.3
BASE_VERSION=$(sed -n 's/^version=//p' "$KEVENT_REPO/dev/base.pin")
BASE_SHA256=$(sed -n 's/^tarball_sha256=//p' "$KEVENT_REPO/dev/base.pin")
BASE_TARBALL_NAME=$(sed -n 's/^tarball=//p' "$KEVENT_REPO/dev/base.pin")

BASE_DIR=$KEVENT_CACHE/base/linux      # pristine unpacked base (never edited)
TREE_DIR=$KEVENT_CACHE/tree            # base + patches + overlay (kbuild source)
LLVM_SUFFIX=-19
MAKE_FLAGS=(LLVM=$LLVM_SUFFIX)

export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'kevent: error: %s\n' "$*" >&2; exit 1; }

# Paths at the repo root that are not part of the kernel overlay.
is_project_path() {
	case "$1" in
	dev/*|patches/*|.ci/*|README.md|.git*|.rustfmt.toml) return 0 ;;
	*) return 1 ;;
	esac
}
