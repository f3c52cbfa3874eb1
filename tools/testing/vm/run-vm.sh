#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test kernel under virtme-ng (TCG: KVM does not work on these
# machines) and runs guest-run.sh MODE in it (MDEV_RS_TIER, MDEV_RS_ONLY:
# tiers.sh). usage: run-vm.sh MODE KDIR OUT
set -euo pipefail
. "$(dirname "$0")/env.sh"
mode=$1 KDIR=$2 OUT=$3
# The nested guests' kernel (build-all.sh full): only the phases that boot
# nested guests use it.
[ ! -e "$MDEV_RS_TOP/out/nested-bzImage" ] || cp "$MDEV_RS_TOP/out/nested-bzImage" "$OUT/"
# The mbochs end to end test shows the device on QEMU's own GL display
# (D-Bus, gl=on; see guest-mbochs-e2e.sh); MBOCHS_E2E_GL=0 leaves it out.
echo "${MBOCHS_E2E_GL:-1}" > "$OUT/mbochs-e2e-gl"
# The fuzz and hostile-guest phases' settings (FUZZ_OPS, FUZZ_SEED, ...: see
# guest-fuzz.sh; HOSTILE_OPS, HOSTILE_SEED: guest-hostile.sh): the VM does
# not inherit this environment.
: > "$OUT/fuzz-env"
for v in $(compgen -v FUZZ_ || true) $(compgen -v HOSTILE_ || true); do printf 'export %s=%q\n' "$v" "${!v}" >> "$OUT/fuzz-env"; done
say "booting the test VM (virtme-ng, TCG), tier ${MDEV_RS_TIER:-full}; each phase prints its progress"
rc=0
# The VM's time limit: three times the tier's budget and more (make check
# 10 minutes, make check-full 45: tiers.sh), so that a machine shared with
# a second VM still finishes; a hung VM is caught sooner by its silence
# (VM_STALL, vm_boot_once in env.sh).
case ${MDEV_RS_TIER:-full} in check) limit=2400 ;; *) limit=8100 ;; esac
vm_run "${VM_TIMEOUT:-$limit}" "$KDIR" "$OUT" \
	bash "$MDEV_RS_TOP/tools/testing/vm/guest-run.sh" "$mode" "$OUT" "$KDIR" "$MDEV_RS_TOP" \
	"${MDEV_RS_ONLY:-}" "${MDEV_RS_TIER:-full}" || rc=$?
[ $rc = 0 ] || say "VM exited with status $rc (log: $OUT/vm-console.log)"
exit $rc
