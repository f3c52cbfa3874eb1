#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the guest image's initramfs (make guest-image; the nested guests of
# the tests boot the same one): busybox, the programs (fbdraw, kmsdraw,
# hostile), both mdpy guest drivers (/modules/rust/mdpy-fb.ko,
# /modules/c/mdpy-fb.ko) and the roles' init scripts (init chooses one by
# mdevrs.role=). KHDR: a kernel's installed uapi headers (kmsdraw uses the
# DRM ones).
# usage: KHDR=dir build-initramfs.sh OUT.cpio.gz RUST_MDPY_FB.ko C_MDPY_FB.ko
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1 rust_ko=$2 c_ko=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,tmp,modules/rust,modules/c}
cp /bin/busybox "$work/bin/busybox"
for init in "$here"/init "$here"/init-*; do
	install -m 755 "$init" "$work/$(basename "$init")"
done
gcc -O2 -static -o "$work/fbdraw" "$here/fbdraw.c"
gcc -O2 -static -I "$KHDR" -o "$work/kmsdraw" "$here/kmsdraw.c"
gcc -O2 -Wall -static -o "$work/hostile" "$here/hostile.c"
cp "$rust_ko" "$work/modules/rust/mdpy-fb.ko"
cp "$c_ko" "$work/modules/c/mdpy-fb.ko"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
