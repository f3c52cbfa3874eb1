#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What `make fuzz` needs on the KASAN kernel: the kernel itself
# (KFLAVOUR=kasan: the test kernel's config plus kasan.config, built with
# clang, cached like the others) and the Rust modules built against it, in a
# copy of the sources outside the tree (the in-tree build belongs to the
# test kernel). Prints "KDIR MODDIR" on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"

KDIR=$(KFLAVOUR=kasan "$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh")
MODDIR="$MDEV_RS_CACHE/kasan-build-$(printf %s "$MDEV_RS_TOP" | sha256sum | cut -c1-12)"
say "building the Rust modules against the KASAN kernel in $MODDIR"
mkdir -p "$MODDIR"
rsync -a --delete --exclude generated --exclude '*.o' --exclude '*.ko' --exclude '.*.cmd' \
	--exclude '*.mod' --exclude '*.mod.c' --exclude '*.rmeta' --exclude '*.d' \
	--exclude Module.symvers --exclude modules.order \
	"$MDEV_RS_TOP/Kbuild" "$MDEV_RS_TOP/rust" "$MDEV_RS_TOP/mdpy" "$MDEV_RS_TOP/mbochs" \
	"$MDEV_RS_TOP/mdpy-fb" "$MODDIR/"
flock "$MODDIR/.lock" make -s -C "$KDIR" M="$MODDIR" LLVM="${KASAN_LLVM:--19}" RUSTC="$RUSTC" \
	BINDGEN="$BINDGEN" HOSTRUSTC="$RUSTC" modules >&2
echo "$KDIR $MODDIR"
