#!/usr/bin/env bash
# Install the host tools: Debian packages, bindgen (cargo), virtme-ng (pip).
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

PKGS=(rustc-web rust-web-src libclang-19-dev clang-19 llvm-19 lld-19 qemu-system-x86
      busybox-static flex bison bc libelf-dev libssl-dev cpio kmod xz-utils
      gcc make python3-pip curl ca-certificates socat rsync
      rust-web-clippy rustfmt-web)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "apt: installing ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q '0\.72\.1'; then
	say "cargo: installing bindgen-cli 0.72.1 (about a minute)"
	cargo install --locked --quiet bindgen-cli@0.72.1
fi

if ! command -v vng >/dev/null; then
	say "pip: installing virtme-ng"
	python3 -m pip install --quiet virtme-ng==1.42 || python3 -m pip install --quiet virtme-ng
fi
command -v vng >/dev/null || die "vng not on PATH after pip install"
"$RUSTC" --version >/dev/null || die "no rustc at $RUSTC"
say "host tools ready: $("$RUSTC" --version), $("$BINDGEN" --version 2>&1 | head -1), vng $(vng --version 2>&1 | head -1)"
