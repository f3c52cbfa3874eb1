# SPDX-License-Identifier: GPL-2.0
#
# End-to-end test phase of mbochs (dma-buf display), sourced by guest-run.sh
# inside the test VM (uses its OUT, KDIR, TOP, NESTED_TIMEOUT, log, result,
# qmp). Runs in MODE test and demo alike.
#
# One mbochs-medium mdev, one nested guest (OUT/nested-bzImage, initramfs
# out/nested-mbochs.cpio.gz running nested/init-mbochs) per implementation.
# The guest kernel's own bochs DRM driver drives the device. Steps, each a
# new mode and so a new plane and dma-buf, at each of which the guest waits
# for the host:
#   fbdev           the pattern on /dev/fb0 (DRM fbdev emulation)
#   kms-WxH ...     the pattern on a new buffer in mode WxH, set by the
#                   guest's KMS client (nested/kmsdraw.c) while QEMU runs
# At each step, with QEMU paused, mbochs-dmabuf-read borrows QEMU's VFIO
# device fd (pidfd_getfd), queries the primary plane, exports it as a
# dma-buf and mmaps it (OUT/checks/NAME-dmabuf-STEP.ppm); post-checks.sh
# compares it with the pattern on the host, pixel for pixel, and its size
# with the step's mode.
#
# QEMU's own GL display (MBOCHS_E2E_GL=1 on the host): -device
# vfio-pci,...,display=on with -display egl-headless on the render node of
# vgem, and a QMP screendump of the device at each step
# (OUT/checks/NAME-qemu-STEP.ppm). With Mesa 25.0.7 QEMU crashes (llvmpipe
# reads through a NULL mapping) at the first frame, for any exporter: Mesa's
# kms_swrast, the only driver GBM gives a render node without a GPU driver,
# cannot import a dma-buf (Documentation/mdev-rs/testing.rst has the source
# evidence). So it is off by default, and the run says so.
#
# The C sample runs the same guest, as a differential line: its dma-buf
# cannot be mmapped (defect 16) and a second export of an id QEMU holds is
# defect 4, so it is only queried (--query-only), which also shows defect 3
# (the first QUERY_GFX_PLANE of each new mode fails).

MBOCHS_E2E_TYPE=mbochs-medium
# The preferred mode of the EDID QEMU writes (vfio-pci xres/yres): bochs
# DRM's fbdev takes it.
MBOCHS_E2E_FBDEV=1024x768
# The modes the guest's KMS client then sets, in turn: smaller, then larger.
MBOCHS_E2E_MODES="800x600 1280x1024"
MBOCHS_E2E_NODE=""	# the render node of vgem, once loaded
# QEMU's own GL display: see above. Set on the host (run-vm.sh).
MBOCHS_E2E_GL=$(cat "$OUT/mbochs-e2e-gl" 2>/dev/null || echo 0)

. "$TOP/tools/testing/vm/mbochs-c-kmemleak.sh"

# insmod KO and the modules it depends on, from KDIR (the VM has no
# /lib/modules for the test kernel).
mbochs_e2e_insmod() { # KO
	local dep path
	for dep in $(modinfo -F depends "$1" | tr , ' '); do
		grep -q "^${dep//-/_} " /proc/modules && continue
		path=$(grep -m1 -E "(^|/)${dep//[-_]/[-_]}\.(k)?o$" "$KDIR/modules.order")
		[ -n "$path" ] || { echo "no module $dep in $KDIR/modules.order" >&2; return 1; }
		mbochs_e2e_insmod "$KDIR/${path%.*}.ko" || return 1
	done
	insmod "$1"
}

# Loads vgem and finds its render node, for QEMU's GL display.
mbochs_e2e_gl_setup() {
	local n i=0
	if ! grep -q '^vgem ' /proc/modules && ! mbochs_e2e_insmod "$KDIR/drivers/gpu/drm/vgem/vgem.ko"; then
		result "not ok - e2e-mbochs: load vgem (a render node for QEMU's GL display)"
		return 1
	fi
	while [ $i -lt 10 ]; do
		for n in /sys/class/drm/renderD*; do
			case $(readlink -f "$n/device") in *vgem*) MBOCHS_E2E_NODE=/dev/dri/${n##*/} ;; esac
		done
		[ -n "$MBOCHS_E2E_NODE" ] && [ -c "$MBOCHS_E2E_NODE" ] && break
		sleep 1; i=$((i + 1))
	done
	if [ -z "$MBOCHS_E2E_NODE" ] || [ ! -c "$MBOCHS_E2E_NODE" ]; then
		result "not ok - e2e-mbochs: vgem loaded but no render node of it in /dev/dri ($(ls /dev/dri 2>&1))"
		return 1
	fi
	log "  GL display: egl-headless on $MBOCHS_E2E_NODE (vgem)"
}

