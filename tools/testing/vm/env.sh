# shellcheck shell=bash
# Shared settings for the bootstrap, build, test and demo scripts.
# Sourced, never executed.

MDEV_RS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MDEV_RS_CACHE=${MDEV_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdev-rs}
export RUSTC=${RUSTC:-/usr/bin/rustc}
export BINDGEN=${BINDGEN:-bindgen}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
# pip --user / pyenv shims: make sure vng is found wherever pip put it.
if command -v python3 >/dev/null; then
	PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null):$PATH"
fi
export PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
export CLIPPY_DRIVER=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
export RUSTFMT=${RUSTFMT:-/usr/bin/rustfmt}
