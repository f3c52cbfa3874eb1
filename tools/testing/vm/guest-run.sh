#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng test VM (see run-tests.sh / run-demo.sh).
# usage: guest-run.sh test|demo OUT KDIR TOP
#
#   test: kselftests against the C mdpy and the Rust mdpy, then end to end
#   demo: end to end only
#
# End to end: Rust mdpy on this (host) side; QEMU boots a nested guest (its
# own small kernel, out/nested-bzImage) whose
# guest driver draws a pattern; a QMP screendump must equal the pattern.
# Results go to OUT; the caller judges them (and dmesg) on the host.
set -u
MODE=$1 OUT=$2 KDIR=$3 TOP=$4
TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mdpy_test
C_MDPY=$KDIR/samples/vfio-mdev/mdpy.ko
RS_MDPY=$TOP/mdpy/mdpy.ko
NESTED_TIMEOUT=${NESTED_TIMEOUT:-600}

log() { echo "[vm +${SECONDS}s] $*"; }
result() { echo "$1" >> "$OUT/results.txt"; }

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# Forget boot-time kmemleak suspects: only what the tests leak counts.
[ -w /sys/kernel/debug/kmemleak ] && echo clear > /sys/kernel/debug/kmemleak
insmod "$KDIR/drivers/vfio/mdev/mdev.ko" || { result "not ok - insmod mdev.ko"; exit 1; }

# kselftest of one implementation: IMPL KO TYPE COUNT
run_suite() {
	local impl=$1 ko=$2 type=$3 count=$4 tap="$OUT/tap-mdpy-$1-$3.txt"
	log "kselftest: $impl mdpy ($ko), type $type, count=$count"
	if ! insmod "$ko" count="$count"; then
		echo "not ok 1 insmod $ko" > "$tap"
		return
	fi
	MDEV_IMPL=$impl MDPY_TYPE=$type MDPY_COUNT=$count timeout 900 "$TEST_BIN" > "$tap" 2>&1
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')"
	rmmod mdpy || result "not ok - rmmod mdpy ($impl)"
}

qmp() {
	python3 - "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
f.readline()  # greeting
cmd({"execute": "qmp_capabilities"})
r = cmd(json.loads(sys.argv[2]))
print(json.dumps(r))
sys.exit(1 if "error" in r else 0)
PY
}

# End to end: HOST_KO TYPE GUEST_INITRAMFS NAME
run_e2e() {
	local ko=$1 type=$2 initrd=$3 name=$4 uuid serial="$OUT/$4-serial.log"
	local sock=/tmp/qmp-$4.sock pidf=/tmp/qemu-$4.pid
	log "end to end $name: host $(basename "$ko") $type, nested guest from $(basename "$initrd")"
	insmod "$ko" || { result "not ok - e2e $name: insmod"; return; }
	uuid=$(cat /proc/sys/kernel/random/uuid)
	if ! echo "$uuid" > "/sys/class/mdev_bus/mdpy/mdev_supported_types/$type/create"; then
		result "not ok - e2e $name: create $type"; rmmod mdpy; return
	fi
	rm -f "$sock" "$serial"
	qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config -display none \
		-kernel "$OUT/nested-bzImage" -initrd "$initrd" \
		-append "console=ttyS0 vt.global_cursor_default=0 consoleblank=0 panic=-1 loglevel=4" \
		-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,display=on,id=gpu0" \
		-serial "file:$serial" -qmp "unix:$sock,server=on,wait=off" \
		-pidfile "$pidf" -daemonize
	local ok=0 t=0
	while [ $t -lt "$NESTED_TIMEOUT" ]; do
		if grep -q NESTED-PATTERN-DRAWN "$serial" 2>/dev/null; then ok=1; break; fi
		grep -q NESTED-FAIL "$serial" 2>/dev/null && break
		kill -0 "$(cat "$pidf" 2>/dev/null)" 2>/dev/null || break
		sleep 5; t=$((t + 5))
		[ $((t % 60)) -eq 0 ] && log "  nested guest booting under TCG-in-TCG... ${t}s"
	done
	if [ $ok = 1 ]; then
		log "  nested guest drew its pattern after ~${t}s; screendump"
		sleep 2
		qmp "$sock" "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$OUT/$name.ppm\",\"device\":\"gpu0\"}}"
		if python3 "$TOP/tools/testing/vm/screendump_check.py" "$OUT/$name.ppm" "$OUT/$name.png" \
			> "$OUT/$name.check" 2>&1; then
			result "ok - e2e $name: $(cat "$OUT/$name.check")"
		else
			result "not ok - e2e $name: $(cat "$OUT/$name.check")"
		fi
		log "  $(cat "$OUT/$name.check")"
	else
		result "not ok - e2e $name: nested guest did not draw within ${t}s (see $serial)"
	fi
	qmp "$sock" '{"execute":"quit"}' >/dev/null 2>&1
	sleep 1
	kill "$(cat "$pidf" 2>/dev/null)" 2>/dev/null
	echo 1 > "/sys/bus/mdev/devices/$uuid/remove" || result "not ok - e2e $name: remove mdev"
	rmmod mdpy || result "not ok - e2e $name: rmmod"
}

if [ "$MODE" = test ]; then
	run_suite c "$C_MDPY" mdpy-xga 4
	run_suite rust "$RS_MDPY" mdpy-xga 4
	run_suite rust "$RS_MDPY" mdpy-hd 3
fi
# End to end through mdpy: see guest-mdpy-fb.sh (every host x guest driver
# combination and mdpy type).

# Further drivers' test phases: each guest-*.sh defines <name>_phase MODE.
for phase in "$TOP"/tools/testing/vm/guest-*.sh; do
	[ "$phase" = "$TOP/tools/testing/vm/guest-run.sh" ] && continue
	. "$phase"
	name=$(basename "$phase" .sh); name=${name#guest-}; name=${name//-/_}
	"${name}_phase" "$MODE"
done

if [ -w /sys/kernel/debug/kmemleak ]; then
	log "kmemleak scan"
	echo scan > /sys/kernel/debug/kmemleak; sleep 5
	echo scan > /sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak > "$OUT/kmemleak.txt"
	# A phase may set aside the reports of a C sample's known leaks.
	for f in $(compgen -A function | grep '_kmemleak_filter$'); do "$f" "$OUT/kmemleak.txt"; done
fi
dmesg > "$OUT/dmesg.txt"
log "done"
