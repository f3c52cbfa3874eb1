# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mdev-probe and the management integrations (issue 13),
# sourced by guest-run.sh inside the test VM (uses its OUT, KDIR, TOP, log,
# result).
#
# MODE=test:
#  - mdev-probe --stream type PARENT TYPE on every type of both drivers, C
#    sample and Rust module; each JSON report checked field by field
#    (probe_check.py); the transient mdev is gone afterwards;
#  - an existing device by UUID (table) and by sysfs path, through the
#    iommufd cdev and the group/container, without --stream;
#  - without --stream nothing changes the device: under strace, no
#    migration data file (vfio_mig) is opened and the report's state is
#    RUNNING before and after; with --stream the stream is read from one
#    and the device is RUNNING afterwards;
#  - compat verdicts (same type, other type, other driver, a C source), each
#    checked against the kernel's own verdict on the same devices;
#  - bad input: no arguments, an unknown option, unknown UUID, not a UUID,
#    a path that is not an mdev, a busy device, no permission, a parent
#    without that type, SIGTERM/SIGINT during a type probe: each its exit
#    status and message (and under --json the error object), nothing left;
#  - mdevctl: types, define, start, list (with our callout's attributes,
#    the callout changing no device's state), stop, undefine;
#  - libvirt: libvirtd's node device driver lists our parents and types.

. "$TOP/tools/testing/vm/mbochs-c-kmemleak.sh"
PROBE=$TOP/out/mdev-probe
PROBE_CHECK=$TOP/tools/testing/vm/probe_check.py
CALLOUT=$TOP/tools/mdev-probe/mdevctl/mdev-rs-callout
PD=$OUT/probe

# The mdevs that exist now, one a line.
probe_mdevs() { ls /sys/bus/mdev/devices 2>/dev/null | sort; }

probe_new_uuid() { cat /proc/sys/kernel/random/uuid; }

# Runs mdev-probe ARGS...: its stdout to $PD/last.out, stderr to
# $PD/last.err, exit status in PROBE_RC.
probe_run() {
	# shellcheck disable=SC2086
	${PROBE_AS:-} "$PROBE" "$@" > "$PD/last.out" 2> "$PD/last.err"
	PROBE_RC=$?
}