# Sends the nested guest its go-ahead on its ttyS1.
mbochs_e2e_go() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"go\n"); s.close()' "$1"
}

# Waits until the serial log has LINE (a fixed string); fails on
# NESTED-DONE, QEMU's exit or the timeout.
mbochs_e2e_wait() { # SERIAL QEMU_PID LINE TIMEOUT
	local t=0
	while [ $t -lt "$4" ]; do
		grep -qF "$3" "$1" 2>/dev/null && return 0
		[ "$3" != NESTED-DONE ] && grep -q NESTED-DONE "$1" 2>/dev/null && return 1
		kill -0 "$2" 2>/dev/null || return 1
		sleep 2; t=$((t + 2))
		[ $((t % 60)) -eq 0 ] && log "  ... waiting for '$3' (${t}s)"
	done
	return 1
}

# One step's pictures: QEMU's screendump of the device (GL display only),
# for Rust the dma-buf read back through QEMU's device fd, for C the plane
# queried through it, twice (defect 3), into OUT/NAME-query-STEP.log.
mbochs_e2e_shoot() { # IMPL NAME SOCK QEMU_PID STEP SIZE
	local impl=$1 name=$2 sock=$3 qpid=$4 step=$5 size=$6 shot
	mkdir -p "$OUT/checks"
	shot=$OUT/checks/$name-qemu-$step
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		if qmp "$sock" "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$shot.ppm\",\"device\":\"gpu0\"}}" \
			> "$OUT/$name-qmp.log" 2>&1; then
			echo "pattern $size" > "$shot.want"
		else
			result "not ok - $name-qemu-$step: QMP screendump failed: $(tr '\n' ' ' < "$OUT/$name-qmp.log")"
		fi
	fi
	if ! qmp "$sock" '{"execute":"stop"}' >/dev/null; then
		result "not ok - $name-dmabuf-$step: QMP stop failed"
	fi
	if [ "$impl" = c ]; then
		for _ in 1 2; do
			"$TOP/out/mbochs-dmabuf-read" "$qpid" /dev/null --query-only 2>&1 | head -1
		done > "$OUT/$name-query-$step.log"
		log "  $step: $(tr '\n' ' ' < "$OUT/$name-query-$step.log")"
	else
		shot=$OUT/checks/$name-dmabuf-$step
		if "$TOP/out/mbochs-dmabuf-read" "$qpid" "$shot.ppm" > "$OUT/$name-dmabuf-$step.log" 2>&1; then
			echo "pattern $size" > "$shot.want"
			log "  $step: dma-buf read back: $(head -1 "$OUT/$name-dmabuf-$step.log")"
		else
			result "not ok - $name-dmabuf-$step: reading the dma-buf: $(tr '\n' ' ' < "$OUT/$name-dmabuf-$step.log")"
		fi
	fi
	qmp "$sock" '{"execute":"cont"}' >/dev/null || result "not ok - $name: QMP cont failed"
}

