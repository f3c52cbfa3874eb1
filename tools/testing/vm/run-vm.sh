#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test kernel under virtme-ng (TCG: KVM does not work on these
# machines) and runs guest-run.sh MODE in it. usage: run-vm.sh MODE KDIR OUT
set -euo pipefail
. "$(dirname "$0")/env.sh"
mode=$1 KDIR=$2 OUT=$3
cp "$MDEV_RS_TOP/out/nested-bzImage" "$OUT/"
say "booting the test VM (virtme-ng, TCG; the nested guest takes a few minutes)"
# vng needs a terminal-less stdin in CI.
timeout "${VM_TIMEOUT:-3000}" vng --run "$KDIR" --disable-kvm --user root --verbose \
	--memory 2G --cpus 2 --rwdir "$OUT" \
	-- bash "$MDEV_RS_TOP/tools/testing/vm/guest-run.sh" "$mode" "$OUT" "$KDIR" "$MDEV_RS_TOP" \
	< /dev/null > "$OUT/vm-console.log" 2>&1 &
vm=$!
# Show the VM's own progress lines while it runs.
tail -n +1 -F "$OUT/vm-console.log" 2>/dev/null | grep --line-buffered -E '^\[vm |Kernel panic|BUG:' &
tailer=$!
rc=0
wait $vm || rc=$?
sleep 1; kill $tailer 2>/dev/null || true
[ $rc = 0 ] || say "VM exited with status $rc (log: $OUT/vm-console.log)"
exit $rc
