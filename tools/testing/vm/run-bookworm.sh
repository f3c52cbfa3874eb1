#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Phase "bookworm" of make check-full: the README's first steps on a stock
# Debian 12, in a clean chroot (no VM): a fresh copy of a debootstrap'd
# bookworm (minbase), in which bootstrap-deps.sh installs everything it
# runs from Debian (cargo included: Debian's cargo-web when there is no
# cargo) and virtme-ng in a venv (never pip --break-system-packages), then
# `make KDIR=<the test kernel>` builds the three modules with that
# chroot's own rustc.
#
# Cached: the minbase as a tarball; the .debs apt downloads (bound as the
# chroot's /var/cache/apt/archives, like a local mirror); cargo's registry
# and build directory (CARGO_TARGET_DIR: `cargo install bindgen-cli`
# reuses the compiled crates). Each run starts from the tarball: nothing
# installed carries over.
# Writes OUT/summary.tap. usage: run-bookworm.sh OUT KDIR
set -uo pipefail
. "$(dirname "$0")/env.sh"
OUT=$1 KDIR=$2
rm -rf "$OUT"; mkdir -p "$OUT"
SUM=$OUT/summary.tap
: > "$SUM"
add() { echo "$1" >> "$SUM"; }
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=$MDEV_RS_CACHE/bookworm-minbase.tar
debs=$MDEV_RS_CACHE/bookworm-debs
root=$MDEV_RS_CACHE/bookworm-root
mkdir -p "$debs" "$MDEV_RS_CACHE/bookworm-cargo-registry" "$MDEV_RS_CACHE/bookworm-cargo-target"
t0=$SECONDS

if [ ! -s "$base" ]; then
	say "bookworm: debootstrap --variant=minbase bookworm (once; cached as $base)"
	rm -rf "$root"
	if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" > "$OUT/debootstrap.log" 2>&1; then
		add "not ok - bookworm: debootstrap failed (see out/test/bookworm/debootstrap.log)"
		exit 0
	fi
	tar -C "$root" -cf "$base.tmp" . && mv "$base.tmp" "$base"
fi
say "bookworm: a clean chroot from $base"
rm -rf "$root"; mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A Debian 12 install's sources (debootstrap writes only the release's own):
# its security and updates suites carry today's rustc-web.
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
	"$MIRROR" "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
# As in any chroot: packages' maintainer scripts must not start daemons.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
# The tree as a fresh clone has it, and the test kernel's build tree (read
# only: M= builds write into M), at their own paths.
src=$root/src/mdev-rs
mkdir -p "$src"
(cd "$MDEV_RS_TOP" && git ls-files -z | rsync -a --from0 --files-from=- . "$src/")

# Where this machine reaches the registries through a TLS proxy with a CA
# of its own (its SSL_CERT_FILE and the like are set), the chroot gets that
# bundle and the same variables: the network's trust, not the system's.
ca_env=()
if [ -n "${SSL_CERT_FILE:-}" ] && [ -r "$SSL_CERT_FILE" ]; then
	cp "$SSL_CERT_FILE" "$root/etc/mdev-rs-network-ca.crt"
	for v in SSL_CERT_FILE CURL_CA_BUNDLE PIP_CERT REQUESTS_CA_BUNDLE CARGO_HTTP_CAINFO; do
		ca_env+=("$v=/etc/mdev-rs-network-ca.crt")
	done
fi

# Runs a shell command line in the chroot as root, with a login's
# environment (PATH of Debian's root, HOME=/root: no cargo or rustup of this
# machine).
in_root() { # CMD
	local CHROOT_ENV=(CARGO_TARGET_DIR=/root/cargo-target "${ca_env[@]}")
	chroot_run "$root" "$1" \
		"$KDIR==ro" "$(readlink -f "$KDIR/source")==ro" \
		"$MDEV_RS_CACHE/bookworm-debs=/var/cache/apt/archives" \
		"$MDEV_RS_CACHE/bookworm-cargo-registry=/root/.cargo/registry" \
		"$MDEV_RS_CACHE/bookworm-cargo-target=/root/cargo-target"
}

say "bookworm: tools/testing/vm/bootstrap-deps.sh in the chroot (apt, cargo install bindgen-cli, pip in a venv)"
# (bootstrap-deps.sh needs sudo only when not root; the chroot's apt needs
# its package lists first, as on any fresh install)
if in_root 'apt-get update -qq && cd /src/mdev-rs && tools/testing/vm/bootstrap-deps.sh' > "$OUT/bootstrap.log" 2>&1; then
	cargo=$(in_root 'command -v cargo; dpkg-query -W -f="\${Package} \${Version}" cargo-web 2>/dev/null' 2>/dev/null | tr '\n' ' ')
	vng=$(in_root 'ls -d /root/.cache/mdev-rs/venv/commands/vng && /root/.cache/mdev-rs/venv/commands/vng --version' 2>/dev/null | tr '\n' ' ')
	if grep -q -- '--break-system-packages' "$src/tools/testing/vm/bootstrap-deps.sh"; then
		add "not ok - bookworm: bootstrap-deps.sh uses pip --break-system-packages"
	elif [ -n "$vng" ] && [[ $cargo == /usr/bin/cargo* ]]; then
		add "ok - bookworm: bootstrap-deps.sh on a clean Debian 12 chroot: Debian's cargo (${cargo% }), virtme-ng in a venv (${vng% })"
	else
		add "not ok - bookworm: bootstrap-deps.sh ran, but cargo is '$cargo' and vng '$vng'"
	fi
else
	add "not ok - bookworm: bootstrap-deps.sh in a clean Debian 12 chroot: $(grep -m1 -E '^error|E: ' "$OUT/bootstrap.log" || tail -1 "$OUT/bootstrap.log") (see out/test/bookworm/bootstrap.log)"
	exit 0
fi

say "bookworm: make KDIR=$KDIR in the chroot (its own rustc)"
if in_root "cd /src/mdev-rs && . tools/testing/vm/env.sh && rustc --version && make KDIR=$KDIR modules" > "$OUT/build.log" 2>&1 &&
	[ -f "$src/mdpy/mdpy.ko" ] && [ -f "$src/mbochs/mbochs.ko" ] && [ -f "$src/mdpy-fb/mdpy-fb.ko" ]; then
	add "ok - bookworm: make builds mdpy.ko, mbochs.ko and mdpy-fb.ko in that chroot ($(grep -m1 '^rustc ' "$OUT/build.log"))"
else
	add "not ok - bookworm: make KDIR=... in a clean Debian 12 chroot: $(grep -m1 -E 'error' "$OUT/build.log" || tail -1 "$OUT/build.log") (see out/test/bookworm/build.log)"
fi
rm -rf "$root"
say "bookworm: $((SECONDS - t0))s"
exit 0
