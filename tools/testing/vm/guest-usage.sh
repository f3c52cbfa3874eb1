# SPDX-License-Identifier: GPL-2.0
#
# Phase "usage" (make check-full), sourced by guest-run.sh inside the test
# VM: runs the shell blocks of Documentation/mdev-rs/usage.rst, in page
# order, in one bash (usage_blocks.py turns them into a script, with the
# substitutions and checks the page's ".. usage-test:" comments give). The
# block marked "host" (build and install) ran on the host before the VM
# (run-tests.sh, into OUT/usage-root, whose results are in
# OUT/usage-host-results.txt). One result line per block; the first block
# that fails ends the run, and the blocks after it are "not run" (the run
# has failed already). QEMU's screendumps go to OUT/checks (post-checks.sh
# compares them with the pattern on the host).

USAGE_DOC=Documentation/mdev-rs/usage.rst

# The checks the page's comments name (usage-test: then ...).

# Waits for the guest image's "MDEV-RS-GUEST-READY" on its console LOG.
usage_guest_ready() { # LOG
	local t=0
	until grep -q MDEV-RS-GUEST-READY "$1" 2>/dev/null; do
		[ $t -ge 240 ] && { echo "no MDEV-RS-GUEST-READY in $1 after 240 s"; return 1; }
		sleep 2; t=$((t + 2))
	done
	# What the guest says of itself, for the result line: informative, the
	# readiness is the marker above (and what the guest drew is judged by
	# usage_guest_drew), so this listing never fails the wait.
	grep -a 'mdev-rs guest image' "$1" | tr -d '\r' || true
}

# The guest drew the pattern on a framebuffer whose name has NAME.
usage_guest_drew() { # LOG NAME
	grep -aq "test pattern drawn on:.*$2" "$1" || { echo "the guest drew on no $2 framebuffer: $(grep -a 'drawn on' "$1" | tr -d '\r')"; return 1; }
}

# A screendump of QMP socket SOCK into OUT/checks/NAME.ppm, judged WANT.
usage_screendump() { # SOCK NAME WANT
	mkdir -p "$OUT/checks"
	echo "$2" >> "$OUT/expected-checks.txt"
	qmp "$1" "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$OUT/checks/$2.ppm\"}}" >/dev/null &&
		echo "$3" > "$OUT/checks/$2.want"
}

# The same through a human monitor (HMP) socket.
usage_screendump_hmp() { # MON NAME WANT
	mkdir -p "$OUT/checks"
	echo "$2" >> "$OUT/expected-checks.txt"
	echo "screendump $OUT/checks/$2.ppm" | socat - "unix-connect:$1" >/dev/null &&
		sleep 2 && [ -s "$OUT/checks/$2.ppm" ] && echo "$3" > "$OUT/checks/$2.want"
}

# A screenshot another tool saved as OUT/checks/NAME.ppm (virsh screenshot:
# PNG when QEMU can write it; the judge reads both), judged WANT.
usage_want() { # NAME WANT
	echo "$1" >> "$OUT/expected-checks.txt"
	[ -s "$OUT/checks/$1.ppm" ] || { echo "no screenshot $OUT/checks/$1.ppm"; return 1; }
	echo "$2" > "$OUT/checks/$1.want"
}

# libvirtd as a user's host runs it (systemd starts it there), for the
# libvirt blocks: the QEMU driver alone, QEMU as root without cgroups,
# namespaces or security labels (the test VM has none of those), no
# virtlogd (stdio_handler "file"), its configuration and state in tmpfs.
usage_libvirtd() {
	local d i
	command -v libvirtd > /dev/null && command -v virsh > /dev/null ||
		{ echo "libvirtd/virsh not installed (bootstrap-deps.sh installs them)"; return 1; }
	for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
		mkdir -p "$d" 2>/dev/null || true
		mount -t tmpfs usage-libvirt "$d"
	done
	mkdir -p /tmp/usage-lv-drivers
	ln -sf /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so /tmp/usage-lv-drivers/
	printf '%s\n' 'user = "root"' 'group = "root"' 'dynamic_ownership = 0' 'remember_owner = 0' \
		'security_driver = "none"' 'namespaces = [ ]' 'cgroup_controllers = [ ]' \
		'stdio_handler = "file"' > /etc/libvirt/qemu.conf
	printf '%s\n' 'auth_unix_rw = "none"' 'auth_unix_ro = "none"' \
		"log_outputs = \"3:file:$OUT/usage-libvirtd.log\"" > /etc/libvirt/libvirtd.conf
	LIBVIRT_DRIVER_DIR=/tmp/usage-lv-drivers libvirtd -d --config /etc/libvirt/libvirtd.conf \
		--pid-file /run/usage-libvirtd.pid > "$OUT/usage-libvirtd.out" 2>&1 || true
	for i in $(seq 120); do
		virsh -c qemu:///system version > "$OUT/usage-libvirt-version.txt" 2>&1 && {
			echo "libvirtd: $(libvirtd --version)"; return 0; }
		sleep 1
	done
	echo "libvirtd does not answer: $(tail -c 300 "$OUT/usage-libvirtd.out") $(tail -c 300 "$OUT/usage-libvirt-version.txt")"
	return 1
}

