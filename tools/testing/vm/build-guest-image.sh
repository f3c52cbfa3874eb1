#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make guest-image: a small guest for the mdpy and mbochs devices, the one
# the nested tests boot: out/guest-image/bzImage (7.3 with Rust, PCI, fbdev,
# the bochs DRM driver built in: tools/testing/kconfig/nested-guest.config)
# and initramfs.cpio.gz (busybox, the Rust and the C mdpy-fb, the test
# pattern's drawer). Booted without mdevrs.role= it loads mdpy-fb, draws the
# test pattern on every framebuffer and gives a shell on the serial console.
# Prints the QEMU command lines that boot it on an mdpy and an mbochs mdev.
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$MDEV_RS_TOP/tools/testing/vm/build-all.sh" full >/dev/null
img=$MDEV_RS_TOP/out/guest-image
for f in bzImage initramfs.cpio.gz; do [ -s "$img/$f" ] || die "no $img/$f"; done
cat <<MSG
guest image: $img/bzImage, $img/initramfs.cpio.gz
  (kernel $(file -b "$img/bzImage" | sed -n 's/.*version \([^ ]*\).*/\1/p'); mdevrs.guest=c boots the C sample's mdpy-fb)

On an mdpy mdev (region display: any QEMU display; -accel kvm where you have it):
  qemu-system-x86_64 -M q35 -m 512 -accel kvm -accel tcg \\
    -kernel $img/bzImage -initrd $img/initramfs.cpio.gz \\
    -append console=ttyS0 -serial mon:stdio \\
    -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/\$uuid,display=on -display gtk

On an mbochs mdev (dma-buf display: an OpenGL display; see Documentation/mdev-rs/usage.rst):
  qemu-system-x86_64 -M q35 -m 512 -accel kvm -accel tcg \\
    -kernel $img/bzImage -initrd $img/initramfs.cpio.gz \\
    -append console=ttyS0 -serial mon:stdio \\
    -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/\$uuid,display=on,xres=1024,yres=768 -display gtk,gl=on
MSG
