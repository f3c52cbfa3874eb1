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

# Whether phase NAME runs (see TIER and ONLY above).
wanted() { [[ " $RUN_PHASES " == *" $1 "* ]]; }
# Progress: on the console, and appended to OUT/vm-progress.log, which the
# host shows as it grows (vm_run in env.sh).
log() { echo "[vm +${SECONDS}s] $*" | tee -a "$OUT/vm-progress.log"; }
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

# Removes every mdev left behind (a test killed by its timeout runs no
# teardown), so that the next test starts with none: one failure must not
# become many (a full pool answers ENOSPC). One result line for what was
# left. A removal waits for the device's last user: a process still holding
# it gets 30 s.
mdev_sweep() { # LABEL
	local d n=0 names=""
	for d in /sys/bus/mdev/devices/*; do
		[ -e "$d/remove" ] || continue
		names="$names ${d##*/}"; n=$((n + 1))
		timeout 30 sh -c "echo 1 > '$d/remove'" 2>/dev/null || log "  could not remove mdev ${d##*/}"
	done
	[ $n = 0 ] || result "not ok - $1: left $n mdev(s) behind (removed before going on):$names"
}

# After a phase: no QEMU, mdev or module of ours may be left for the next.
phase_sweep() { # PHASE
	local m
	if pkill -x qemu-system-x86 2>/dev/null; then	# (comm: 15 characters)
		result "not ok - $1: left QEMU running (killed before going on)"
		sleep 2; pkill -9 -x qemu-system-x86 2>/dev/null
	fi
	mdev_sweep "$1"
	for m in mdpy_fb mbochs mdpy; do
		grep -q "^$m " /proc/modules || continue
		result "not ok - $1: left module $m loaded (unloaded before going on)"
		rmmod "$m" 2>/dev/null || log "  could not unload $m"
	done
}

# Runs a kselftest: TAP TIMEOUT CMD... Its output goes to TAP; a copy with
# each line's time (s since the start) to times-*.txt next to it. The tests
# record the mdevs they create in MDEV_LEDGER (mdev_lib.h), where the next
# test finds and removes those of a test that was killed; whatever is left
# at the end is removed here (mdev_sweep).
kselftest() {
	local tap=$1 limit=$2 start=${EPOCHREALTIME/./} t line name
	shift 2
	name=$(basename "$tap" .txt)
	rm -f "/tmp/mdev-ledger-$name"
	MDEV_LEDGER=/tmp/mdev-ledger-$name timeout -k 10 "$limit" "$@" 2>&1 | while IFS= read -r line; do
		printf '%s\n' "$line"
		t=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
		printf '%4d.%d %s\n' $((t / 10)) $((t % 10)) "$line" >> "${tap%/*}/times-${tap##*/tap-}"
	done > "$tap"
	t=$(( (${EPOCHREALTIME/./} - start) / 1000000 ))
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')in ${t}s"
	mdev_sweep "${name#tap-}"
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
