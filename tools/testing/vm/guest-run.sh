#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng test VM (see run-tests.sh / run-demo.sh).
# usage: guest-run.sh test|demo OUT KDIR TOP [ONLY]
#
#   ONLY (developers): space-separated names of what to run, out of
#   "mdpy" (the mdpy kselftests) and the phases (mbochs, mbochs_e2e,
#   mdpy_fb); empty runs everything. A partial run fails the summary.
#
#   test: mdpy kselftests (C and Rust), then every phase in test mode
#   demo: every phase in demo mode (end to end only)
#
# Then the test phases of guest-*.sh (end to end: QEMU boots nested guests
# with their own small kernel, out/nested-bzImage). Results go to OUT; the
# caller judges them (and dmesg) on the host.
set -u
MODE=$1 OUT=$2 KDIR=$3 TOP=$4 ONLY=${5:-}
TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mdpy_test
C_MDPY=$KDIR/samples/vfio-mdev/mdpy.ko
RS_MDPY=$TOP/mdpy/mdpy.ko
NESTED_TIMEOUT=${NESTED_TIMEOUT:-600}

# Whether part NAME runs (see ONLY above).
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
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

if [ "$MODE" = test ] && wanted mdpy; then
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
	wanted "$name" && "${name}_phase" "$MODE"
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
