#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside a VM that boots Debian's own kernel (run-debian.sh), whose
# module tree holds our modules where `make install` put them (updates/).
# usage: debian-guest.sh boot1|boot2 OUT KDIR TOP KREL [PERSIST]
#
#   boot1: the kernel is Debian's; `modprobe mdpy` (and mbochs, mdpy-fb)
#          loads the installed module with vfio and mdev by dependency;
#          then what README tells a user to do to keep devices across a
#          reboot: the modules-load.d line (mdpy, mbochs) and an `mdevctl
#          define --auto` device of each driver, kept in OUT/persist (the
#          VM's /etc is the host's, read-only);
#   boot2: the next boot, with boot1's PERSIST as /etc/modules-load.d,
#          /etc/mdevctl.d and /etc/udev/rules.d: what a boot runs (udevd, then
#          systemd-modules-load) must bring both devices back, started by
#          mdevctl's own udev rule; they are probed, removed, and the
#          kselftests of both drivers run on the installed modules (one
#          type each, as in make check); QEMU boots the guest image on an
#          mdpy and an mbochs device, each on QEMU's display of it
#          (qemu_end_to_end).
# Results in OUT/results.txt, TAP in OUT/tap-*.txt, the kernel log in
# OUT/dmesg.txt: run-debian.sh judges them on the host.
set -u
MODE=$1 OUT=$2 KDIR=$3 TOP=$4 KREL=$5 PERSIST=${6:-}
TIER=check
. "$TOP/tools/testing/vm/tiers.sh"
. "$TOP/tools/testing/vm/lib-guest.sh"
# The kselftest phases, on the Rust modules only: Debian builds no sample.
MDEV_RS_IMPLS=rust
RUST_KO_DIR=/lib/modules/$KREL/updates
for f in guest-mdpy.sh guest-mbochs.sh qemu-qmp.sh guest-usage.sh guest-mbochs-e2e.sh; do . "$TOP/tools/testing/vm/$f"; done
PROBE=$TOP/out/mdev-probe
# No IOMMUFD in Debian's kernel: the kselftests' iommufd_cdev variants
# cannot run (kselftest in lib-guest.sh lists them as not run), when the
# kernel's config and /dev/iommu both say so.
if ! grep -q '^CONFIG_IOMMUFD=[ym]' "$KDIR/.config" && [ ! -e /dev/iommu ]; then
	KSELFTEST_LEAVE_OUT=$'iommufd_cdev\tDebian\'s kernel has no IOMMUFD (CONFIG_IOMMUFD is not set): no VFIO cdev'
fi
# The two devices kept across the reboot.
MDPY_UUID=5a8d1e60-0000-4000-8000-00000000d1a0
MBOCHS_UUID=5a8d1e60-0000-4000-8000-00000000d1b0

# The booted kernel must be Debian's, unmodified (its release and version
# strings), with its own modules (vfio's from Debian's tree).
kernel_is_debians() {
	local v
	v=$(uname -v)
	if [ "$(uname -r)" = "$KREL" ] && [[ $v == *Debian* ]]; then
		result "ok - debian: $MODE: booted Debian's own kernel $KREL ($v)"
	else
		result "not ok - debian: $MODE: booted $(uname -r) ($v), not Debian's $KREL"
		return 1
	fi
}

