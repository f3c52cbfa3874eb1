#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng test VM (see run-tests.sh / run-demo.sh).
# usage: guest-run.sh test|demo|fuzz OUT KDIR TOP [ONLY [TIER]]
#
#   TIER: check or full (tiers.sh): how much of each phase runs; ONLY
#   (developers, MDEV_RS_ONLY): space-separated phases of tiers.sh's
#   MDEV_RS_PHASES to run; empty runs the tier's.
#
#   test: every phase of the tier in test mode
#   demo: every phase in demo mode (end to end only)
#   fuzz: every phase in fuzz mode (make fuzz: only guest-fuzz.sh has one)
#
# Each phase is a function <name>_phase MODE of a guest-*.sh (end to end:
# QEMU boots nested guests with their own small kernel, out/nested-bzImage).
# After each phase: what it left behind (mdevs, QEMUs, modules) is removed
# and reported, and its wall time goes to OUT/vm-phase-times.txt. Results go to
# OUT; the caller judges them (and dmesg) on the host.
set -u
MODE=$1 OUT=$2 KDIR=$3 TOP=$4 ONLY=${5:-} TIER=${6:-full}
NESTED_TIMEOUT=${NESTED_TIMEOUT:-600}
. "$TOP/tools/testing/vm/tiers.sh"
RUN_PHASES=$(tier_run_phases "$TIER" "$ONLY")
. "$TOP/tools/testing/vm/lib-guest.sh"

# Whether phase NAME runs (see TIER and ONLY above).
wanted() { [[ " $RUN_PHASES " == *" $1 "* ]]; }

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

# QMP and live migration between QEMUs (qmp, nested_migrate...).
. "$TOP/tools/testing/vm/qemu-qmp.sh"

# The phases: each guest-*.sh defines <name>_phase MODE.
for phase in "$TOP"/tools/testing/vm/guest-*.sh; do
	[ "$phase" = "$TOP/tools/testing/vm/guest-run.sh" ] && continue
	. "$phase"
done
log "tier $TIER, phases: $RUN_PHASES"
# (Names of their own: the phases' functions set globals.)
for RUN_PHASE in $MDEV_RS_PHASES; do
	wanted "$RUN_PHASE" || continue
	RUN_PHASE_T0=$SECONDS
	log "phase $RUN_PHASE"
	"${RUN_PHASE}_phase" "$MODE"
	phase_sweep "$RUN_PHASE"
	echo "$RUN_PHASE $((SECONDS - RUN_PHASE_T0))" >> "$OUT/vm-phase-times.txt"
	log "phase $RUN_PHASE: $((SECONDS - RUN_PHASE_T0))s"
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
