#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What a test tier (tiers.sh) needs, built on the host, each artefact once:
#   static, check: tools, kernel (cached), our modules (built once, by
#     clippy-driver: the lints come with the build, .clippy.log), the
#     kselftests, mdev-probe;
#   full (default; also make demo, bench, fuzz, guest-image): and the
#     guest image (the nested guests' kernel, both mdpy-fb, initramfs).
# Prints the kernel build directory on stdout.
# usage: build-all.sh [static|check|full]
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"
TIER=${1:-full}

"$MDEV_RS_TOP/tools/testing/vm/bootstrap-deps.sh" >&2
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh")
SRC=$(readlink -f "$KDIR/source")

# One build of the modules, by clippy-driver (CLIPPY=1: rustc's code with
# clippy's lints on top), from clean so that every crate is linted (an
# incremental build would lint only what changed); its log is what the
# static check "clippy" reads.
say "building the Rust modules against $KDIR (CLIPPY=1, log: .clippy.log)"
make -s -C "$KDIR" M="$MDEV_RS_TOP" clean >/dev/null 2>&1 || true
set -o pipefail
make -s KDIR="$KDIR" CLIPPY=1 modules 2>&1 | tee "$MDEV_RS_TOP/.clippy.log" >&2 ||
	die "module build failed (see .clippy.log)"

say "building the kselftests"
make -s -C tools/testing/selftests/vfio-mdev KHDR="$KDIR/usr/include" \
	KSELFTEST="$SRC/tools/testing/selftests" >&2

# mdev-probe (tools/mdev-probe, cargo): its target dir is out/cargo, kept
# between runs (a second build takes a second); the VM runs out/mdev-probe.
say "building mdev-probe (cargo, target dir out/cargo)"
mkdir -p "$MDEV_RS_TOP/out"
cargo build --release --locked --quiet --manifest-path "$MDEV_RS_TOP/tools/mdev-probe/Cargo.toml" \
	--target-dir "$MDEV_RS_TOP/out/cargo" >&2
install -m 755 "$MDEV_RS_TOP/out/cargo/release/mdev-probe" "$MDEV_RS_TOP/out/mdev-probe"
[ "$TIER" = full ] || { echo "$KDIR"; exit 0; }

# The nested guest boots its own small kernel (a debug kernel takes many
# minutes to boot under TCG inside TCG).
GUEST_KDIR=$(KFLAVOUR=guest "$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh")
cp "$GUEST_KDIR/arch/x86/boot/bzImage" "$MDEV_RS_TOP/out/nested-bzImage"

# The Rust guest driver, built against the nested guest's kernel in a copy of
# the sources (the in-tree build belongs to the test VM's kernel). The copy
# lives in the cache, outside the tree, one per checkout.
say "building the Rust guest driver (mdpy-fb) against the nested guest's kernel"
GSRC="$MDEV_RS_CACHE/guest-build-$(printf %s "$MDEV_RS_TOP" | sha256sum | cut -c1-12)"
mkdir -p "$GSRC"
rsync -a --delete --exclude generated --exclude '*.o' --exclude '*.ko' --exclude '.*.cmd' \
	--exclude '*.mod' --exclude '*.mod.c' --exclude '*.rmeta' --exclude '*.d' \
	--exclude Module.symvers --exclude modules.order \
	"$MDEV_RS_TOP/Kbuild" "$MDEV_RS_TOP/rust" "$MDEV_RS_TOP/mdpy-fb" "$GSRC/"
# mdpy-fb includes the device definition it shares with mdpy.
mkdir -p "$GSRC/mdpy"
rsync -a "$MDEV_RS_TOP/mdpy/defs.rs" "$GSRC/mdpy/"
flock "$GSRC/.lock" make -s -C "$GUEST_KDIR" M="$GSRC" LLVM= RUSTC="$RUSTC" BINDGEN="$BINDGEN" \
	HOSTRUSTC="$RUSTC" modules >&2
say "building the guest image (make guest-image; the nested guests boot it): out/guest-image/"
export KHDR=$KDIR/usr/include
mkdir -p "$MDEV_RS_TOP/out/guest-image"
ln -f "$MDEV_RS_TOP/out/nested-bzImage" "$MDEV_RS_TOP/out/guest-image/bzImage"
"$MDEV_RS_TOP/tools/testing/vm/nested/build-initramfs.sh" "$MDEV_RS_TOP/out/guest-image/initramfs.cpio.gz" \
	"$GSRC/mdpy-fb/mdpy-fb.ko" "$GUEST_KDIR/samples/vfio-mdev/mdpy-fb.ko" >&2
rm -f "$MDEV_RS_TOP"/out/nested-*.cpio.gz
say "building the host-side checkers (dma-buf reader, the hostile guest's plane checker)"
gcc -O2 -Wall -Wextra -o "$MDEV_RS_TOP/out/mbochs-dmabuf-read" "$MDEV_RS_TOP/tools/testing/vm/mbochs-dmabuf-read.c" >&2
gcc -O2 -Wall -Wextra -o "$MDEV_RS_TOP/out/hostile-plane-check" "$MDEV_RS_TOP/tools/testing/vm/hostile-plane-check.c" >&2
echo "$KDIR"
