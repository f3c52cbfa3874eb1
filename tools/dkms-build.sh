#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# DKMS's build step (dkms.conf, MAKE[0]): builds mdpy, mbochs and mdpy-fb
# for the kernel KERNELVER whose build tree (DKMS's kernel_source_dir) is
# KSRC, and leaves them where dkms.conf looks (mdpy/mdpy.ko, ...):
#  - a tree with the kernel crate's Rust metadata, made by the rustc on
#    PATH (its CONFIG_RUSTC_VERSION_TEXT is `rustc --version`): make KDIR=KSRC;
#  - Debian's kernels, whose linux-headers have no Rust metadata: the
#    metadata is reproduced with Debian's own rustc in a trixie chroot and
#    the modules built there (bootstrap-debian-kernel.sh, which downloads
#    that kernel's packages; cached in root's ~/.cache/mdev-rs);
#  - anything else: an error that says what the tree lacks.
# usage: dkms-build.sh KERNELVER KSRC
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kver=${1:?usage: dkms-build.sh KERNELVER KSRC} ksrc=${2:?usage: dkms-build.sh KERNELVER KSRC}
fail() { echo "dkms-build.sh: $*" >&2; exit 1; }
cfg=$ksrc/.config
[ -f "$cfg" ] || fail "no kernel build tree at $ksrc (install linux-headers-$kver)"
grep -qx CONFIG_RUST=y "$cfg" || fail "$kver is built without Rust (CONFIG_RUST): these modules need it"
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$cfg")
have=$(rustc --version 2>/dev/null || echo "no rustc")
if [ -e "$ksrc/rust/libkernel.rmeta" ] && [ "$have" = "$want" ]; then
	exec make -C "$top" KDIR="$ksrc" RUSTC="$(command -v rustc)" modules
fi
case $kver in
*+deb[0-9]*-*)
	DEBIAN_KERNEL_RELEASE=$kver "$top/tools/testing/vm/bootstrap-debian-kernel.sh" \
		--modules "$top/.debian-build" > /dev/null
	for m in mdpy/mdpy mbochs/mbochs mdpy-fb/mdpy-fb; do
		cp "$top/.debian-build/$m.ko" "$top/$m.ko"
	done ;;
*)
	fail "$ksrc has no Rust metadata made by this machine's rustc ($have; $kver was built with $want): build the modules against a Rust-enabled build tree of that kernel made with its rustc" ;;
esac