# Stops what usage_libvirtd started; keeps QEMU's logs.
usage_libvirtd_stop() {
	local d
	[ -f /run/usage-libvirtd.pid ] || return 0
	for d in $(virsh -c qemu:///system list --name 2>/dev/null); do virsh -c qemu:///system destroy "$d"; done
	cp /var/log/libvirt/qemu/*.log "$OUT/" 2>/dev/null
	kill "$(cat /run/usage-libvirtd.pid)" 2>/dev/null; sleep 2
	rm -f /run/usage-libvirtd.pid
	for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
		umount "$d" 2>/dev/null
	done
}

# Waits until the D-Bus display client on CONTROL_SOCKET was handed a
# dma-buf (QEMU showed the guest's scanout).
usage_dbus_scanout() { # CONTROL_SOCKET
	local t=0 state=
	until [[ $state == scanout* ]]; do
		[ $t -ge 120 ] && { echo "no scanout on the D-Bus display after 120 s: '$state'"; return 1; }
		sleep 2; t=$((t + 2))
		state=$(mbochs_e2e_screen "$1" state 2>&1) || true
	done
	sleep 2		# the guest's pattern, drawn before it said it was ready
	echo "$state"
}

# A render node for QEMU's GL display, on a machine without a GPU: vgem's.
usage_vgem() {
	grep -q '^vgem ' /proc/modules || mbochs_e2e_insmod "$KDIR/drivers/gpu/drm/vgem/vgem.ko"
}

# What the D-Bus display (-display dbus,p2p=on) of the QEMU of QMP socket
# SOCK shows: dbus_display_listener.py attaches through the monitor and
# saves the dma-buf it was handed as OUT/checks/NAME.ppm, judged WANT...
usage_dbus_shot() { # SOCK NAME WANT...
	local ctl=/tmp/$2-screen.sock state
	python3 "$TOP/tools/testing/vm/dbus_display_listener.py" "$1" "$ctl" > "$OUT/$2-listener.log" 2>&1 &
	usage_dbus_scanout "$ctl" > /dev/null || { echo "no scanout: $(tail -c 300 "$OUT/$2-listener.log")"; return 1; }
	mkdir -p "$OUT/checks"
	echo "$2" >> "$OUT/expected-checks.txt"
	state=$(mbochs_e2e_screen "$ctl" shot "$OUT/checks/$2.ppm" 2>&1) || true
	mbochs_e2e_screen "$ctl" quit > /dev/null 2>&1 || true
	[[ $state == ok* ]] || { echo "the listener's shot: $state"; return 1; }
	echo "${*:3}" > "$OUT/checks/$2.want"
	echo "$state"
}

# QEMU of PIDFILE does not run as root.
usage_not_root() { # PIDFILE
	local uid
	uid=$(awk '/^Uid:/ { print $2 }' "/proc/$(cat "$1")/status")
	[ -n "$uid" ] && [ "$uid" != 0 ] || { echo "QEMU runs as uid '$uid'"; return 1; }
	echo "QEMU runs as uid $uid"
}

# Stops the QEMU of QMP socket SOCK and PIDFILE; it must be gone in 30 s.
usage_quit() { # SOCK PIDFILE
	local pid t=0
	pid=$(cat "$2")
	qmp "$1" '{"execute":"quit"}' >/dev/null
	while kill -0 "$pid" 2>/dev/null; do
		[ $t -ge 30 ] && { echo "QEMU $pid still running 30 s after quit"; return 1; }
		sleep 1; t=$((t + 1))
	done
}

# Stops the QEMU of HMP socket MON.
usage_quit_hmp() { # MON
	echo quit | socat - "unix-connect:$1" >/dev/null
	sleep 2
}

# The destination (console LOG, HMP socket MON) runs after the migration,
# and the guest, migrated, reached its shell there or before.
usage_migrated() { # LOG MON
	local t=0 st
	while :; do
		st=$(echo "info status" | socat - "unix-connect:$2" 2>/dev/null | tr -d '\r' | grep -o 'VM status: [a-z-]*')
		[ "$st" = "VM status: running" ] && break
		[ $t -ge 300 ] && { echo "destination: '$st' after 300 s"; return 1; }
		sleep 3; t=$((t + 3))
	done
	# The guest may finish booting on either side: the block migrates it
	# after a fixed wait, which a slow nested boot can outlast. Its marker
	# is then in the destination's log (no waiting on the stopped source).
	if grep -aq MDEV-RS-GUEST-READY "$T/mig-src.log" 2>/dev/null; then
		usage_guest_ready "$T/mig-src.log"
	else
		usage_guest_ready "$1" || return 1
	fi
	echo "destination: $st"
}

usage_phase() {
	local script=$OUT/usage-vm.sh line
	[ "$1" = test ] || return 0
	if ! python3 "$TOP/tools/testing/vm/usage_blocks.py" "$TOP/$USAGE_DOC" vm > "$script" 2> "$OUT/usage-blocks.err"; then
		result "not ok - usage: $USAGE_DOC: $(cat "$OUT/usage-blocks.err")"
		return
	fi
	while IFS= read -r line; do result "$line"; done < "$OUT/usage-host-results.txt"
	if grep -q '^not ok' "$OUT/usage-host-results.txt"; then
		result "not ok - usage: the blocks in the VM: not run, the host's block failed"
		return
	fi
	# mdevctl's configuration directory (the VM's /etc is the host's, read-only).
	mount -t tmpfs usage-mdevctl /etc/mdevctl.d || { result "not ok - usage: cannot mount a tmpfs on /etc/mdevctl.d"; return; }
	# (what mdevctl's package installs there)
	mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
	mkdir -p /tmp/usage && chmod 1777 /tmp/usage
	log "usage: the shell blocks of $USAGE_DOC (QEMU boots the guest image four times)"
	: > "$OUT/usage-results.txt"
	(
		cd "$TOP" || exit 1
		export T=/tmp/usage USAGE_ROOT=$OUT/usage-root OUT TOP
		usage_n="" usage_title=""
		usage_begin() { usage_n=$1 usage_title=$2 usage_first=$3 usage_t0=$SECONDS; log "  usage block $1 ($2)"; echo "### block $1 ($2)"; }
		usage_end() { echo "ok - usage: block $usage_n ($usage_title, $((SECONDS - usage_t0)) s): $usage_first" >> "$OUT/usage-results.txt"; }
		usage_elsewhere() { :; }
		usage_failed() {
			local i
			echo "not ok - usage: block $usage_n ($usage_title): '$BASH_COMMAND' failed (status $1; see usage-vm.log)" >> "$OUT/usage-results.txt"
			for ((i = usage_n + 1; i <= USAGE_TOTAL; i++)); do
				grep -q "^usage_begin $i " "$OUT/usage-vm.sh" &&
					echo "not run - usage: block $i: an earlier block failed" >> "$OUT/usage-results.txt"
			done
			exit 1
		}
		set -eE -o pipefail
		trap 'usage_failed $?' ERR
		# shellcheck disable=SC1090
		. "$script"
	) > "$OUT/usage-vm.log" 2>&1 < /dev/null &
	local pid=$! watchdog want got
	# A block that hangs (a QEMU that never answers) ends the blocks, not the VM.
	( sleep 1200; kill -TERM "$pid" 2>/dev/null ) &
	watchdog=$!
	wait "$pid"
	kill "$watchdog" 2>/dev/null
	while IFS= read -r line; do result "$line"; done < "$OUT/usage-results.txt"
	want=$(grep -c '^usage_begin ' "$script") got=$(grep -c '^\(ok\|not ok\|not run\) - usage: block' "$OUT/usage-results.txt")
	[ "$got" = "$want" ] || result "not ok - usage: $got of the $want blocks for the VM reported (killed after 1200 s?; see usage-vm.log)"
	umount /etc/mdevctl.d
	usage_libvirtd_stop
	# Whatever a failed block left: QEMU, mdevs, modules (phase_sweep then
	# reports nothing more for the same failure).
	if grep -q '^not ok' "$OUT/usage-results.txt"; then
		pkill -x qemu-system-x86; sleep 2
		for d in /sys/bus/mdev/devices/*; do [ -e "$d/remove" ] && mdev_remove "${d##*/}"; done
		rmmod mdpy mbochs 2>/dev/null
	fi
	return 0
}
