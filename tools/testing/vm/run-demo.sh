#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (`make demo`): build everything, boot a VM with the Rust mdpy,
# run QEMU on an mdpy-xga mdev with a nested guest that draws a test pattern
# through its guest framebuffer driver, and save QEMU's screendump as PNG.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh") || die "build failed"
OUT="$MDEV_RS_TOP/out/demo"
rm -rf "$OUT"; mkdir -p "$OUT"
: > "$OUT/results.txt"
"$MDEV_RS_TOP/tools/testing/vm/run-vm.sh" demo "$KDIR" "$OUT"
cat "$OUT/results.txt"
png=$(ls "$OUT"/*.png 2>/dev/null | head -1)
if [ -n "$png" ]; then
	say "screenshot of the guest display, taken through the Rust mdpy: $png"
else
	die "no screenshot (see $OUT/vm-console.log)"
fi
! grep -q '^not ok' "$OUT/results.txt"
