# SPDX-License-Identifier: GPL-2.0
#
# End-to-end test phase of mbochs (dma-buf display), sourced by guest-run.sh
# inside the test VM (uses its OUT, KDIR, TOP, NESTED_TIMEOUT, log, result, qmp).
# Runs in MODE test and demo alike.
#
# Host side: the Rust mbochs, one mbochs-medium mdev. QEMU boots a nested
# guest (OUT/nested-bzImage, initramfs out/nested-mbochs.cpio.gz running
# nested/init-mbochs) with the mdev as a vfio-pci device. The guest kernel's
# own bochs DRM driver drives it (DISPI registers in BAR2, VRAM in BAR0, EDID)
# and gives /dev/fb0 through DRM fbdev emulation; nested/fbdraw draws the test
# pattern on it and, with --flush, commits the whole plane (the fbdev is a
# shadow buffer copied to VRAM asynchronously, page by page, otherwise; a
# CI once read one page of the frame as a black row). Then QEMU is paused (QMP stop) and mbochs-dmabuf-read does
# what a display would: it borrows QEMU's VFIO device fd (pidfd_getfd),
# queries the primary plane, exports it as a dma-buf, mmaps it and writes the
# pixels to OUT/checks/e2e-mbochs-rust-dmabuf.ppm, which post-checks.sh
# compares with the pattern on the host, pixel for pixel.
#
# Why not QEMU's own display: for a dma-buf device QEMU needs an OpenGL
# display (display=on without one: "vfio-display-dmabuf: opengl not
# available"). -display egl-headless on the vgem render node with Mesa 22.3's
# software rasteriser starts, but QEMU crashes (llvmpipe segfault) as soon as
# the guest sets a mode: Mesa (kms_swrast) maps the imported dma-buf with
# DRM_IOCTL_MODE_MAP_DUMB, which the kernel refuses on a render node (EACCES)
# and for any imported object (EINVAL, drm_gem_dumb_map_offset()), and
# llvmpipe then reads through a NULL mapping. So QEMU runs with display=off
# and the test client reads the dma-buf. See Documentation/mdev-rs/testing.rst.
#
# Why not the C sample: its dma-buf cannot be mmapped (defect 16; importing it
# into vgem does not help, see above), so there is nothing to read its pixels
# with; and a second export of the id QEMU would hold is defect 4 (refcount
# underflow, WARNING).

MBOCHS_E2E_TYPE=mbochs-medium

mbochs_e2e_run() { # IMPL KO
	local impl=$1 ko=$2 name=e2e-mbochs-$1
	local serial=$OUT/$name-serial.log qlog=$OUT/$name-qemu.log sock=/tmp/qmp-$name.sock
	local initrd=$TOP/out/nested-mbochs.cpio.gz reader=$TOP/out/mbochs-dmabuf-read
	local uuid qpid t=0 ok=0 fb fbname fbsize fbbpp
	echo "$name-dmabuf" >> "$OUT/expected-checks.txt"
	log "end to end $name: host $impl mbochs $MBOCHS_E2E_TYPE, nested guest with bochs DRM"
	insmod "$ko" || { result "not ok - $name: insmod $ko"; return; }
	uuid=$(cat /proc/sys/kernel/random/uuid)
	if ! echo "$uuid" > "/sys/class/mdev_bus/mbochs/mdev_supported_types/$MBOCHS_E2E_TYPE/create"; then
		result "not ok - $name: create $MBOCHS_E2E_TYPE"; rmmod mbochs; return
	fi
	rm -f "$sock" "$serial"
	# Not -daemonize: QEMU's stderr (and a crash) stays in $qlog.
	qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config -display none \
		-kernel "$OUT/nested-bzImage" -initrd "$initrd" \
		-append "console=ttyS0 vt.global_cursor_default=0 consoleblank=0 panic=-1 loglevel=4" \
		-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,display=off,id=gpu0" \
		-serial "file:$serial" -qmp "unix:$sock,server=on,wait=off" > "$qlog" 2>&1 &
	qpid=$!
	while [ $t -lt "$NESTED_TIMEOUT" ]; do
		if grep -q NESTED-PATTERN-DRAWN "$serial" 2>/dev/null; then ok=1; break; fi
		grep -q NESTED-FAIL "$serial" 2>/dev/null && break
		kill -0 "$qpid" 2>/dev/null || break
		sleep 5; t=$((t + 5))
		[ $((t % 60)) -eq 0 ] && log "  nested guest booting under TCG-in-TCG... ${t}s"
	done
	fb=$(tr -d '\r' < "$serial" | sed -n 's/^NESTED-FB //p' | head -1)
	if [ $ok = 1 ]; then
		# "NAME WIDTH,HEIGHT BPP STRIDE" of the guest's fb0
		read -r fbname fbsize fbbpp _ <<< "$fb"
		if [ "$fbname" = bochs-drmdrmfb ] && [ "$fbbpp" = 32 ] && [ -n "$fbsize" ]; then
			result "ok - $name: the guest's bochs DRM drives the mdev: fb0 $fb, pattern drawn after ~${t}s"
		else
			result "not ok - $name: guest fb0 is '$fb', want bochs-drmdrmfb at 32 bpp"
		fi
		log "  nested guest drew on fb0 ($fb) after ~${t}s; pausing QEMU, reading the dma-buf"
		sleep 2
		if ! qmp "$sock" '{"execute":"stop"}' >/dev/null; then
			result "not ok - $name: QMP stop failed"
		fi
		mkdir -p "$OUT/checks"
		if "$reader" "$qpid" "$OUT/checks/$name-dmabuf.ppm" > "$OUT/$name-dmabuf.log" 2>&1; then
			echo pattern > "$OUT/checks/$name-dmabuf.want"
			result "ok - $name: QUERY_GFX_PLANE + GET_GFX_DMABUF + mmap on QEMU's device fd: $(head -1 "$OUT/$name-dmabuf.log")"
		else
			result "not ok - $name: reading the dma-buf: $(tr '\n' ' ' < "$OUT/$name-dmabuf.log")"
		fi
		log "  $(tr '\n' ' ' < "$OUT/$name-dmabuf.log")"
	else
		result "not ok - $name: nested guest did not draw within ${t}s (see $(basename "$serial"), $(basename "$qlog"))"
	fi
	qmp "$sock" '{"execute":"quit"}' >/dev/null 2>&1
	t=0
	while kill -0 "$qpid" 2>/dev/null && [ $t -lt 20 ]; do sleep 1; t=$((t + 1)); done
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	echo 1 > "/sys/bus/mdev/devices/$uuid/remove" || result "not ok - $name: remove mdev"
	rmmod mbochs || result "not ok - $name: rmmod mbochs"
}

mbochs_e2e_phase() {
	log "end to end mbochs: the C sample is not run (its dma-buf cannot be mmapped, defect 16)"
	mbochs_e2e_run rust "$TOP/mbochs/mbochs.ko"
}
