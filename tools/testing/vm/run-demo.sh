#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (`make demo`): build everything, boot a VM with the Rust host
# drivers, run QEMU on mdpy mdevs (a nested guest draws through the Rust
# mdpy-fb) and on an mbochs mdev (the guest's bochs DRM driver draws, and
# sets new modes; each mode's scanout is read from the exported dma-buf, or
# with MBOCHS_E2E_GL=1 also dumped from QEMU's own GL display), and save the
# pictures as PNG.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh") || die "build failed"
OUT="$MDEV_RS_TOP/out/demo"
rm -rf "$OUT"; mkdir -p "$OUT"
: > "$OUT/results.txt"
"$MDEV_RS_TOP/tools/testing/vm/run-vm.sh" demo "$KDIR" "$OUT"
"$MDEV_RS_TOP/tools/testing/vm/post-checks.sh" "$OUT" >> "$OUT/results.txt"
cat "$OUT/results.txt"
png=$OUT/checks/mdpy-fb-rust-host-rust-guest-drawn-mdpy-xga.png
if [ -e "$png" ]; then
	say "the guest's screen, drawn by the Rust mdpy-fb through the Rust mdpy: $png"
	say "its framebuffer console: $(ls "$OUT"/checks/mdpy-fb-rust-host-rust-guest-fbcon.png)"
	say "a bochs DRM guest's screens through the Rust mbochs, read from its dma-bufs: $(ls "$OUT"/checks/e2e-mbochs-rust-dmabuf-*.png | tr '\n' ' ')"
	[ "${MBOCHS_E2E_GL:-0}" = 1 ] &&
		say "... and shown by QEMU (egl-headless): $(ls "$OUT"/checks/e2e-mbochs-rust-qemu-*.png | tr '\n' ' ')"
else
	die "no screenshot (see $OUT/vm-console.log)"
fi
! grep -q '^not ok' "$OUT/results.txt"