# Field-by-field checks of reports, run together (probe_checks_run): one
# "LABEL|FILE|IMPL|TYPE|SOURCE|PRE" a check, PRE a failure already found
# (e.g. by jq) or empty.
PROBE_CHECKS=()
probe_check_later() { # LABEL FILE IMPL TYPE SOURCE [PRE]
	PROBE_CHECKS+=("$1|$2|$3|$4|$5|${6:-}")
}
probe_checks_run() {
	local args=() c label f impl type src pre line i=0 lines=()
	[ ${#PROBE_CHECKS[@]} = 0 ] && return
	for c in "${PROBE_CHECKS[@]}"; do
		IFS='|' read -r label f impl type src pre <<< "$c"
		args+=("$f" "$impl" "$type" "$src")
	done
	mapfile -t lines < <(python3 "$PROBE_CHECK" "${args[@]}" 2>&1)
	for c in "${PROBE_CHECKS[@]}"; do
		IFS='|' read -r label f impl type src pre <<< "$c"
		line=${lines[$i]:-bad: no verdict from probe_check.py}
		i=$((i + 1))
		if [ -n "$pre" ]; then
			result "not ok - probe: $label: $pre"
		elif [[ $line == ok\ * ]]; then
			result "ok - probe: $label, ${line#ok }"
		else
			result "not ok - probe: $label: ${line#bad }"
		fi
	done
	PROBE_CHECKS=()
}

# One line: NAME WANT_RC GREP ARGS...: the exit status must be WANT_RC, its
# stderr must match GREP (extended regex), and no mdev may be left.
probe_expect() {
	local name=$1 want=$2 pat=$3 before after
	shift 3
	before=$(probe_mdevs)
	probe_run "$@"
	after=$(probe_mdevs)
	if [ "$PROBE_RC" != "$want" ]; then
		result "not ok - probe: bad input: $name: exit $PROBE_RC, expected $want ($(head -c 300 "$PD/last.err"))"
	elif ! grep -Eq "$pat" "$PD/last.err"; then
		result "not ok - probe: bad input: $name: message '$(head -c 300 "$PD/last.err")' does not match /$pat/"
	elif [ "$before" != "$after" ]; then
		result "not ok - probe: bad input: $name: mdevs before ($before) and after ($after) differ"
	else
		result "ok - probe: bad input: $name: exit $want, '$(head -c 160 "$PD/last.err" | tr '\n' ' ')', nothing left behind"
	fi
}

# NAME WANT_RC KIND ARGS...: under --json the error is an object on stdout
# with that exit status and kind, its errno named if it has one.
probe_expect_json() {
	local name=$1 want=$2 kind=$3 j
	shift 3
	probe_run --json "$@"
	j=$(jq -c '{kind, exit_status, errno, errno_name}' "$PD/last.out" 2>/dev/null)
	if [ "$PROBE_RC" = "$want" ] && jq -e --arg k "$kind" --argjson rc "$want" \
		'.kind == $k and .exit_status == $rc and (.error | type == "string") and
		 ((.errno == null) == (.errno_name == null)) and (.errno == null or (.errno_name | startswith("E")))' \
		"$PD/last.out" > /dev/null 2>&1; then
		result "ok - probe: bad input: $name: exit $want, JSON error $j"
	else
		result "not ok - probe: bad input: $name: exit $PROBE_RC (expected $want), stdout '$(head -c 300 "$PD/last.out")'"
	fi
}

# Type probes of every type of DRIVER (IMPL c|rust, module loaded).
probe_types() { # IMPL DRIVER TYPE...
	local impl=$1 drv=$2 type f msg before after
	shift 2
	for type in "$@"; do
		f=$PD/$impl-$type.json
		before=$(probe_mdevs)
		probe_run --json --stream type "$drv" "$type"
		after=$(probe_mdevs)
		cp "$PD/last.out" "$f"
		if [ "$PROBE_RC" != 0 ]; then
			result "not ok - probe: $impl $type: mdev-probe type exited $PROBE_RC: $(head -c 300 "$PD/last.err")"
			continue
		fi
		probe_check_later "$impl $type: type probe JSON (--stream)" "$f" "$impl" "$type" type+stream
		if [ "$before" = "$after" ]; then
			result "ok - probe: $impl $type: the transient mdev was removed"
		else
			result "not ok - probe: $impl $type: mdevs before ($before) and after ($after) differ"
		fi
	done
}

# An existing device: by UUID (table), by path (JSON, checked), through
# the group/container.
probe_existing() { # IMPL DRIVER TYPE
	local impl=$1 drv=$2 type=$3 u pre
	u=$(probe_new_uuid)
	echo "$u" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" ||
		{ result "not ok - probe: $impl $type: creating an mdev failed"; return; }
	probe_run "$u"
	cp "$PD/last.out" "$PD/$impl-$type-table.txt"
	if [ "$PROBE_RC" = 0 ] && grep -q "^mdev $u (existing)" "$PD/last.out" &&
		grep -Eq "^  display +$( [ "$drv" = mdpy ] && echo region || echo dmabuf) " "$PD/last.out" &&
		grep -q "sysfsdev=/sys/bus/mdev/devices/$u,display=on" "$PD/last.out"; then
		result "ok - probe: $impl $type: existing device by UUID, table (display, QEMU option)"
	else
		result "not ok - probe: $impl $type: table of an existing device (exit $PROBE_RC, see probe/$impl-$type-table.txt)"
	fi
	probe_run --json "/sys/bus/mdev/devices/$u"
	cp "$PD/last.out" "$PD/$impl-$type-device.json"
	pre=
	[ "$PROBE_RC" = 0 ] || pre="exit $PROBE_RC: $(head -c 300 "$PD/last.err")"
	jq -e '.vfio.opened_through | startswith("iommufd cdev")' "$PD/last.out" > /dev/null 2>&1 ||
		pre="${pre:-not opened through the iommufd cdev}"
	probe_check_later "$impl $type: existing device by sysfs path through the iommufd cdev, JSON" \
		"$PD/$impl-$type-device.json" "$impl" "$type" device "$pre"
	probe_run --json --interface group "$u"
	cp "$PD/last.out" "$PD/$impl-$type-group.json"
	pre=
	[ "$PROBE_RC" = 0 ] || pre="exit $PROBE_RC: $(head -c 300 "$PD/last.err")"
	jq -e '.vfio.opened_through | startswith("group /dev/vfio/")' "$PD/last.out" > /dev/null 2>&1 ||
		pre="${pre:-not opened through the group/container}"
	probe_check_later "$impl $type: existing device through the group/container, JSON" \
		"$PD/$impl-$type-group.json" "$impl" "$type" device "$pre"
	[ "$impl" = rust ] && probe_state_kept "$impl $type" "$u" "$type"
	mdev_remove "$u"
}

# Whether mdev-probe ARGS... opened a migration data file (the anon inode
# "vfio_mig" the drivers' STOP_COPY hands out) and read from it: its strace
# (-y names each fd's file) in FILE. Prints "N ioctls on the device, M
# reads of a vfio_mig data file".
probe_strace() { # FILE ARGS...
	local f=$1
	shift
	strace -f -qq -y -e trace=ioctl,read -o "$f" "$PROBE" "$@" > "$f.out" 2> "$f.err"
	PROBE_RC=$?
	echo "$(grep -c '^[0-9 ]*ioctl([0-9]*</dev/vfio/' "$f") ioctls on the device, $(grep -c 'read([0-9]*<anon_inode:[^>]*vfio_mig' "$f") reads of a vfio_mig data file"
}

# A probe without --stream changes nothing: no data file (no STOP_COPY),
# the state RUNNING before and after; with --stream the stream is read
# from a data file and the device is back to RUNNING. An independent
# witness (strace) and the report's own.
probe_state_kept() { # LABEL UUID TYPE
	local label=$1 u=$2 type=$3 t n r
	command -v strace > /dev/null ||
		{ result "not ok - probe: $label: default probe changes no state: strace not installed (bootstrap-deps.sh installs it)"; return; }
	t=$PD/strace-default-$type
	n=$(probe_strace "$t" --json "$u")
	r=$(jq -r '"\(.migration.state) -> \(.migration.state_after), stream \(.migration.stream.obtained)"' "$t.out" 2>/dev/null)
	if [ "$PROBE_RC" = 0 ] && [[ $n == [1-9]*" ioctls on the device, 0 reads"* ]] &&
		! grep -q vfio_mig "$t" && [ "$r" = "running -> running, stream not read" ]; then
		result "ok - probe: $label: a probe without --stream changes no state: strace: $n, no data file opened; report: $r"
	else
		result "not ok - probe: $label: a probe without --stream: exit $PROBE_RC, strace: $n, vfio_mig opened $(grep -c vfio_mig "$t") times, report: $r (see probe/$(basename "$t"))"
	fi
	t=$PD/strace-stream-$type
	n=$(probe_strace "$t" --json --stream "$u")
	r=$(jq -r '"\(.migration.state) -> \(.migration.state_after), stream \(.migration.stream.length) bytes, header \(.migration.stream.header.type)"' "$t.out" 2>/dev/null)
	if [ "$PROBE_RC" = 0 ] && [[ $n == [1-9]*" ioctls on the device, "[1-9]* ]] &&
		[[ $r == "running -> running, stream "[1-9]*" bytes, header $type" ]]; then
		result "ok - probe: $label: --stream reads the stream from a data file and leaves the device RUNNING: strace: $n; report: $r"
	else
		result "not ok - probe: $label: --stream: exit $PROBE_RC, strace: $n, report: $r (see probe/$(basename "$t"))"
	fi
}

# compat SRC DST against the kernel: NAME SRC-UUID DST-UUID WANT-VERDICT WANT-ERRNO
probe_compat_vs_kernel() {
	local name=$1 s=$2 d=$3 want=$4 werr=$5 v e rc k kacc kerr
	"$PROBE" --json --stream "$s" > "$PD/compat-src.json" 2>> "$PD/compat.err" &&
		"$PROBE" --json --stream "$d" > "$PD/compat-dst.json" 2>> "$PD/compat.err" ||
		{ result "not ok - probe: compat $name: probing the devices failed ($(tail -c 200 "$PD/compat.err"))"; return; }
	"$PROBE" --json compat "$PD/compat-src.json" "$PD/compat-dst.json" > "$PD/compat-$name.json" 2>> "$PD/compat.err"
	rc=$?
	v=$(jq -r .verdict "$PD/compat-$name.json" 2>/dev/null) e=$(jq -r '.errno // "none"' "$PD/compat-$name.json" 2>/dev/null)
	k=$("$PROBE" kernel-check "$s" "$d" 2>> "$PD/compat.err")
	kacc=$(printf '%s' "$k" | jq -r .accepted 2>/dev/null) kerr=$(printf '%s' "$k" | jq -r '.errno // "none"' 2>/dev/null)
	local want_rc=0; [ "$want" = compatible ] || want_rc=10
	if [ "$v" != "$want" ] || [ "$e" != "$werr" ] || [ "$rc" != "$want_rc" ]; then
		result "not ok - probe: compat $name: verdict $v ($e, exit $rc), expected $want ($werr, exit $want_rc)"
	elif { [ "$want" = compatible ] && [ "$kacc" != true ]; } || { [ "$want" != compatible ] && [ "$kerr" != "$werr" ]; }; then
		result "not ok - probe: compat $name: verdict $v ($e), but the kernel says: $k"
	else
		result "ok - probe: compat $name: $v ($e, exit $rc), as the kernel's RESUMING -> STOP says (accepted $kacc, $kerr): $(jq -r '.reasons[0]' "$PD/compat-$name.json")"
	fi
}

probe_compat() {
	local a b c d rc
	a=$(probe_new_uuid) b=$(probe_new_uuid) c=$(probe_new_uuid) d=$(probe_new_uuid)
	echo "$a" > /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-xga/create &&
		echo "$b" > /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-xga/create &&
		echo "$c" > /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-hd/create &&
		echo "$d" > /sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-medium/create ||
		{ result "not ok - probe: compat: creating the mdevs failed"; return; }
	probe_compat_vs_kernel "same type (rust mdpy-xga -> mdpy-xga)" "$a" "$b" compatible none
	probe_compat_vs_kernel "other type (rust mdpy-xga -> mdpy-hd)" "$a" "$c" incompatible EXDEV
	probe_compat_vs_kernel "other driver (rust mdpy-xga -> mbochs-medium)" "$a" "$d" incompatible EXDEV
	for u in $a $b $c $d; do mdev_remove "$u"; done
	# Type reports, as a management host would keep them.
	"$PROBE" compat "$PD/rust-mbochs-small.json" "$PD/rust-mbochs-medium.json" > "$PD/compat-types.txt" 2>&1
	rc=$?
	if [ $rc = 10 ] && grep -q '^incompatible: .*EXDEV' "$PD/compat-types.txt" && grep -q 'memory 4194304 bytes' "$PD/compat-types.txt"; then
		result "ok - probe: compat of type reports (rust mbochs-small -> mbochs-medium): incompatible, EXDEV first, the memory size named too"
	else
		result "not ok - probe: compat of type reports (mbochs-small -> medium): exit $rc: $(head -c 300 "$PD/compat-types.txt")"
	fi
	"$PROBE" compat "$PD/c-mdpy-xga.json" "$PD/rust-mdpy-xga.json" > "$PD/compat-c.txt" 2>&1
	rc=$?
	if [ $rc = 10 ] && grep -q 'the source has no migration' "$PD/compat-c.txt"; then
		result "ok - probe: compat of a C source (c mdpy-xga -> rust mdpy-xga): incompatible, the source has no migration"
	else
		result "not ok - probe: compat of a C source: exit $rc: $(head -c 300 "$PD/compat-c.txt")"
	fi
	echo 'not json' > "$PD/garbage.json"
	probe_expect "compat with a file that is not a report" 12 'not an mdev-probe report' \
		compat "$PD/garbage.json" "$PD/rust-mdpy-xga.json"
}

# Waits (at most 30 s) until PID has FILE-GLOB open: 0 if so.
probe_wait_open() { # PID GLOB
	local i
	for i in $(seq 300); do
		# shellcheck disable=SC2086
		ls -l /proc/"$1"/fd 2>/dev/null | grep -q -- "$2" && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

probe_bad_inputs() {
	local u holder rc before after sig name
	probe_expect "no arguments (usage)" 2 'nothing to do'
	probe_expect "an unknown option (usage)" 2 "unexpected argument '--nosuch'" --nosuch "$(probe_new_uuid)"
	probe_expect "unknown UUID" 3 'no mdev' "$(probe_new_uuid)"
	probe_expect "not a UUID" 3 'neither a UUID nor a sysfs path' not-a-uuid
	probe_expect "no such path" 3 'no such file' /sys/bus/mdev/devices/nothing-here
	probe_expect "a path that is not an mdev (the parent)" 4 'is not an mdev' /sys/class/mdev_bus/mdpy
	probe_expect "a path that is not an mdev (/tmp)" 4 'is not an mdev' /tmp
	probe_expect "a parent without that type" 7 "has no mdev type 'mbochs-small'.*mdpy-xga" type mdpy mbochs-small
	probe_expect "no such parent" 7 "no mdev parent 'nosuch'" type nosuch mdpy-xga

	u=$(probe_new_uuid)
	echo "$u" > /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/create
	# Busy: another mdev-probe holds it open through the cdev.
	"$PROBE" --hold 60 "$u" > /dev/null 2>&1 &
	holder=$!
	if probe_wait_open $holder /dev/vfio/devices/; then
		probe_expect "a device already open (cdev holder)" 5 'in use' "$u"
		probe_expect "a device already open, group/container asked" 5 'in use' --interface group "$u"
		probe_expect_json "a device already open, --json" 5 busy "$u"
	else
		result "not ok - probe: bad input: busy: the holder never opened the device"
	fi
	kill -TERM $holder; wait $holder
	rc=$?
	[ $rc = 143 ] && result "ok - probe: SIGTERM of a probe holding a device: exit 143" ||
		result "not ok - probe: SIGTERM of a probe holding a device: exit $rc, expected 143"
	# No permission: user nobody (the tree is world-readable).
	PROBE_AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
	probe_expect "no permission to open the device (user nobody)" 6 'ermission denied' "$u"
	probe_expect "no permission to create an mdev (user nobody)" 6 'ermission denied' type mdpy mdpy-xga
	probe_expect_json "no permission, --json" 6 permission "$u"
	PROBE_AS=
	mdev_remove "$u"

	# Signals during a type probe: the transient mdev is removed.
	for sig in TERM INT; do
		before=$(probe_mdevs)
		"$PROBE" --hold 60 type mdpy mdpy-xga > /dev/null 2> "$PD/sig.err" &
		holder=$!
		probe_wait_open $holder /dev/vfio/devices/
		after=$(probe_mdevs)
		kill -$sig $holder; wait $holder
		rc=$?
		name="SIG$sig during a type probe"
		local want=$((128 + $(kill -l $sig)))
		if [ "$before" = "$after" ]; then
			result "not ok - probe: $name: no transient mdev was seen"
		elif [ $rc != $want ]; then
			result "not ok - probe: $name: exit $rc, expected $want ($(head -c 200 "$PD/sig.err"))"
		elif [ "$(probe_mdevs)" != "$before" ]; then
			result "not ok - probe: $name: the transient mdev is still there: $(probe_mdevs)"
		else
			result "ok - probe: $name: exit $rc, the transient mdev was removed ('$(head -c 100 "$PD/sig.err")')"
		fi
	done
}

probe_mdevctl() {
	local u v w conf out rc attrs
	command -v mdevctl > /dev/null || { result "not ok - probe: mdevctl: not installed (bootstrap-deps.sh installs it)"; return; }
	# /etc is the host's, read-only: mdevctl's config lives on a tmpfs here.
	mount -t tmpfs mdevctl /etc/mdevctl.d || { result "not ok - probe: mdevctl: cannot mount a tmpfs on /etc/mdevctl.d"; return; }
	mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
	install -m 755 "$CALLOUT" /etc/mdevctl.d/scripts.d/callouts/mdev-rs
	export MDEV_PROBE=$PROBE
	out=$(mdevctl types --dumpjson 2> "$PD/mdevctl.err")
	printf '%s\n' "$out" > "$PD/mdevctl-types.json"
	if printf '%s' "$out" | jq -e '[.. | objects | select(has("mdpy-xga") or has("mbochs-medium"))] | length >= 2' > /dev/null &&
		mdevctl types | grep -q 'mbochs-large'; then
		result "ok - probe: mdevctl types lists the mdpy and mbochs types"
	else
		result "not ok - probe: mdevctl types: $(head -c 300 "$PD/mdevctl-types.json") $(head -c 200 "$PD/mdevctl.err")"
	fi
	u=$(probe_new_uuid)
	conf=/etc/mdevctl.d/mdpy/$u
	if mdevctl define -u "$u" -p mdpy -t mdpy-xga 2>> "$PD/mdevctl.err" && [ -f "$conf" ] &&
		mdevctl list -d | grep -q "$u mdpy mdpy-xga"; then
		result "ok - probe: mdevctl define: $conf written, list -d shows it"
	else
		result "not ok - probe: mdevctl define (see probe/mdevctl.err)"
	fi
	if mdevctl start -u "$u" 2>> "$PD/mdevctl.err" && [ -e "/sys/bus/mdev/devices/$u" ] &&
		mdevctl list | grep -q "$u mdpy mdpy-xga"; then
		result "ok - probe: mdevctl start of the defined device: it exists, list shows it"
	else
		result "not ok - probe: mdevctl start (see probe/mdevctl.err)"
	fi
	if mdevctl stop -u "$u" 2>> "$PD/mdevctl.err" && [ ! -e "/sys/bus/mdev/devices/$u" ]; then
		result "ok - probe: mdevctl stop: the device is gone"
	else
		result "not ok - probe: mdevctl stop (see probe/mdevctl.err)"
	fi
	if mdevctl undefine -u "$u" 2>> "$PD/mdevctl.err" && [ ! -e "$conf" ] && ! mdevctl list -d | grep -q "$u"; then
		result "ok - probe: mdevctl undefine: the config is gone"
	else
		result "not ok - probe: mdevctl undefine (see probe/mdevctl.err)"
	fi
	# Running, undefined devices: list -v shows the callout's attributes.
	v=$(probe_new_uuid) w=$(probe_new_uuid)
	mdevctl start -u "$v" -p mdpy -t mdpy-xga 2>> "$PD/mdevctl.err"
	mdevctl start -u "$w" -p mbochs -t mbochs-small 2>> "$PD/mdevctl.err"
	# The callout runs mdev-probe under strace (an independent witness
	# that it changes no device: no migration data file opened).
	rm -f "$PD"/callout-strace.*
	printf '#!/bin/sh\nexec strace -f -qq -y -e trace=ioctl,read -o "%s/callout-strace.$$" "%s" "$@"\n' "$PD" "$PROBE" > "$PD/probe-traced"
	chmod 755 "$PD/probe-traced"
	MDEV_PROBE=$PD/probe-traced mdevctl list -v --dumpjson > "$PD/mdevctl-list.json" 2>> "$PD/mdevctl.err"
	for x in "$v mdpy-xga region no none stop-copy,p2p,pre-copy" \
		"$w mbochs-small dmabuf yes max 800x600 stop-copy,p2p,pre-copy"; do
		set -- $x
		local id=$1 t=$2 disp=$3 gl=$4
		attrs=$(jq -c --arg u "$id" '[.. | objects | select(has($u)) | .[$u].attrs] | first | add' "$PD/mdevctl-list.json" 2>/dev/null)
		local want_edid want_mig
		if [ "$t" = mdpy-xga ]; then want_edid=none want_mig=$6
		else want_edid="$5 $6" want_mig=$7; fi
		if printf '%s' "$attrs" | jq -e --arg d "$disp" --arg g "$gl" --arg e "$want_edid" --arg m "$want_mig" '
			.["mdev-probe.display"] == $d and .["mdev-probe.display-needs-gl"] == $g and
			.["mdev-probe.edid"] == $e and .["mdev-probe.migration"] == $m and
			.["mdev-probe.dma-logging"] == "ok" and (has("mdev-probe.stream") | not) and
			(.["mdev-probe.stop-copy-bytes"] | test("^[0-9]+$"))' > /dev/null; then
			result "ok - probe: mdevctl list -v --dumpjson shows the callout's attributes of $t: $attrs"
		else
			result "not ok - probe: mdevctl list -v --dumpjson, $t: attributes $attrs (see probe/mdevctl-list.json)"
		fi
	done
	local traces=0 probed=0 mig=0 f
	for f in "$PD"/callout-strace.*; do
		[ -f "$f" ] || continue
		traces=$((traces + 1))
		grep -q '^[0-9 ]*ioctl([0-9]*</dev/vfio/' "$f" && probed=$((probed + 1))
		grep -q vfio_mig "$f" && mig=$((mig + 1))
	done
	if [ $traces -ge 2 ] && [ $probed = $traces ] && [ $mig = 0 ]; then
		result "ok - probe: mdevctl list -v: the callout's $traces probes changed no device (strace: VFIO ioctls, no migration data file opened)"
	else
		result "not ok - probe: mdevctl list -v: callout probes traced $traces, with VFIO ioctls $probed, opening a migration data file $mig (see probe/callout-strace.*)"
	fi
	# define of a running device would save the report as sysfs settings:
	# the callout refuses it, and nothing is defined.
	if ! mdevctl define -u "$v" 2> "$PD/mdevctl-define-running.err" &&
		grep -q 'not defining' "$PD/mdevctl-define-running.err" && [ ! -e "/etc/mdevctl.d/mdpy/$v" ]; then
		result "ok - probe: mdevctl define of a running device: the callout refuses to save the report as attributes"
	else
		result "not ok - probe: mdevctl define of a running device: $(head -c 300 "$PD/mdevctl-define-running.err")"
	fi
	mdevctl stop -u "$v"; mdevctl stop -u "$w"
	[ -z "$(probe_mdevs)" ] || result "not ok - probe: mdevctl: mdevs left: $(probe_mdevs)"
	unset MDEV_PROBE
	umount /etc/mdevctl.d
}

# libvirtd with only its node device driver (LIBVIRT_DRIVER_DIR), on udev.
probe_libvirt() {
	local lv=$PD/libvirt d i u name pm pb uri=nodedev:///system?socket=/run/libvirt/libvirt-sock
	mkdir -p "$lv"
	command -v libvirtd > /dev/null && command -v virsh > /dev/null ||
		{ result "not ok - probe: libvirt: libvirtd/virsh not installed (bootstrap-deps.sh installs them)"; return; }
	for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /run/udev; do
		mkdir -p "$d" 2>/dev/null
		{ touch "$d/.w" && rm -f "$d/.w"; } 2>/dev/null || mount -t tmpfs lv "$d"
	done
	mkdir -p /tmp/lv-drivers
	ln -sf /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_nodedev.so /tmp/lv-drivers/
	printf '%s\n' 'auth_unix_rw = "none"' 'auth_unix_ro = "none"' \
		'log_outputs = "3:file:'"$lv"'/libvirtd.log"' > /tmp/lv-libvirtd.conf
	# udevd for libvirt's hotplug monitor; only our devices are triggered
	# (a trigger of everything would run every rule of the host's udev).
	if ! pgrep -x systemd-udevd > /dev/null; then
		/lib/systemd/systemd-udevd --daemon 2> "$lv/udevd.err"
		LV_UDEVD=1
	fi
	# mdevctl's definitions, which libvirt lists: writable, and there
	# before libvirtd starts (it watches the directory only if it exists).
	mount -t tmpfs probe-mdevctl /etc/mdevctl.d
	mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
	u=$(probe_new_uuid)
	echo "$u" > /sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-medium/create
	udevadm trigger --action=add --subsystem-match=mdev --subsystem-match=mdpy --subsystem-match=mbochs 2> "$lv/udev-trigger.err"
	timeout 60 udevadm settle 2>> "$lv/udev-trigger.err"
	LIBVIRT_DRIVER_DIR=/tmp/lv-drivers libvirtd --config /tmp/lv-libvirtd.conf --pid-file /tmp/lv-libvirtd.pid > "$lv/libvirtd.out" 2>&1 &
	LIBVIRTD_PID=$!
	for i in $(seq 120); do
		virsh -c "$uri" nodedev-list > "$lv/list-all.txt" 2>&1 && break
		kill -0 $LIBVIRTD_PID 2>/dev/null || break
		sleep 0.5
	done
	if ! kill -0 $LIBVIRTD_PID 2>/dev/null || ! grep -q computer "$lv/list-all.txt"; then
		result "not ok - probe: libvirt: libvirtd did not start or answer (see probe/libvirt/: $(tail -c 200 "$lv/libvirtd.out") $(tail -c 200 "$lv/list-all.txt"))"
		mdev_remove "$u"
		kill $LIBVIRTD_PID 2>/dev/null; wait $LIBVIRTD_PID 2>/dev/null
		umount /etc/mdevctl.d
		return
	fi
	result "ok - probe: libvirt: $(libvirtd --version | head -1) (node device driver only) answers virsh -c "$uri" in the VM ($(wc -l < "$lv/list-all.txt") node devices)"
	virsh -c "$uri" nodedev-list --cap mdev > "$lv/list-mdev.txt" 2>&1
	name=$(grep -m1 "mdev_${u//-/_}" "$lv/list-mdev.txt")
	if [ -n "$name" ]; then
		virsh -c "$uri" nodedev-dumpxml "$name" > "$lv/dumpxml-mdev.xml" 2>&1
		if grep -q "<type id='mbochs-medium'" "$lv/dumpxml-mdev.xml"; then
			result "ok - probe: libvirt: the mbochs-medium mdev is node device $name of type mbochs-medium (parent $(grep -o '<parent>[^<]*' "$lv/dumpxml-mdev.xml" | cut -c9-))"
		else
			result "not ok - probe: libvirt: nodedev-dumpxml $name: $(tr '\n' ' ' < "$lv/dumpxml-mdev.xml" | head -c 300)"
		fi
	else
		result "not ok - probe: libvirt: virsh nodedev-list --cap mdev has no mdev_${u//-/_}: '$(tr '\n' ' ' < "$lv/list-mdev.txt" | head -c 300)'"
	fi
	virsh -c "$uri" nodedev-list --cap mdev_types > "$lv/list-mdev_types.txt" 2>&1
	pm=$(grep -m1 -i 'mdpy' "$lv/list-mdev_types.txt") pb=$(grep -m1 -i 'mbochs' "$lv/list-mdev_types.txt")
	if [ -n "$pm" ] && [ -n "$pb" ]; then
		virsh -c "$uri" nodedev-dumpxml "$pm" > "$lv/dumpxml-mdpy.xml" 2>&1
		virsh -c "$uri" nodedev-dumpxml "$pb" > "$lv/dumpxml-mbochs.xml" 2>&1
		if grep -q "<type id='mdpy-xga'" "$lv/dumpxml-mdpy.xml" && grep -q "<type id='mbochs-large'" "$lv/dumpxml-mbochs.xml"; then
			result "ok - probe: libvirt: nodedev-list --cap mdev_types lists $pm and $pb, dumpxml their types"
		else
			result "not ok - probe: libvirt: nodedev-dumpxml of the parents: $(tr '\n' ' ' < "$lv/dumpxml-mbochs.xml" | head -c 300)"
		fi
	else
		# libvirt makes a node device with mdev_types only of a parent on
		# the pci, css or ap bus (later versions: also of the "mtty" class,
		# by name); our parents are devices of the "mdpy" and "mbochs"
		# classes, as the C samples' are, so libvirt never lists them
		# (management.rst): not run, never passed, until libvirt can.
		result "not run - probe: libvirt: virsh nodedev-list --cap mdev_types does not list the mdpy and mbochs parents ('$(tr '\n' ' ' < "$lv/list-mdev_types.txt" | head -c 200)'): libvirt only knows mdev parents on the pci, css and ap buses, ours are /sys/class/mdpy and /sys/class/mbochs devices (see management.rst)"
	fi
	probe_libvirt_define "$lv" "$uri" mdpy mdpy-vga
	probe_libvirt_define "$lv" "$uri" mbochs mbochs-small
	mdev_remove "$u"
	kill $LIBVIRTD_PID; wait $LIBVIRTD_PID 2>/dev/null
	[ -n "${LV_UDEVD:-}" ] && udevadm control --exit
	umount /etc/mdevctl.d
}

# A persistent mdev of PARENT's TYPE through libvirt's node device API:
# virsh nodedev-define, which needs the parent to be a node device (ours are
# not: not run, with libvirt's words); then the way that works, a definition
# made with mdevctl, which libvirt lists (inactive) and starts and stops by
# UUID (virsh nodedev-start / nodedev-destroy).
probe_libvirt_define() { # DIR URI PARENT TYPE
	local lv=$1 uri=$2 parent=$3 type=$4 u name i
	u=$(probe_new_uuid)
	printf '%s\n' '<device>' "  <parent>$parent</parent>" "  <capability type='mdev'>" \
		"    <type id='$type'/>" "    <uuid>$u</uuid>" '  </capability>' '</device>' > "$lv/define-$parent.xml"
	if virsh -c "$uri" nodedev-define "$lv/define-$parent.xml" > "$lv/define-$parent.out" 2>&1; then
		result "ok - probe: libvirt: virsh nodedev-define of a $type mdev (parent $parent): $(tr '\n' ' ' < "$lv/define-$parent.out" | head -c 150)"
		virsh -c "$uri" nodedev-undefine "mdev_${u//-/_}_$parent" >> "$lv/define-$parent.out" 2>&1
		mdevctl undefine --uuid "$u" 2>/dev/null
	elif grep -q "invalid parent device '$parent'" "$lv/define-$parent.out"; then
		result "not run - probe: libvirt: virsh nodedev-define of a $type mdev: libvirt refuses it ('invalid parent device '$parent''): the parent must be a node device, and libvirt makes none of the $parent class device (management.rst); mdevctl defines it (below)"
	else
		result "not ok - probe: libvirt: virsh nodedev-define of a $type mdev: $(tr '\n' ' ' < "$lv/define-$parent.out" | head -c 300)"
	fi
	u=$(probe_new_uuid)
	mdevctl define --uuid "$u" --parent "$parent" --type "$type" > "$lv/mdevctl-define-$parent.out" 2>&1 ||
		{ result "not ok - probe: libvirt: mdevctl define of a $type mdev: $(head -c 200 "$lv/mdevctl-define-$parent.out")"; return; }
	for i in $(seq 60); do
		name=$(virsh -c "$uri" nodedev-list --all --cap mdev 2>/dev/null | grep -m1 "${u//-/_}")
		[ -n "$name" ] && break
		sleep 1
	done
	if [ -z "$name" ]; then
		result "not ok - probe: libvirt: the mdevctl definition of a $type mdev ($u) is no node device after 60 s"
	elif ! virsh -c "$uri" nodedev-start "$name" > "$lv/start-$parent.out" 2>&1 || [ ! -e "/sys/bus/mdev/devices/$u" ]; then
		result "not ok - probe: libvirt: virsh nodedev-start $name: $(tr '\n' ' ' < "$lv/start-$parent.out" | head -c 200)"
	elif ! virsh -c "$uri" nodedev-destroy "$name" > "$lv/destroy-$parent.out" 2>&1 || [ -e "/sys/bus/mdev/devices/$u" ]; then
		result "not ok - probe: libvirt: virsh nodedev-destroy $name: $(tr '\n' ' ' < "$lv/destroy-$parent.out" | head -c 200)"
	else
		result "ok - probe: libvirt: a $type mdev defined with mdevctl is node device $name, which virsh nodedev-start creates and nodedev-destroy removes"
	fi
	[ -e "/sys/bus/mdev/devices/$u" ] && mdev_remove "$u"
	mdevctl undefine --uuid "$u" 2>/dev/null
}

probe_phase() {
	[ "$1" = test ] || return 0
	local impl ko_mdpy ko_mbochs
	mkdir -p "$PD"
	if [ ! -x "$PROBE" ]; then
		result "not ok - probe: $PROBE was not built (build-all.sh builds it)"
		return
	fi
	for impl in c rust; do
		ko_mdpy=$KDIR/samples/vfio-mdev/mdpy.ko ko_mbochs=$KDIR/samples/vfio-mdev/mbochs.ko
		[ $impl = rust ] && ko_mdpy=$TOP/mdpy/mdpy.ko ko_mbochs=$TOP/mbochs/mbochs.ko
		log "probe: $impl mdpy and mbochs"
		insmod "$ko_mdpy" count=4 || { result "not ok - probe: insmod $ko_mdpy"; continue; }
		insmod "$ko_mbochs" count=160 || { result "not ok - probe: insmod $ko_mbochs"; rmmod mdpy; continue; }
		[ $impl = c ] && mbochs_c_begin "mdev-probe"
		probe_types $impl mdpy mdpy-vga mdpy-xga mdpy-hd
		probe_types $impl mbochs mbochs-small mbochs-medium mbochs-large
		probe_existing $impl mdpy mdpy-xga
		probe_existing $impl mbochs mbochs-medium
		[ $impl = c ] && mbochs_c_end
		probe_checks_run
		if [ $impl = rust ]; then
			log "probe: compat, bad input$([ "$TIER" = full ] && echo ", mdevctl, libvirt")"
			probe_compat
			probe_bad_inputs
			# mdevctl and libvirt start daemons: check-full's (tiers.sh).
			if [ "$TIER" = full ]; then
				probe_mdevctl
				probe_libvirt
			fi
		fi
		rmmod mbochs || result "not ok - probe: rmmod mbochs ($impl)"
		rmmod mdpy || result "not ok - probe: rmmod mdpy ($impl)"
	done
}
