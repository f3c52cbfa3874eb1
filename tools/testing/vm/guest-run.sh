#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng test VM (see run-tests.sh / run-demo.sh).
# usage: guest-run.sh test|demo OUT KDIR TOP [ONLY]
#
#   ONLY (developers): space-separated names of what to run, out of
#   "mdpy" (the mdpy kselftests) and the phases (hostile, mbochs, mbochs_e2e,
#   mdpy_fb, migration, probe, fuzz); empty runs everything. A partial run fails the summary.
#
#   test: mdpy kselftests (C and Rust), then every phase in test mode
#   demo: every phase in demo mode (end to end only)
#   fuzz: every phase in fuzz mode (make fuzz: only guest-fuzz.sh has one)
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

commas() { local s; printf -v s '%s, ' "$@"; echo "${s%, }"; }
KML=/sys/kernel/debug/kmemleak

# The detectors splat-check.sh counts on: each must be on in the booted
# kernel's config ($KDIR/.config: vng boots $KDIR, checked by its version
# string) and show at run time. One result line, "not ok" if one is off.
detectors() {
	local cfg=$KDIR/.config want=() off=()
	on() { grep -qx "CONFIG_$1=y" "$cfg" || off+=("$2 (CONFIG_$1 not set)"); }
	sym() { grep -q " $1\$" /proc/kallsyms || off+=("$2 (no $1 in /proc/kallsyms)"); }
	if ! grep -qF "\"$(uname -v)\"" "$KDIR/include/generated/utsversion.h" 2>/dev/null; then
		result "not ok - detectors: the booted kernel ($(uname -v)) is not the one in $KDIR"
		return
	fi
	want+=(lockdep); on PROVE_LOCKING lockdep
	[ -e /proc/lockdep ] || off+=("lockdep (no /proc/lockdep)")
	grep -Eq '^ *debug_locks: +1$' /proc/lockdep_stats 2>/dev/null || off+=("lockdep (debug_locks is not 1)")
	want+=(kmemleak); on DEBUG_KMEMLEAK kmemleak
	# Also forgets boot-time suspects: only what the tests leak counts.
	echo clear 2>/dev/null > $KML || off+=("kmemleak ('clear' refused by $KML)")
	want+=("UBSAN bounds+shift"); on UBSAN UBSAN; on UBSAN_BOUNDS "UBSAN bounds"; on UBSAN_SHIFT "UBSAN shift"
	sym __ubsan_handle_out_of_bounds "UBSAN bounds"; sym __ubsan_handle_shift_out_of_bounds "UBSAN shift"
	want+=(DEBUG_LIST); on DEBUG_LIST DEBUG_LIST; sym __list_add_valid_or_report DEBUG_LIST
	want+=(DEBUG_ATOMIC_SLEEP); on DEBUG_ATOMIC_SLEEP DEBUG_ATOMIC_SLEEP; sym __might_resched DEBUG_ATOMIC_SLEEP
	local kasan="KASAN is not in this kernel and not claimed"
	if grep -qx CONFIG_KASAN=y "$cfg"; then
		# make fuzz's kernel (bootstrap-kernel.sh KFLAVOUR=kasan)
		want+=(KASAN); kasan="KASAN on"; sym kasan_report KASAN
		dmesg | grep -q 'KernelAddressSanitizer initialized' || off+=("KASAN (not initialized, see dmesg)")
	fi
	if [ ${#off[@]} = 0 ]; then
		result "ok - detectors: $(commas "${want[@]}") (config and run time); $kasan"
	else
		result "not ok - detectors: claimed $(commas "${want[@]}"); off: $(commas "${off[@]}")"
	fi
}

# At the end: kmemleak turns itself off for good when its object pool runs
# out (and lockdep after its first report), and then sees nothing more.
detectors_still_on() {
	local gone
	gone=$(dmesg | grep -E 'kmemleak: (Kernel memory leak detector disabled|Memory pool empty|Cannot allocate a kmemleak_object)' | head -3 | tr '\n' ' ')
	if [ -n "$gone" ]; then
		result "not ok - kmemleak still on at the end: it turned itself off: $gone"
	elif ! echo scan 2>/dev/null > $KML; then
		result "not ok - kmemleak still on at the end: 'scan' refused by $KML"
	else
		result "ok - kmemleak still on at the end ('scan' accepted, no 'disabled' in dmesg)"
	fi
	if grep -Eq '^ *debug_locks: +1$' /proc/lockdep_stats 2>/dev/null; then
		result "ok - lockdep still on at the end (debug_locks 1)"
	else
		result "not ok - lockdep still on at the end: debug_locks is not 1 (see dmesg)"
	fi
}

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
detectors
insmod "$KDIR/drivers/vfio/mdev/mdev.ko" || { result "not ok - insmod mdev.ko"; exit 1; }

# Runs a kselftest: TAP TIMEOUT CMD... Its output goes to TAP; a copy with
# each line's time (s since the start) to times-*.txt next to it.
kselftest() {
	local tap=$1 limit=$2 start=${EPOCHREALTIME/./} t line
	shift 2
	timeout "$limit" "$@" 2>&1 | while IFS= read -r line; do
		printf '%s\n' "$line"
		t=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
		printf '%4d.%d %s\n' $((t / 10)) $((t % 10)) "$line" >> "${tap%/*}/times-${tap##*/tap-}"
	done > "$tap"
	t=$(( (${EPOCHREALTIME/./} - start) / 1000000 ))
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')in ${t}s"
}

# Restricts a kselftest run to the tests named (kselftest_harness's -t, all
# variants): prints the options, and writes every other test of BIN to
# NOTRUN, "fixture.variant.test<TAB>REASON" a line, which the summary shows
# as not run.
only_tests() { # BIN NOTRUN REASON TEST...
	local bin=$1 notrun=$2 reason=$3 t
	shift 3
	printf -- '-t %s ' "$@"
	# -l prints "%-20s %-25s %s": fixture (on a fixture's first line),
	# variant, test; a fixture's variants and tests side by side.
	"$bin" -l 2>&1 | awk -v keep=" $* " -v reason="$reason" -v notrun="$notrun" '
		function flush(  i, j) {
			for (i = 1; i <= nv; i++)
				for (j = 1; j <= nt; j++)
					if (index(keep, " " t[j] " ") == 0)
						printf "%s%s.%s\t%s\n", f, v[i] == "" ? "" : "." v[i], t[j], reason > notrun
			nv = nt = 0
		}
		/^# FIXTURE|^---/ { flush(); next }
		{
			name = substr($0, 1, 20); gsub(/ /, "", name)
			if (name != "") { flush(); f = name }
			var = substr($0, 22, 25); gsub(/ /, "", var)
			test = substr($0, 48); gsub(/ /, "", test)
			if (var != "" || nv == 0) v[++nv] = var
			if (test != "") { t[++nt] = test; known[test] = 1 }
		}
		END {
			flush(); printf "" > notrun
			n = split(keep, k, " ")
			for (i = 1; i <= n; i++) if (!(k[i] in known)) print k[i]
		}' | while read -r t; do result "not ok - $(basename "$bin"): no test $t to run"; done
}

# mdpy-xga runs every test; the other types the tests that depend on the
# type (its size, the count it was loaded with): the rest cannot differ.
MDPY_FULL_TYPE=mdpy-xga
MDPY_TYPE_TESTS="region_info_bar0_and_display config_identity config_bar0_sizing
	defect_1_bar0_rw_offsets_and_sizes bar0_initial_gradient bar0_bad_accesses
	mmap_coherent_at_offset_zero defect_1_mmap_coherent_everywhere mmap_bad
	query_gfx_plane reset_restores_gradient sysfs_device sysfs_count_limit
	sysfs_module_param_count"

# mdpy kselftest of one implementation: IMPL KO TYPE COUNT
run_suite() {
	local impl=$1 ko=$2 type=$3 count=$4 tap="$OUT/tap-mdpy-$1-$3.txt" only=""
	echo "tap-mdpy-$impl-$type" >> "$OUT/expected-taps.txt"
	log "kselftest: $impl mdpy ($ko), type $type, count=$count"
	if ! insmod "$ko" count="$count"; then
		printf 'TAP version 13\n1..1\nnot ok 1 mdpy.%s.insmod # insmod %s failed\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	# shellcheck disable=SC2086
	[ "$type" = $MDPY_FULL_TYPE ] || only=$(only_tests "$TEST_BIN" "$OUT/notrun-mdpy-$impl-$type.txt" \
		"type-independent, run on $MDPY_FULL_TYPE" $MDPY_TYPE_TESTS)
	# shellcheck disable=SC2086
	MDEV_IMPL=$impl MDPY_TYPE=$type MDPY_COUNT=$count kselftest "$tap" 900 "$TEST_BIN" $only
	rmmod mdpy || result "not ok - rmmod mdpy ($impl)"
}

# QMP and live migration between QEMUs (qmp, nested_migrate...).
. "$TOP/tools/testing/vm/qemu-qmp.sh"

# Every type, both implementations.
if [ "$MODE" = test ] && wanted mdpy; then
	for impl in c rust; do
		ko=$C_MDPY; [ $impl = rust ] && ko=$RS_MDPY
		run_suite $impl "$ko" mdpy-vga 4
		run_suite $impl "$ko" mdpy-xga 4
		run_suite $impl "$ko" mdpy-hd 3
	done
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

if [ -w $KML ] && echo scan 2>/dev/null > $KML; then
	log "kmemleak scan"
	sleep 5; echo scan > $KML
	cat $KML > "$OUT/kmemleak.txt"
	# A phase may set aside the reports of a C sample's known leaks.
	for f in $(compgen -A function | grep '_kmemleak_filter$'); do "$f" "$OUT/kmemleak.txt"; done
fi
detectors_still_on
dmesg > "$OUT/dmesg.txt"
log "done"
