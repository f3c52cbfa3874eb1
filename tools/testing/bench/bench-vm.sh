#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the virtme-ng VM that tools/testing/vm/run-bench.sh boots.
# usage: bench-vm.sh OUT KDIR TOP ROUNDS [SAMPLES]
#
# For ROUNDS rounds, for mdpy and mbochs, for the C sample and the Rust
# module (C first in odd rounds, Rust first in even ones): load the module
# (timed), run mdev_bench on it, unload it (timed), then load and unload the
# unstripped .ko once more (timed). Samples go to OUT/samples.txt; the host
# makes the table (bench-report.py). Timings are never judged here.
set -u
OUT=$1 KDIR=$2 TOP=$3 ROUNDS=${4:-3}
[ -n "${5:-}" ] && export BENCH_SAMPLES=$5
DRIVERS="mdpy mbochs" IMPLS="c rust"
# Experiments may override DRIVERS and IMPLS (e.g. IMPLS="c rust rust-patched",
# with OUT/ko/rust-patched-DRV{,-stripped}.ko).
[ -e "$OUT/bench.conf" ] && . "$OUT/bench.conf"
BENCH=$TOP/tools/testing/bench/mdev_bench
SAMPLES=$OUT/samples.txt

log() { echo "[vm +${SECONDS}s] $*"; }

: > "$SAMPLES"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
insmod "$KDIR/drivers/vfio/mdev/mdev.ko" || { log "insmod mdev.ko failed"; exit 1; }

# The modules are loaded from RAM (tmpfs), not from the 9p root.
KO=$(mktemp -d /tmp/bench-ko.XXXXXX)
mount -t tmpfs none "$KO"
cp "$OUT"/ko/*.ko "$KO/"

{
	echo "kernel $(uname -r)"
	echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
	echo "debug $(for o in PROVE_LOCKING DEBUG_KMEMLEAK DEBUG_LIST DEBUG_ATOMIC_SLEEP; do
		grep -q "^CONFIG_$o=y" "$KDIR/.config" && printf '%s ' "$o"; done)"
} > "$OUT/vm-info.txt"

# One timed load/unload: DRV IMPL ROUND KO METRIC_SUFFIX
load_unload() {
	local drv=$1 impl=$2 r=$3 ko=$4 sfx=$5 t
	t=$("$BENCH" load "$ko") || { log "load $ko failed"; return 1; }
	echo "sample $drv module_load$sfx $impl $r $t ms" >> "$SAMPLES"
	t=$("$BENCH" unload "$drv") || { log "unload $drv failed"; return 1; }
	echo "sample $drv module_unload$sfx $impl $r $t ms" >> "$SAMPLES"
}

for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order=$IMPLS; else order=$(echo "$IMPLS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
	for drv in $DRIVERS; do
		for impl in $order; do
			log "round $r/$ROUNDS: $drv ($impl)"
			t=$("$BENCH" load "$KO/$impl-$drv-stripped.ko") ||
				{ log "load $impl $drv failed"; echo "error $drv $impl $r load" >> "$SAMPLES"; continue; }
			echo "sample $drv module_load $impl $r $t ms" >> "$SAMPLES"
			if ! timeout 600 "$BENCH" "$drv" "$impl" "$r" >> "$SAMPLES" 2> "$OUT/err-$drv-$impl-$r.txt"; then
				log "  mdev_bench failed: $(cat "$OUT/err-$drv-$impl-$r.txt")"
				echo "error $drv $impl $r run" >> "$SAMPLES"
			fi
			t=$("$BENCH" unload "$drv") || { log "unload $drv failed"; continue; }
			echo "sample $drv module_unload $impl $r $t ms" >> "$SAMPLES"
			load_unload "$drv" "$impl" "$r" "$KO/$impl-$drv.ko" _unstripped
		done
	done
done

dmesg > "$OUT/dmesg.txt"
umount "$KO"
echo "$ROUNDS" > "$OUT/done"
log "done"
