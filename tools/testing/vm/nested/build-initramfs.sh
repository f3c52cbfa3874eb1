#!/usr/bin/env bash
# Builds the nested guest's initramfs: busybox, fbdraw, kmsdraw and the given
# guest driver modules. KHDR: a kernel's installed uapi headers (kmsdraw uses
# the DRM ones).
# NESTED_PROGS: more C programs (paths) to build into it, each as /NAME.
# usage: KHDR=dir [NESTED_INIT=script] [NESTED_PROGS=...] build-initramfs.sh OUT.cpio.gz module.ko...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1; shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,modules}
cp /bin/busybox "$work/bin/busybox"
cp "${NESTED_INIT:-$here/init}" "$work/init"
chmod +x "$work/init"
gcc -O2 -static -o "$work/fbdraw" "$here/fbdraw.c"
gcc -O2 -static -I "$KHDR" -o "$work/kmsdraw" "$here/kmsdraw.c"
for p in ${NESTED_PROGS:-}; do gcc -O2 -Wall -static -o "$work/$(basename "$p" .c)" "$p"; done
for m in "$@"; do cp "$m" "$work/modules/"; done
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
