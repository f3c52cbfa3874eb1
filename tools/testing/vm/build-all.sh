#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Everything the VM runs needs, built on the host: tools, kernel (cached),
# our modules, the kselftest, the nested guest's initramfs.
# Prints the kernel build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"

"$MDEV_RS_TOP/tools/testing/vm/bootstrap-deps.sh" >&2
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh")
SRC=$(readlink -f "$KDIR/source")

say "building the Rust modules against $KDIR"
make -s KDIR="$KDIR" modules >&2

say "building the kselftest"
make -s -C tools/testing/selftests/vfio-mdev KHDR="$KDIR/usr/include" \
	KSELFTEST="$SRC/tools/testing/selftests" >&2

# The nested guest boots its own small kernel (a debug kernel takes many
# minutes to boot under TCG inside TCG).
GUEST_KDIR=$(KFLAVOUR=guest "$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh")
mkdir -p "$MDEV_RS_TOP/out"
cp "$GUEST_KDIR/arch/x86/boot/bzImage" "$MDEV_RS_TOP/out/nested-bzImage"
say "building the nested guest initramfs (busybox, fbdraw, C mdpy-fb.ko)"
"$MDEV_RS_TOP/tools/testing/vm/nested/build-initramfs.sh" \
	"$MDEV_RS_TOP/out/nested-c-mdpy-fb.cpio.gz" "$GUEST_KDIR/samples/vfio-mdev/mdpy-fb.ko" >&2
echo "$KDIR"
