# SPDX-License-Identifier: GPL-2.0
#
# End-to-end test phase of mbochs (dma-buf display), sourced by guest-run.sh
# inside the test VM (uses its OUT, KDIR, TOP, NESTED_TIMEOUT, log, result,
# qmp). Runs in MODE test and demo alike.
#
# One mbochs-medium mdev, one nested guest (OUT/nested-bzImage, initramfs
# out/guest-image/initramfs.cpio.gz running nested/init-mbochs) per implementation.
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
# QEMU's own display (on unless MBOCHS_E2E_GL=0 on the host): -device
# vfio-pci,...,display=on with -display dbus,p2p=on,gl=on on the render node
# of vgem. QEMU queries the plane, exports it (GET_GFX_DMABUF) and hands the
# dma-buf to its D-Bus listeners (ScanoutDMABUF); dbus_display_listener.py is
# that listener. At each step, once QEMU shows a dma-buf of the step's mode,
# it writes that buffer's pixels (OUT/checks/NAME-qemu-STEP.ppm), judged like
# the dma-bufs read back. (egl-headless cannot be used with Mesa 25.0.7: GBM
# on a render node without a GPU driver is kms_swrast, which cannot import a
# foreign dma-buf; Documentation/mdev-rs/testing.rst has the evidence.)
#
# The C sample runs the same guest, as a differential line: its dma-buf
# cannot be mmapped (defect 16) and a second export of an id QEMU holds is
# defect 4, so it is only queried (--query-only), which also shows defect 3
# (the first QUERY_GFX_PLANE of each new mode fails).

MBOCHS_E2E_TYPE=mbochs-medium
# The type of the migration destination that must refuse the stream.
MBOCHS_E2E_OTHER_TYPE=mbochs-small
# The preferred mode of the EDID QEMU writes (vfio-pci xres/yres): bochs
# DRM's fbdev takes it.
MBOCHS_E2E_FBDEV=1024x768
# The modes the guest's KMS client then sets, in turn: smaller, then larger.
MBOCHS_E2E_MODES="800x600 1280x1024"
MBOCHS_E2E_NODE=""	# the render node of vgem, once loaded
MBOCHS_E2E_XR24=0x34325258	# DRM_FORMAT_XRGB8888, as the display client prints it
# QEMU's own GL display: see above. Set on the host (run-vm.sh).
MBOCHS_E2E_GL=$(cat "$OUT/mbochs-e2e-gl" 2>/dev/null || echo 1)

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
	log "  GL display: D-Bus (gl=on) on $MBOCHS_E2E_NODE (vgem)"
}

# Talks to the D-Bus display client (dbus_display_listener.py): one command,
# one answer line.
mbochs_e2e_screen() { # CONTROL_SOCKET COMMAND...
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(120); s.connect(sys.argv[1])
s.sendall((" ".join(sys.argv[2:]) + "\n").encode()); print(s.makefile().readline().strip())' "$@"
}

