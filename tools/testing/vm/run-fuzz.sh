#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make fuzz`: the long fuzz run, separate from `make check`. Builds what is
# missing, boots one VM (test kernel, TCG) and runs guest-fuzz.sh's fuzz
# mode on the KASAN kernel (FUZZ_KERNEL=kasan, the default; debug: the test
# kernel of make check): FUZZ_OPS (default 10^6) random operations per driver and the
# FUZZ_CYCLES (default 1000) lifecycle loop, against the Rust modules, then
# the C samples (FUZZ_IMPLS, default "rust c"; the C samples are expected
# to hit their defects and may take the VM down: their lines are findings,
# neither passed nor failed). FUZZ_SEED replays a run.
# Results in out/fuzz/: summary.tap, fuzz-IMPL*.txt, dmesg, kmemleak.
# Prints "N passed, N failed" for the Rust lines; exit status 0 iff none failed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"

KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh") || die "build failed"
# FUZZ_KERNEL=kasan (default): the KASAN kernel and the Rust modules built
# for it (build-kasan.sh); debug: the test kernel of make check.
FUZZ_KERNEL=${FUZZ_KERNEL:-kasan}
case $FUZZ_KERNEL in
kasan)
	read -r KDIR FUZZ_MODDIR < <("$MDEV_RS_TOP/tools/testing/vm/build-kasan.sh") && [ -n "$FUZZ_MODDIR" ] ||
		die "KASAN kernel or modules: build failed"
	export FUZZ_MODDIR ;;
debug) ;;
*) die "FUZZ_KERNEL must be kasan or debug" ;;
esac
OUT="$MDEV_RS_TOP/out/fuzz"
rm -rf "$OUT"; mkdir -p "$OUT"
: > "$OUT/results.txt"
export FUZZ_OPS=${FUZZ_OPS:-1000000} FUZZ_SECONDS=${FUZZ_SECONDS:-21600}
export FUZZ_IMPLS=${FUZZ_IMPLS:-rust c}
start=$SECONDS
MDEV_RS_ONLY=fuzz VM_TIMEOUT=${VM_TIMEOUT:-$(( FUZZ_SECONDS * 3 + 1800 ))} \
	"$MDEV_RS_TOP/tools/testing/vm/run-vm.sh" fuzz "$KDIR" "$OUT"
vm_rc=$?
{
	# The C samples run last and may take the VM down: their finding, once
	# every Rust line is in.
	if [ -e "$OUT/fuzz-c.txt" ] && grep -q '^not ok - test VM: died after' "$OUT/vm-boot-verdict.txt" 2>/dev/null &&
		grep -q '^ok - fuzz rust: kmemleak clean' "$OUT/results.txt"; then
		sed 's/^not ok - test VM: died after/finding - test VM: the C samples took it down: died after/' "$OUT/vm-boot-verdict.txt"
	else
		cat "$OUT/vm-boot-verdict.txt" 2>/dev/null || echo "not ok - test VM: no boot verdict"
	fi
	cat "$OUT/results.txt"
	for impl in $FUZZ_IMPLS; do
		[ "$impl" = rust ] || continue
		grep -q '^ok - fuzz rust: random operations' "$OUT/results.txt" ||
			grep -q '^not ok - fuzz rust: random operations' "$OUT/results.txt" ||
			echo "not ok - fuzz rust: no results (VM status $vm_rc)"
	done
	if [ -e "$OUT/dmesg.txt" ]; then
		# The C samples' splats are their findings; only a run without C is judged whole.
		if [[ " $FUZZ_IMPLS " == *" c "* ]]; then
			echo "# whole-run splat check skipped: the C samples ran (their splats are in fuzz-c-dmesg.txt)"
		elif "$MDEV_RS_TOP/tools/testing/vm/splat-check.sh" "$OUT/dmesg.txt" "$OUT/kmemleak.txt" > "$OUT/splats.txt"; then
			echo "ok - no kernel splat or kmemleak report in the whole run"
		else
			echo "not ok - kernel splat or kmemleak report (see out/fuzz/splats.txt)"
		fi
	fi
	echo "# kernel: $FUZZ_KERNEL ($KDIR); $(grep -m1 'detectors:' "$OUT/results.txt" | sed 's/^[a-z ]* - //')"
	echo "# fuzz run: $((SECONDS - start)) s wall, FUZZ_OPS=$FUZZ_OPS, seeds: $(grep -ho 'seed 0x[0-9a-f]*' "$OUT"/fuzz-*.txt 2>/dev/null | sort -u | tr '\n' ' ')"
} > "$OUT/summary.tap"
cat "$OUT/summary.tap"
passed=$(grep -c '^ok' "$OUT/summary.tap")
failed=$(grep -c '^not ok' "$OUT/summary.tap")
echo "$(grep -c '^finding' "$OUT/summary.tap") findings (the C samples' lines: neither passed nor failed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
