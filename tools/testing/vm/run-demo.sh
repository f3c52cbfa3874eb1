#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (`make demo`): build everything, boot a VM with the Rust host
# drivers, run QEMU on mdpy mdevs (a nested guest draws through the Rust
# mdpy-fb) and on an mbochs mdev (the guest's bochs DRM driver draws, and
# sets new modes; each mode's picture is what QEMU's own GL display shows,
# read by its D-Bus display client, and the dma-buf read back as a second
# witness), and save the pictures as PNG.
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
	[ "${MBOCHS_E2E_GL:-1}" = 1 ] &&
		say "a bochs DRM guest's screens through the Rust mbochs, as QEMU's D-Bus GL display shows them: $(ls "$OUT"/checks/e2e-mbochs-rust-qemu-*.png | tr '\n' ' ')"
	say "... and read back from its dma-bufs: $(ls "$OUT"/checks/e2e-mbochs-rust-dmabuf-*.png | tr '\n' ' ')"
else
	die "no screenshot (see $OUT/vm-console.log)"
fi
! grep -q '^not ok' "$OUT/results.txt"