# Waits until QEMU's D-Bus display has shown a dma-buf of SIZE (WxH).
mbochs_e2e_screen_wait() { # CONTROL_SOCKET SIZE TIMEOUT
	local t=0 state
	while [ $t -lt "$3" ]; do
		state=$(mbochs_e2e_screen "$1" state 2>&1)
		[[ $state == "scanout $2 "*" fourcc $MBOCHS_E2E_XR24 "* ]] && return 0
		sleep 1; t=$((t + 1))
	done
	echo "$state"
	return 1
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
		# What QEMU's display shows: the dma-buf it handed its D-Bus listener
		# once that buffer has the step's mode.
		local state
		if ! state=$(mbochs_e2e_screen_wait "$MBOCHS_E2E_SCREEN" "$size" 60); then
			state="not shown: QEMU's D-Bus display never showed a $size XRGB8888 dma-buf (last: $state)"
		else
			state=$(mbochs_e2e_screen "$MBOCHS_E2E_SCREEN" shot "$shot.ppm" 2>&1)
		fi
		echo "$state" > "$OUT/$name-qemu-$step.log"
		log "  $step: QEMU's display: $state"
		if [ "$impl" = rust ]; then
			if [[ $state == ok* ]]; then echo "pattern $size" > "$shot.want"
			else result "not ok - $name-qemu-$step: $state"; fi
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
		# QEMU's display must follow the guest's modes; the pixels of the C
		# sample's dma-bufs cannot be read (mmap is EINVAL, defect 16).
		how="" bad=""
		for step in $steps; do
			case $step in fbdev) size=$MBOCHS_E2E_FBSIZE ;; *) size=${step#kms-} ;; esac
			first=$(cat "$OUT/$name-qemu-$step.log" 2>/dev/null)
			how="$how $step: '${first:-none}';"
			[[ $first == *"scanout $size "* ]] ||
				bad="$bad $step: QEMU did not show the $size dma-buf;"
			[[ $first == *"mmap of the dma-buf"*"errno 22"* ]] || bad="$bad $step: its mmap did not fail with EINVAL (defect 16);"
		done
		if [ "$status" != running ]; then bad="$bad QEMU ended with status $status;"; fi
		if [ "$reached" = "$steps" ] && [ -z "$bad" ]; then
			result "ok - $name (differential, D-Bus GL display): QEMU shows the C sample's dma-buf of each mode, whose pixels cannot be read (mmap EINVAL, defect 16):$how"
		else
			result "not ok - $name (differential, D-Bus GL display): steps reached '${reached:-none}' of '$steps';$bad$how"
		fi
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

# Starts a nested guest's QEMU in the background (not -daemonize: its stderr,
# and a crash, stay in QLOG and its exit status with us; no core dumps), and
# with the GL display, QEMU's D-Bus display client on a QMP monitor of its
# own (DSOCK; the client waits for it), serving MBOCHS_E2E_SCREEN. Sets
# MBOCHS_E2E_QPID and MBOCHS_E2E_LPID (the client's, or empty).
# usage: mbochs_e2e_qemu NAME DEVICE DISPLAY SERIAL CTL SOCK QLOG DSOCK INCOMING_URI
mbochs_e2e_qemu() {
	local name=$1 extra=()
	rm -f "$4" "$5" "$6" "$8"
	[ "$MBOCHS_E2E_GL" = 1 ] && extra=(-qmp "unix:$8,server=on,wait=off")
	[ -n "$9" ] && extra+=(-incoming "$9")
	(
		ulimit -c 0
		# no shader cache: the VM's root is read-only
		export MESA_SHADER_CACHE_DISABLE=true
		exec qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config \
			-display "$3" \
			-kernel "$OUT/nested-bzImage" -initrd "$TOP/out/guest-image/initramfs.cpio.gz" \
			-append "mdevrs.role=mbochs console=ttyS0 vt.global_cursor_default=0 consoleblank=0 panic=-1 loglevel=4 mdevrs.modes=${MBOCHS_E2E_MODES// /,}" \
			-device "$2" \
			-serial "file:$4" \
			-chardev "socket,id=ctl,path=$5,server=on,wait=off" -device isa-serial,chardev=ctl \
			-qmp "unix:$6,server=on,wait=off" \
			"${extra[@]}"
	) > "$7" 2>&1 &
	MBOCHS_E2E_QPID=$! MBOCHS_E2E_LPID=""
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		/usr/bin/python3 "$TOP/tools/testing/vm/dbus_display_listener.py" "$8" "$MBOCHS_E2E_SCREEN" \
			> "$OUT/$name-display.log" 2>&1 &
		MBOCHS_E2E_LPID=$!
	fi
}

# Ends a QEMU (and its display client): quit, then kill after 20 s. Sets
# MBOCHS_E2E_STATUS to its exit status, or "running" if it still ran.
# (Not in a subshell: only this shell can wait for its children.)
mbochs_e2e_end() { # SOCK QEMU_PID CLIENT_PID
	local t=0
	MBOCHS_E2E_STATUS=running
	if kill -0 "$2" 2>/dev/null; then
		qmp "$1" '{"execute":"quit"}' >/dev/null 2>&1
		while kill -0 "$2" 2>/dev/null && [ $t -lt 20 ]; do sleep 1; t=$((t + 1)); done
		kill "$2" 2>/dev/null
		wait "$2" 2>/dev/null
	else
		wait "$2" 2>/dev/null
		MBOCHS_E2E_STATUS=$?
	fi
	[ -n "$3" ] && { kill "$3" 2>/dev/null; wait "$3" 2>/dev/null; }
	return 0
}

# Live migration of the running nested guest (Rust mbochs), after its fbdev
# step: first to a QEMU on an mdev of another type (another VRAM size), which
# must refuse the stream while the source keeps running and its dma-buf
# still shows the pattern; then to a QEMU on a second mdev of the type, whose
# dma-buf and display must show the pattern. The KMS steps then run on the
# destination. Sets MIG_QPID MIG_LPID MIG_SOCK MIG_CTL MIG_SERIAL MIG_QLOG
# (empty if the migration failed).
mbochs_e2e_migrate() { # NAME DEVICE DISPLAY SOCK QEMU_PID SIZE UUID_OTHER_TYPE UUID_SAME_TYPE
	local name=$1 dev=$2 display=$3 sock=$4 qpid=$5 size=$6 dir=/tmp/mig-$1 screen=$MBOCHS_E2E_SCREEN
	MIG_QPID="" MIG_LPID="" MIG_SOCK="" MIG_CTL="" MIG_SERIAL="" MIG_QLOG=""
	mkdir -p "$dir"
	log "  migration to an mdev of another type (must be refused)"
	MBOCHS_E2E_SCREEN=$dir/refused-screen.sock
	mbochs_e2e_qemu "$name-refused" "${dev/UUID/$7}" "$display" "$dir/refused-serial.log" "$dir/refused-ctl.sock" \
		"$dir/refused.sock" "$OUT/$name-mig-refused-qemu.log" "$dir/refused-display.sock" "unix:$dir/refused-mig.sock"
	if nested_migrate_refused "$name" "an mdev of another type" "$sock" "$dir/refused.sock" \
		"unix:$dir/refused-mig.sock"; then
		MBOCHS_E2E_SCREEN=$screen
		mbochs_e2e_shoot rust "$name" "$sock" "$qpid" refused "$size"
	fi
	mbochs_e2e_end "$dir/refused.sock" "$MBOCHS_E2E_QPID" "$MBOCHS_E2E_LPID"

	log "  live migration to a second $MBOCHS_E2E_TYPE mdev"
	MBOCHS_E2E_SCREEN=$dir/dst-screen.sock
	MIG_SERIAL=$OUT/$name-migrated-serial.log MIG_QLOG=$OUT/$name-migrated-qemu.log
	mbochs_e2e_qemu "$name-migrated" "${dev/UUID/$8}" "$display" "$MIG_SERIAL" "$dir/dst-ctl.sock" \
		"$dir/dst.sock" "$MIG_QLOG" "$dir/dst-display.sock" "unix:$dir/mig.sock"
	if ! nested_migrate_live "$name" "$sock" "$dir/dst.sock" "unix:$dir/mig.sock" "$OUT/$name-migration.json"; then
		mbochs_e2e_end "$dir/dst.sock" "$MBOCHS_E2E_QPID" "$MBOCHS_E2E_LPID"
		MBOCHS_E2E_SCREEN=$screen MIG_SERIAL=""
		return
	fi
	mbochs_e2e_shoot rust "$name" "$dir/dst.sock" "$MBOCHS_E2E_QPID" migrated "$size"
	MIG_QPID=$MBOCHS_E2E_QPID MIG_LPID=$MBOCHS_E2E_LPID MIG_SOCK=$dir/dst.sock MIG_CTL=$dir/dst-ctl.sock
}

mbochs_e2e_run() { # IMPL KO
	local impl=$1 ko=$2 name=e2e-mbochs-$1
	local serial=$OUT/$name-serial.log qlog=$OUT/$name-qemu.log sock=/tmp/qmp-$name.sock ctl=/tmp/ctl-$name.sock
	local initrd=$TOP/out/guest-image/initramfs.cpio.gz uuid qpid lpid="" t status=running reached="" step size fb
	local dsock=/tmp/qmp-display-$name.sock
	local fbname fbsize fbbpp steps="fbdev" display=none dev other="" second="" migrate=0 serials
	# The Rust module's guest is live-migrated after its fbdev step.
	[ "$impl" = rust ] && [ "$MBOCHS_E2E_MIGRATE" = 1 ] && migrate=1
	for size in $MBOCHS_E2E_MODES; do steps="$steps kms-$size"; done
	dev="vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID,id=gpu0,display=off"
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		display="dbus,p2p=on,gl=on,rendernode=$MBOCHS_E2E_NODE"
		dev="${dev%,display=off},display=on,xres=${MBOCHS_E2E_FBDEV%x*},yres=${MBOCHS_E2E_FBDEV#*x}"
	fi
	if [ "$impl" = rust ]; then
		for step in $steps; do
			[ "$MBOCHS_E2E_GL" = 1 ] && echo "$name-qemu-$step" >> "$OUT/expected-checks.txt"
			echo "$name-dmabuf-$step" >> "$OUT/expected-checks.txt"
		done
		[ $migrate = 1 ] && for step in refused migrated; do
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
	if [ $migrate = 1 ]; then
		other=$(cat /proc/sys/kernel/random/uuid) second=$(cat /proc/sys/kernel/random/uuid)
		echo "$other" > "/sys/class/mdev_bus/mbochs/mdev_supported_types/$MBOCHS_E2E_OTHER_TYPE/create" &&
			echo "$second" > "/sys/class/mdev_bus/mbochs/mdev_supported_types/$MBOCHS_E2E_TYPE/create" ||
			{ result "not ok - $name: creating the migration's mdevs failed"; migrate=0; }
	fi
	serials=$serial
	MBOCHS_E2E_SCREEN=/tmp/screen-$name.sock
	# QEMU's display and the plane queries allocate in the C module
	[ "$impl" = c ] && mbochs_c_begin "qemu-system-x86|mbochs-dmabuf-r"
	mbochs_e2e_qemu "$name" "${dev/UUID/$uuid}" "$display" "$serial" "$ctl" "$sock" "$qlog" "$dsock" ""
	qpid=$MBOCHS_E2E_QPID lpid=$MBOCHS_E2E_LPID
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
		if [ $migrate = 1 ] && [ "$step" = fbdev ]; then
			# The KMS steps run on the destination.
			mbochs_e2e_migrate "$name" "$dev" "$display" "$sock" "$qpid" "$size" "$other" "$second"
			[ -n "$MIG_SERIAL" ] || break
			mbochs_e2e_end "$sock" "$qpid" "$lpid"
			[ "$MBOCHS_E2E_STATUS" = running ] ||
				result "not ok - $name: the migration's source QEMU died (status $MBOCHS_E2E_STATUS)"
			qpid=$MIG_QPID lpid=$MIG_LPID sock=$MIG_SOCK ctl=$MIG_CTL serial=$MIG_SERIAL qlog=$MIG_QLOG
			serials="$serials $serial"
		fi
		mbochs_e2e_go "$ctl" 2>/dev/null
	done
	if [ "$reached" = "$steps" ]; then
		if mbochs_e2e_wait "$serial" "$qpid" NESTED-DONE 120; then
			# shellcheck disable=SC2086
			cat $serials | tr -d '\r' | sed -n 's/^NESTED-OK /ok - '"$name"': /p; s/^NESTED-FAIL /not ok - '"$name"': /p' \
				>> "$OUT/results.txt"
		else
			result "not ok - $name: nested guest did not finish (see $(basename "$serial"))"
		fi
	fi
	mbochs_e2e_end "$sock" "$qpid" "$lpid"
	status=$MBOCHS_E2E_STATUS
	log "  QEMU: $status; $(grep -c . "$qlog") lines of output"
	[ "$impl" = rust ] && [ "$status" != running ] &&
		result "not ok - $name: QEMU died (status $status): $(tail -3 "$qlog" | tr '\n' ' ')"
	[ "$impl" = c ] && mbochs_e2e_c_verdict "$name" "$status" "$reached" "$qlog" "$steps"
	for uuid in $uuid $other $second; do
		mdev_remove "$uuid" || result "not ok - $name: remove mdev"
	done
	[ "$impl" = c ] && mbochs_c_end
	rmmod mbochs || result "not ok - $name: rmmod mbochs"
}

mbochs_e2e_phase() {
	local versions
	versions="QEMU $(qemu-system-x86_64 --version | sed -n '1s/^QEMU emulator version //p'), Mesa $(dpkg-query -W -f '${Version}' mesa-libgallium 2>/dev/null)"
	if [ "$MBOCHS_E2E_GL" = 1 ]; then
		result "# e2e-mbochs: $versions; QEMU's own GL display: -display dbus,p2p=on,gl=on on vgem, read by a D-Bus display client"
		mbochs_e2e_gl_setup || return
	else
		result "# e2e-mbochs: $versions; QEMU's own GL display left out (MBOCHS_E2E_GL=0)"
	fi
	MBOCHS_E2E_MIGRATE=0
	[ "$1" = test ] && MBOCHS_E2E_MIGRATE=1
	mbochs_e2e_run rust "$TOP/mbochs/mbochs.ko"
	[ "$1" = test ] && mbochs_e2e_run c "$KDIR/samples/vfio-mdev/mbochs.ko"
}
