#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# A second VM on the machine, for checking that the tests keep their
# verdicts when they share the 2 cores (Documentation/mdev-rs/testing.rst,
# "Under load"): boots the test kernel under virtme-ng (TCG, 2 vCPUs), as
# the tests do but without their one-VM-at-a-time lock, and keeps both
# vCPUs busy for SECONDS (default 5400), then ends.
# usage: busy-vm.sh [SECONDS]   (e.g. `busy-vm.sh & make check-full`)
set -euo pipefail
. "$(dirname "$0")/env.sh"
secs=${1:-5400}
KDIR=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh" --print-only)
[ -n "$KDIR" ] || die "no test kernel: run 'make kernel' first"
say "busy VM: 2 vCPUs spinning for ${secs}s"
timeout $((secs + 120)) vng --run "$KDIR" --disable-kvm --user root --memory 1G --cpus 2 \
	--qemu-opts="-accel tcg,thread=multi" \
	-- bash -c "for i in 1 2; do timeout $secs sh -c 'while :; do :; done' & done; wait" \
	< /dev/null > "${TMPDIR:-/tmp}/mdev-rs-busy-vm.log" 2>&1 || true
say "busy VM: done"
