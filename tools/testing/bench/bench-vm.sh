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

. "$TOP/tools/testing/vm/qemu-qmp.sh"

# QEMU's migration of a paused VM (no guest: no RAM to speak of, VRAM
# untouched) whose vfio-pci device is an mdev of TYPE, to a second QEMU on
# a second mdev: the downtime QEMU reports and the device state it moved.
# The C samples have no migration. usage: qemu_migration DRV IMPL ROUND TYPE
qemu_migration() {
	local drv=$1 impl=$2 r=$3 type=$4 dir=/tmp/bench-mig u1 u2 st m
	if [ "$impl" = c ]; then
		for m in mig_qemu_downtime mig_qemu_device_bytes; do
			echo "na $drv $m c C_sample_has_no_migration" >> "$SAMPLES"
		done
		return
	fi
	mkdir -p $dir; rm -f $dir/*
	u1=$(cat /proc/sys/kernel/random/uuid) u2=$(cat /proc/sys/kernel/random/uuid)
	echo "$u1" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" &&
		echo "$u2" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" ||
		{ log "  QEMU migration: creating two $type mdevs failed"; echo "error $drv $impl $r qemu_migration" >> "$SAMPLES"; return; }
	for side in src dst; do
		qemu-system-x86_64 -M q35 -m 64 -nodefaults -display none -S \
			-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$([ $side = src ] && echo "$u1" || echo "$u2"),id=gpu0" \
			-qmp "unix:$dir/$side.sock,server=on,wait=off" -daemonize -pidfile "$dir/$side.pid" \
			$([ $side = dst ] && echo "-incoming unix:$dir/mig.sock") 2> "$OUT/qemu-mig-$side-$drv-$r.err"
	done
	if st=$(nested_migrate "$dir/src.sock" "$dir/dst.sock" "unix:$dir/mig.sock" 120); then
		python3 -c 'import json, sys
r = json.loads(sys.argv[1])["return"]
print("sample %s mig_qemu_downtime rust %s %s ms" % (sys.argv[2], sys.argv[3], r["downtime"]))
print("sample %s mig_qemu_device_bytes rust %s %s B" % (sys.argv[2], sys.argv[3], r["vfio"]["transferred"]))' \
			"$st" "$drv" "$r" >> "$SAMPLES"
	else
		log "  QEMU migration failed: $st"
		echo "error $drv $impl $r qemu_migration" >> "$SAMPLES"
	fi
	kill "$(cat $dir/src.pid 2>/dev/null)" "$(cat $dir/dst.pid 2>/dev/null)" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$(cat $dir/src.pid 2>/dev/null)" 2>/dev/null ||
			kill -0 "$(cat $dir/dst.pid 2>/dev/null)" 2>/dev/null || break
		sleep 1
	done
	echo 1 > "/sys/bus/mdev/devices/$u1/remove"; echo 1 > "/sys/bus/mdev/devices/$u2/remove"
}

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
			if [ "$drv" = mdpy ]; then qemu_migration mdpy "$impl" "$r" mdpy-hd
			else qemu_migration mbochs "$impl" "$r" mbochs-large; fi
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
