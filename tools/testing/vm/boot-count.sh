#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test kernel N times (default 20) running a trivial command, the
# way every test VM boots (vm_run, with no retry), and counts the boots that
# died before the command ran. Each boot takes the VM lock on its own, so
# other VM runs can interleave. usage: boot-count.sh [N]
# Prints a line per boot and "N boots, F boot failures"; exit 1 if F > 0.
set -uo pipefail
. "$(dirname "$0")/env.sh"
n=${1:-20}
KDIR=${KDIR:-$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh" --print-only)}
OUT=${BOOT_COUNT_OUT:-$MDEV_RS_TOP/out/boot-count}
mkdir -p "$OUT"
fails=0
for i in $(seq "$n"); do
	dir=$OUT/boot-$i
	rm -rf "$dir"; mkdir -p "$dir"
	t=$SECONDS
	VM_BOOT_RETRIES=0 vm_run 300 "$KDIR" "$dir" true > /dev/null 2>&1
	stage=$(vm_boot_stage "$dir")
	[ "$stage" = done ] || fails=$((fails + 1))
	echo "boot $i: $stage in $((SECONDS - t)) s (TCG thread=$VM_TCG_THREAD, ${VM_CPUS:-2} vCPUs)$(
		[ "$stage" = done ] || echo ": $(vm_death_line "$dir")")"
done | tee "$OUT/boots.txt"
fails=$(grep -vc ': done in' "$OUT/boots.txt")
echo "$n boots, $fails boot failures (TCG thread=$VM_TCG_THREAD; $(qemu-system-x86_64 --version | head -1))"
[ "$fails" = 0 ]