# NAME: `modprobe NAME` loads updates/NAME.ko* (make install's), with DEPS
# loaded by dependency from Debian's own tree.
modprobe_installed() { # NAME DEPS...
	local name=$1 path m missing="" deps
	shift
	path=$(modinfo -n "$name" 2>/dev/null)
	if ! modprobe "$name" 2> "$OUT/modprobe-$name.err"; then
		result "not ok - debian: modprobe $name: $(head -c 200 "$OUT/modprobe-$name.err")"
		return
	fi
	for m in "$@"; do
		grep -q "^$m " /proc/modules || missing="$missing $m"
	done
	if [[ $path == "$RUST_KO_DIR"/* ]] && [ -z "$missing" ]; then
		deps="$*"
		result "ok - debian: modprobe $name loads ${path#/lib/modules/"$KREL"/}${deps:+ with ${deps// / and } by dependency}"
	else
		result "not ok - debian: modprobe $name: resolved to '$path' (want under updates/), not loaded:${missing:- none}"
	fi
}

boot1() {
	kernel_is_debians || return
	# vfio_iommu_type1: the container path of the kselftests (group/container)
	modprobe_installed mdpy mdev vfio
	modprobe_installed mbochs mdev vfio
	modprobe_installed mdpy-fb
	modprobe vfio_iommu_type1 || result "not ok - debian: modprobe vfio_iommu_type1"
	# Kept across the reboot: what README tells a user to do.
	mkdir -p "$OUT/persist/modules-load.d" "$OUT/persist/mdevctl.d/scripts.d/callouts" \
		"$OUT/persist/mdevctl.d/scripts.d/notifiers" "$OUT/persist/udev-rules.d"
	printf 'mdpy\nmbochs\n' > "$OUT/persist/modules-load.d/mdev-rs.conf"
	# README's fix of Debian's mdevctl package, whose udev rule runs
	# /usr/sbin/mdevctl while the package installs /usr/bin/mdevctl
	sed 's|/usr/sbin/mdevctl|/usr/bin/mdevctl|g' /usr/lib/udev/rules.d/60-mdevctl.rules \
		> "$OUT/persist/udev-rules.d/60-mdevctl.rules"
	mount --bind "$OUT/persist/mdevctl.d" /etc/mdevctl.d
	if mdevctl define --auto -u $MDPY_UUID -p mdpy -t mdpy-xga 2> "$OUT/mdevctl.err" &&
		mdevctl define --auto -u $MBOCHS_UUID -p mbochs -t mbochs-medium 2>> "$OUT/mdevctl.err" &&
		[ "$(mdevctl list -d | grep -c ' auto')" = 2 ]; then
		result "ok - debian: boot1: mdevctl define --auto of an mdpy-xga and an mbochs-medium device"
	else
		result "not ok - debian: boot1: mdevctl define --auto: $(head -c 300 "$OUT/mdevctl.err"); list -d: $(mdevctl list -d | tr '\n' ' ')"
	fi
	umount /etc/mdevctl.d
	rmmod mdpy_fb mbochs mdpy
}

boot2() {
	local t=0 probe_ok=1 u kind want
	kernel_is_debians || return
	[ -d "$PERSIST/mdevctl.d" ] || { result "not ok - debian: boot2: boot1 left no $PERSIST"; return; }
	mount --bind "$PERSIST/mdevctl.d" /etc/mdevctl.d
	mount --bind "$PERSIST/modules-load.d" /etc/modules-load.d
	mount --bind "$PERSIST/udev-rules.d" /etc/udev/rules.d
	# What a boot runs, in its order: udevd (with /etc's rules: virtme-ng
	# started it before they were mounted), then systemd-modules-load
	# (systemd-modules-load.service); mdevctl's udev rule starts the
	# parent's --auto devices when the parent registers.
	if pgrep -x systemd-udevd > /dev/null; then udevadm control --reload
	else /lib/systemd/systemd-udevd --daemon 2> "$OUT/udevd.err"; fi
	/lib/systemd/systemd-modules-load 2> "$OUT/modules-load.err" ||
		result "not ok - debian: boot2: systemd-modules-load: $(head -c 200 "$OUT/modules-load.err")"
	while [ $t -lt 60 ] && ! { [ -e /sys/bus/mdev/devices/$MDPY_UUID ] && [ -e /sys/bus/mdev/devices/$MBOCHS_UUID ]; }; do
		udevadm settle -t 5 2>/dev/null; sleep 1; t=$((t + 1))
	done
	if grep -q '^mdpy ' /proc/modules && grep -q '^mbochs ' /proc/modules &&
		[ -e /sys/bus/mdev/devices/$MDPY_UUID ] && [ -e /sys/bus/mdev/devices/$MBOCHS_UUID ]; then
		result "ok - debian: boot2: after the reboot, modules-load.d loaded mdpy and mbochs and mdevctl's udev rule started both --auto devices"
	else
		result "not ok - debian: boot2: after the reboot: modules $(grep -oE '^(mdpy|mbochs) ' /proc/modules | tr -d '\n'), mdevs: $(ls /sys/bus/mdev/devices | tr '\n' ' ') (want $MDPY_UUID $MBOCHS_UUID)"
	fi
	for u in $MDPY_UUID:region $MBOCHS_UUID:dmabuf; do
		want=${u#*:} u=${u%%:*}
		[ -e /sys/bus/mdev/devices/"$u" ] || { probe_ok=0; continue; }
		kind=$("$PROBE" --json device "$u" 2> "$OUT/probe-$u.err" | jq -r .display.kind 2>/dev/null)
		[ "$kind" = "$want" ] || { probe_ok=0; result "not ok - debian: boot2: mdev-probe $u: display '$kind', want $want ($(head -c 200 "$OUT/probe-$u.err"))"; }
	done
	[ $probe_ok = 1 ] && result "ok - debian: boot2: the devices that came back work (mdev-probe: mdpy's display is a region, mbochs' a dma-buf)"
	mdevctl stop -u $MDPY_UUID; mdevctl stop -u $MBOCHS_UUID
	umount /etc/mdevctl.d /etc/modules-load.d /etc/udev/rules.d
	mdev_sweep "debian: boot2: the devices of the reboot"
	rmmod mbochs mdpy
	# The kselftests, on the installed modules of Debian's kernel.
	modprobe vfio_iommu_type1 || result "not ok - debian: modprobe vfio_iommu_type1"
	mdpy_phase test
	mbochs_phase_debian
	phase_sweep debian
	qemu_end_to_end
	phase_sweep debian
}

# QEMU on Debian's kernel, one device of each driver, as usage.rst runs it
# (the guest image, make guest-image), each on QEMU's own display of it:
# mdpy's region display screendumped through QMP; mbochs' dma-buf on QEMU's
# D-Bus GL display (gl=on on the render node of Debian's vgem), read by the
# D-Bus display client of the mbochs end to end phase (guest-mbochs-e2e.sh).
# Both pictures go to OUT/checks, judged pixel for pixel on the host
# (post-checks.sh).
qemu_end_to_end() {
	local img=$TOP/out/guest-image spec drv type fb u q dq ctl log why out how pid lpid t dev display shot
	[ -s "$img/bzImage" ] || { result "not ok - debian: QEMU: no guest image ($img: make guest-image)"; return; }
	insmod "$(rust_ko mdpy)" count=4 && insmod "$(rust_ko mbochs)" count=64 ||
		{ result "not ok - debian: QEMU: insmod mdpy, mbochs"; return; }
	mkdir -p /tmp/e2e
	# DRIVER:TYPE:FB, FB the guest's framebuffer driver on the device
	for spec in mdpy:mdpy-xga:mdpy-fb mbochs:mbochs-medium:bochs-drm; do
		IFS=: read -r drv type fb <<< "$spec"
		u=$(cat /proc/sys/kernel/random/uuid) q=/tmp/e2e/$drv.qmp dq=/tmp/e2e/$drv-display.qmp
		ctl=/tmp/e2e/$drv-screen.sock log=$OUT/qemu-$drv-serial.log why="" lpid=""
		shot=debian-qemu-$type
		echo "$u" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" ||
			{ result "not ok - debian: QEMU: create $type"; continue; }
		dev="vfio-pci,sysfsdev=/sys/bus/mdev/devices/$u,display=on" display=none
		if [ "$drv" = mbochs ]; then
			debian_gl_node || { result "not ok - debian: QEMU on $type: $DEBIAN_GL_WHY"; mdev_remove "$u"; continue; }
			dev="$dev,xres=1024,yres=768" display="dbus,p2p=on,gl=on,rendernode=$DEBIAN_GL_NODE"
		fi
		log "QEMU on $type (guest image, -display $display)"
		rm -f "$q" "$dq" "$ctl"
		(
			# no shader cache: the VM's root is read-only
			export MESA_SHADER_CACHE_DISABLE=true
			exec qemu-system-x86_64 -M q35 -m 512 -accel tcg -vga none -nodefaults -no-user-config \
				-kernel "$img/bzImage" -initrd "$img/initramfs.cpio.gz" -append console=ttyS0 \
				-serial "file:$log" -qmp "unix:$q,server=on,wait=off" -qmp "unix:$dq,server=on,wait=off" \
				-device "$dev" -display "$display"
		) > "$OUT/qemu-$drv.err" 2>&1 &
		pid=$!
		if [ "$drv" = mbochs ]; then
			/usr/bin/python3 "$TOP/tools/testing/vm/dbus_display_listener.py" "$dq" "$ctl" > "$OUT/qemu-$drv-display.log" 2>&1 &
			lpid=$!
		fi
		t=0
		until grep -aq MDEV-RS-GUEST-READY "$log" 2>/dev/null; do
			kill -0 "$pid" 2>/dev/null || { why="QEMU exited: $(head -c 300 "$OUT/qemu-$drv.err")"; break; }
			[ $t -ge 240 ] && { why="no MDEV-RS-GUEST-READY in $log after 240 s"; break; }
			sleep 2; t=$((t + 2))
		done
		if [ -z "$why" ] && ! out=$(usage_guest_drew "$log" "$fb"); then why=$out; fi
		echo "$shot" >> "$OUT/expected-checks.txt"
		if [ -z "$why" ] && [ "$drv" = mdpy ]; then
			usage_screendump "$q" "$shot" "pattern 1024x768" || why="QMP screendump failed"
			how="QEMU's region display screendumped"
		elif [ -z "$why" ]; then
			# What QEMU's display shows: the dma-buf it handed its D-Bus
			# listener, once that has the guest's mode.
			if ! out=$(mbochs_e2e_screen_wait "$ctl" 1024x768 90); then
				why="QEMU's D-Bus display never showed a 1024x768 XRGB8888 dma-buf (last: $out)"
			elif out=$(mbochs_e2e_screen "$ctl" shot "$OUT/checks/$shot.ppm" 2>&1) && [[ $out == ok* ]]; then
				mkdir -p "$OUT/checks"; echo "pattern 1024x768" > "$OUT/checks/$shot.want"
				how="the dma-buf QEMU's D-Bus GL display showed (on Debian's vgem), read by a D-Bus display client"
			else
				why="reading the dma-buf QEMU's display showed: $out"
			fi
		fi
		if [ -z "$why" ]; then
			result "ok - debian: $(qemu-system-x86_64 --version | head -1 | grep -o 'version [0-9.]*' | sed 's/^/QEMU /') on $type: the guest image drew on it ($(grep -ao 'drawn on:.*' "$log" | tr -d '\r' | cut -c11-)); $how (judged on the host, line $shot)"
		else
			result "not ok - debian: QEMU on $type: $why (see qemu-$drv-serial.log, qemu-$drv.err)"
		fi
		mbochs_e2e_end "$q" "$pid" "$lpid"
		[ "$MBOCHS_E2E_STATUS" = running ] ||
			result "not ok - debian: QEMU on $type ended by itself (status $MBOCHS_E2E_STATUS): $(tail -c 300 "$OUT/qemu-$drv.err")"
		mdev_remove "$u"
	done
	rmmod mbochs mdpy
}

# A render node for QEMU's GL display: Debian's vgem (modprobe: Debian's
# own module tree). Sets DEBIAN_GL_NODE, or DEBIAN_GL_WHY.
debian_gl_node() {
	local n i=0
	DEBIAN_GL_NODE="" DEBIAN_GL_WHY=""
	modprobe vgem || { DEBIAN_GL_WHY="modprobe vgem failed: no render node for QEMU's GL display"; return 1; }
	while [ $i -lt 10 ]; do
		for n in /sys/class/drm/renderD*; do
			case $(readlink -f "$n/device") in *vgem*) DEBIAN_GL_NODE=/dev/dri/${n##*/} ;; esac
		done
		[ -n "$DEBIAN_GL_NODE" ] && [ -c "$DEBIAN_GL_NODE" ] && return 0
		sleep 1; i=$((i + 1))
	done
	DEBIAN_GL_WHY="vgem loaded but no render node of it in /dev/dri ($(ls /dev/dri 2>&1))"
	return 1
}

# mbochs_phase without what needs the iommufd cdev (the cascade guard kills
# an iommufd_cdev test; Debian's kernel has no IOMMUFD).
mbochs_phase_debian() {
	local type
	for type in $(tier_types check mbochs); do
		mbochs_suite rust "$(rust_ko mbochs)" "$type" 64
	done
	mbochs_mem_alias
}

log "debian $MODE: $(uname -r), $(nproc) CPUs"
"$MODE"
dmesg > "$OUT/dmesg.txt"
log "done"
