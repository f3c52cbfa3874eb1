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
#          mdpy and an mbochs device (qemu_end_to_end).
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
for f in guest-mdpy.sh guest-mbochs.sh qemu-qmp.sh guest-usage.sh; do . "$TOP/tools/testing/vm/$f"; done
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
# (the guest image, make guest-image): mdpy's region display screendumped
# (OUT/checks, judged pixel for pixel on the host by post-checks.sh);
# mbochs with display=off (no OpenGL display in this VM: QEMU shows a
# dma-buf only on one), the guest's bochs DRM driver drawing on it.
qemu_end_to_end() {
	local img=$TOP/out/guest-image spec drv type disp u q log why out how
	[ -s "$img/bzImage" ] || { result "not ok - debian: QEMU: no guest image ($img: make guest-image)"; return; }
	insmod "$(rust_ko mdpy)" count=4 && insmod "$(rust_ko mbochs)" count=64 ||
		{ result "not ok - debian: QEMU: insmod mdpy, mbochs"; return; }
	mkdir -p /tmp/e2e
	for spec in mdpy:mdpy-xga:on mbochs:mbochs-medium:off; do
		IFS=: read -r drv type disp <<< "$spec"
		u=$(cat /proc/sys/kernel/random/uuid) q=/tmp/e2e/$drv.qmp log=$OUT/qemu-$drv-serial.log why=""
		echo "$u" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" ||
			{ result "not ok - debian: QEMU: create $type"; continue; }
		log "QEMU on $type (guest image)"
		qemu-system-x86_64 -M q35 -m 512 -accel tcg -vga none \
			-kernel "$img/bzImage" -initrd "$img/initramfs.cpio.gz" -append console=ttyS0 \
			-serial "file:$log" -qmp "unix:$q,server=on,wait=off" -daemonize -pidfile "/tmp/e2e/$drv.pid" \
			-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$u,display=$disp" -display none \
			2> "$OUT/qemu-$drv.err" || why="QEMU did not start: $(head -c 200 "$OUT/qemu-$drv.err")"
		if [ -z "$why" ] && ! out=$(usage_guest_ready "$log"); then why=$out; fi
		if [ -z "$why" ] && [ "$drv" = mdpy ]; then
			if ! out=$(usage_guest_drew "$log" mdpy); then why=$out
			elif ! usage_screendump "$q" debian-qemu-mdpy-xga "pattern 1024x768"; then why="QMP screendump failed"; fi
			how="QEMU's region display screendumped (judged on the host, line debian-qemu-mdpy-xga)"
		elif [ -z "$why" ]; then
			if ! out=$(usage_guest_drew "$log" bochs); then why=$out; fi
			how="display=off: this VM has no OpenGL display, which a dma-buf needs"
		fi
		if [ -z "$why" ]; then
			result "ok - debian: $(qemu-system-x86_64 --version | head -1 | grep -o 'version [0-9.]*' | sed 's/^/QEMU /') on $type: the guest image drew on it ($(grep -ao 'drawn on:.*' "$log" | tr -d '\r' | cut -c11-)); $how"
		else
			result "not ok - debian: QEMU on $type: $why (see qemu-$drv-serial.log)"
		fi
		usage_quit "$q" "/tmp/e2e/$drv.pid" > /dev/null || pkill -x qemu-system-x86
		echo 1 > "/sys/bus/mdev/devices/$u/remove"
	done
	rmmod mbochs mdpy
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
