#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# A second VM on the machine, for checking that the tests keep their
# verdicts when they share the 2 cores (Documentation/mdev-rs/testing.rst,
# "Under load"): boots the test kernel under virtme-ng (TCG, BUSY_VM_CPUS
# vCPUs, default 2), as the tests do but without their one-VM-at-a-time
# lock, and keeps every vCPU busy for SECONDS (default 5400), then ends.
# BUSY_VM_CPUS=1 is QEMU's own default size (-smp 1): a second VM that takes
# one whole core of the two.
# usage: busy-vm.sh [SECONDS]   (e.g. `busy-vm.sh & make check-full`)
set -euo pipefail
. "$(dirname "$0")/env.sh"
secs=${1:-5400} cpus=${BUSY_VM_CPUS:-2}
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh" --print-only)
[ -n "$KDIR" ] || die "no test kernel: run 'make kernel' first"
say "busy VM: $cpus vCPU(s) spinning for ${secs}s"
timeout $((secs + 120)) vng --run "$KDIR" --disable-kvm --user root --memory 1G --cpus "$cpus" \
	--qemu-opts="-accel tcg,thread=multi" \
	-- bash -c "for i in \$(seq $cpus); do timeout $secs sh -c 'while :; do :; done' & done; wait" \
	< /dev/null > "${TMPDIR:-/tmp}/mdev-rs-busy-vm.log" 2>&1 || true
say "busy VM: done"