# The C sample's line. GL display: what QEMU made of it. Otherwise: what
# its plane said at each step (the first query of a new mode fails with
# ENOMEM, defect 3; the second must give the mode).
mbochs_e2e_c_verdict() { # NAME STATUS REACHED QLOG STEPS
	local name=$1 status=$2 reached=$3 qlog=$4 steps=$5 how segv step size first second bad=""
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		segv=$(dmesg | grep -E 'segfault at|general protection' | grep -E 'qemu|llvmpipe' | tail -1 | sed 's/^\[[ .0-9]*\] //')
		if [ "$status" = running ]; then how="QEMU kept running"
		elif [ "$status" -gt 128 ]; then how="QEMU was killed by signal $((status - 128))"
		else how="QEMU exited with status $status"; fi
		how="$how; steps the guest reached: ${reached:-none}${segv:+; kernel: $segv}"
		result "# $name (differential, GL display): $how; last QEMU output: $(tail -1 "$qlog")"
		return
	fi
	how=""
	for step in $steps; do
		case $step in fbdev) size=$MBOCHS_E2E_FBSIZE ;; *) size=${step#kms-} ;; esac
		first=$(sed -n 1p "$OUT/$name-query-$step.log" 2>/dev/null)
		second=$(sed -n 2p "$OUT/$name-query-$step.log" 2>/dev/null)
		how="$how $step: first query '${first:-none}', second '${second:-none}';"
		[[ $first == *ENOMEM* || $first == *"Cannot allocate memory"* ]] || bad="$bad $step: first query did not fail (defect 3);"
		[[ $second == "plane: $size "* ]] || bad="$bad $step: second query is not the $size plane;"
	done
	if [ "$reached" = "$steps" ] && [ -z "$bad" ]; then
		result "ok - $name (differential): the C sample's plane follows the guest's mode changes, each new mode's first QUERY_GFX_PLANE failing (defect 3); its dma-buf is not read (defect 16, defect 4):$how"
	else
		result "not ok - $name (differential): steps reached '${reached:-none}' of '$steps';$bad$how"
	fi
}

mbochs_e2e_run() { # IMPL KO
	local impl=$1 ko=$2 name=e2e-mbochs-$1
	local serial=$OUT/$name-serial.log qlog=$OUT/$name-qemu.log sock=/tmp/qmp-$name.sock ctl=/tmp/ctl-$name.sock
	local initrd=$TOP/out/nested-mbochs.cpio.gz uuid qpid t status=running reached="" step size fb
	local fbname fbsize fbbpp steps="fbdev" display=none dev
	for size in $MBOCHS_E2E_MODES; do steps="$steps kms-$size"; done
	dev="vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID,id=gpu0,display=off"
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		display="egl-headless,rendernode=$MBOCHS_E2E_NODE"
		dev="${dev%,display=off},display=on,xres=${MBOCHS_E2E_FBDEV%x*},yres=${MBOCHS_E2E_FBDEV#*x}"
	fi
	if [ "$impl" = rust ]; then
		for step in $steps; do
			[ "$MBOCHS_E2E_GL" = 1 ] && echo "$name-qemu-$step" >> "$OUT/expected-checks.txt"
			echo "$name-dmabuf-$step" >> "$OUT/expected-checks.txt"
		done
	fi
	log "end to end $name: host $impl mbochs $MBOCHS_E2E_TYPE, nested guest with bochs DRM, -display $display"
	insmod "$ko" || { result "not ok - $name: insmod $ko"; return; }
	uuid=$(cat /proc/sys/kernel/random/uuid)
	if ! echo "$uuid" > "/sys/class/mdev_bus/mbochs/mdev_supported_types/$MBOCHS_E2E_TYPE/create"; then
		result "not ok - $name: create $MBOCHS_E2E_TYPE"; rmmod mbochs; return
	fi
	rm -f "$sock" "$ctl" "$serial"
	# QEMU's display and the plane queries allocate in the C module
	[ "$impl" = c ] && mbochs_c_begin "qemu-system-x86|mbochs-dmabuf-r"
	# Not -daemonize: QEMU's stderr (and a crash) stays in $qlog and its
	# exit status with us. No core dumps.
	(
		ulimit -c 0
		# no shader cache: the VM's root is read-only
		export MESA_SHADER_CACHE_DISABLE=true
		exec qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config \
			-display "$display" \
			-kernel "$OUT/nested-bzImage" -initrd "$initrd" \
			-append "console=ttyS0 vt.global_cursor_default=0 consoleblank=0 panic=-1 loglevel=4 mdevrs.modes=${MBOCHS_E2E_MODES// /,}" \
			-device "${dev/UUID/$uuid}" \
			-serial "file:$serial" \
			-chardev "socket,id=ctl,path=$ctl,server=on,wait=off" -device isa-serial,chardev=ctl \
			-qmp "unix:$sock,server=on,wait=off"
	) > "$qlog" 2>&1 &
	qpid=$!
	for step in $steps; do
		if ! mbochs_e2e_wait "$serial" "$qpid" "NESTED-WAIT $step" "$NESTED_TIMEOUT"; then
			result "not ok - $name: nested guest never reached step '$step' (see $(basename "$serial"), $(basename "$qlog"))"
			break
		fi
		reached="${reached:+$reached }$step"
		if [ "$step" = fbdev ]; then
			# "NAME WIDTH,HEIGHT BPP STRIDE" of the guest's fb0
			fb=$(tr -d '\r' < "$serial" | sed -n 's/^NESTED-FB //p' | head -1)
			read -r fbname fbsize fbbpp _ <<< "$fb"
			size=${fbsize/,/x}
			MBOCHS_E2E_FBSIZE=$size
			# QEMU writes the EDID (xres, yres) only with display=on.
			if [ "$fbname" = bochs-drmdrmfb ] && [ "$fbbpp" = 32 ] &&
			   { [ "$MBOCHS_E2E_GL" != 1 ] || [ "$size" = "$MBOCHS_E2E_FBDEV" ]; }; then
				result "ok - $name: the guest's bochs DRM drives the mdev: fb0 $fb"
			else
				result "not ok - $name: guest fb0 is '$fb', want bochs-drmdrmfb at 32 bpp$([ "$MBOCHS_E2E_GL" = 1 ] && echo ", $MBOCHS_E2E_FBDEV")"
			fi
			grep -q NESTED-PATTERN-DRAWN "$serial" || result "not ok - $name: fbdraw failed (see $(basename "$serial"))"
		else
			size=${step#kms-}
			fb=$(tr -d '\r' < "$serial" | sed -n "s/^NESTED-KMS $size //p" | head -1)
			result "ok - $name: the guest's KMS client set $size while QEMU ran: $fb"
		fi
		log "  step $step ($size)"
		mbochs_e2e_shoot "$impl" "$name" "$sock" "$qpid" "$step" "$size"
		mbochs_e2e_go "$ctl" 2>/dev/null
	done
	if [ "$reached" = "$steps" ]; then
		if mbochs_e2e_wait "$serial" "$qpid" NESTED-DONE 120; then
			tr -d '\r' < "$serial" | sed -n 's/^NESTED-OK /ok - '"$name"': /p; s/^NESTED-FAIL /not ok - '"$name"': /p' \
				>> "$OUT/results.txt"
		else
			result "not ok - $name: nested guest did not finish (see $(basename "$serial"))"
		fi
	fi
	if kill -0 "$qpid" 2>/dev/null; then
		qmp "$sock" '{"execute":"quit"}' >/dev/null 2>&1
		t=0
		while kill -0 "$qpid" 2>/dev/null && [ $t -lt 20 ]; do sleep 1; t=$((t + 1)); done
		kill "$qpid" 2>/dev/null
		wait "$qpid" 2>/dev/null
	else
		wait "$qpid" 2>/dev/null
		status=$?
	fi
	log "  QEMU: $status; $(grep -c . "$qlog") lines of output"
	[ "$impl" = rust ] && [ "$status" != running ] &&
		result "not ok - $name: QEMU died (status $status): $(tail -3 "$qlog" | tr '\n' ' ')"
	[ "$impl" = c ] && mbochs_e2e_c_verdict "$name" "$status" "$reached" "$qlog" "$steps"
	echo 1 > "/sys/bus/mdev/devices/$uuid/remove" || result "not ok - $name: remove mdev"
	[ "$impl" = c ] && mbochs_c_end
	rmmod mbochs || result "not ok - $name: rmmod mbochs"
}

mbochs_e2e_phase() {
	local versions
	versions="QEMU $(qemu-system-x86_64 --version | sed -n '1s/^QEMU emulator version //p'), Mesa $(dpkg-query -W -f '${Version}' mesa-libgallium 2>/dev/null)"
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		result "# e2e-mbochs: $versions; QEMU's own GL display: -display egl-headless on vgem (MBOCHS_E2E_GL=1)"
		mbochs_e2e_gl_setup || return
	else
		result "# e2e-mbochs: $versions. QEMU's own GL display (-display egl-headless, display=on) not run: with this Mesa, on a render node without a GPU driver (vgem), QEMU crashes at the first frame, for any exporter (kms_swrast cannot import a dma-buf; see Documentation/mdev-rs/testing.rst). MBOCHS_E2E_GL=1 runs it."
	fi
	mbochs_e2e_run rust "$TOP/mbochs/mbochs.ko"
	[ "$1" = test ] && mbochs_e2e_run c "$KDIR/samples/vfio-mdev/mbochs.ko"
}
