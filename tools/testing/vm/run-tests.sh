#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test suite (`make check`): builds what is missing, then
#  - static checks: rustfmt, CLIPPY=1 build without warnings (rust/ denies
#    an unsafe block without a SAFETY comment and an unsafe fn without a
#    Safety section), no `unsafe` outside rust/;
#  - in one VM: the mdpy and mbochs kselftests on every device type against
#    the C sample and the Rust module (C defects must reproduce on C and be
#    fixed on Rust), and the end-to-end display checks through QEMU;
#  - the bounded fuzz and lifecycle stress of the Rust modules (guest-fuzz.sh);
#  - a hostile nested guest writing random values into every config-space
#    byte and register of Rust mdpy and mbochs (guest-hostile.sh);
#  - the kernel's detectors are on, and report nothing during the run.
# Prints TAP-like lines ("ok", "not ok", and "not run" for a test that was
# not run) and ends with "N passed, N failed, N not run"; exit status 0 iff
# nothing failed.
# Developers: MDEV_RS_ONLY="mdpy mbochs ..." runs only those parts in the VM
# (see guest-run.sh); such a partial run reports the others as missing.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"

KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh") || die "build failed"
OUT="$MDEV_RS_TOP/out/test"
rm -rf "$OUT"; mkdir -p "$OUT"
: > "$OUT/results.txt"
static="$OUT/static.txt"; : > "$static"
check() { # NAME CMD...: one static check as a TAP line
	local name=$1; shift
	if "$@" > "$OUT/static-$name.log" 2>&1; then echo "ok - static: $name" >> "$static"
	else echo "not ok - static: $name (see out/test/static-$name.log)" >> "$static"; fi
}
# The clippy build just done really ran clippy with the SAFETY lints on:
# each crate's command line (.*.o.cmd) is clippy-driver's with the kernel's
# -Wclippy::undocumented_unsafe_blocks, and rust/lib.rs denies both lints.
clippy_lints_in_force() {
	local crate cmd n=0
	grep -qxF '#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]' rust/lib.rs ||
		{ echo "rust/lib.rs does not deny the SAFETY lints"; return 1; }
	for crate in mdpy/mdpy_main mbochs/mbochs_main mdpy-fb/mdpy_fb_main; do
		cmd="$(dirname "$crate")/.$(basename "$crate").o.cmd"
		grep -q 'clippy-driver .*-Wclippy::undocumented_unsafe_blocks' "$cmd" 2>/dev/null ||
			{ echo "$crate.o: not built by clippy-driver with the SAFETY lints (see $cmd)"; return 1; }
		echo "$crate.o: clippy-driver with -Wclippy::undocumented_unsafe_blocks"; n=$((n + 1))
	done
	echo "$n crates"
}
say "static checks: rustfmt, clippy, unsafe discipline"
check rustfmt make -s rustfmtcheck
check clippy make -s KDIR="$KDIR" clippy
check safety-lints-in-force clippy_lints_in_force
# mdev-probe: clippy-clean (Debian's clippy-driver, the rustc that builds it).
check mdev-probe-clippy env RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER" RUSTFLAGS="-D warnings" \
	cargo check --release --locked --manifest-path tools/mdev-probe/Cargo.toml --target-dir out/cargo-clippy
check mdev-probe-unit-tests cargo test --release --locked --manifest-path tools/mdev-probe/Cargo.toml \
	--target-dir out/cargo
check no-unsafe-in-drivers bash -c '! grep -rnwE "unsafe" --include="*.rs" mdpy mbochs mdpy-fb 2>/dev/null'
# The clippy check rebuilt the modules with clippy-driver; rebuild them normally.
make -s KDIR="$KDIR" modules >/dev/null 2>&1 || die "module rebuild failed"

"$MDEV_RS_TOP/tools/testing/vm/run-vm.sh" test "$KDIR" "$OUT"
vm_rc=$?

{
	cat "$static"
	# How the VM ended, in one line (vm_run): boot failure before our code
	# ran, death after it, or a complete run; and any boot that was retried.
	cat "$OUT/vm-boot-verdict.txt" 2>/dev/null || echo "not ok - test VM: no boot verdict (vm_run did not finish)"
	# tap-DRIVER-IMPL-TYPE.txt: one kselftest run (IMPL is c or rust).
	for tap in "$OUT"/tap-*.txt; do
		[ -e "$tap" ] || continue
		impl=$(basename "$tap" .txt | cut -d- -f3) type=$(basename "$tap" .txt | cut -d- -f4-)
		"$MDEV_RS_TOP/tools/testing/vm/tap-verdict.sh" "$impl" "$tap" "$type" | grep -v '^# verdict'
	done
	cat "$OUT/results.txt"
	"$MDEV_RS_TOP/tools/testing/vm/post-checks.sh" "$OUT"
	# Every kselftest on every type of its driver, on both implementations.
	for want in $(cat "$OUT"/expected-taps.txt 2>/dev/null) \
		tap-mdpy-{c,rust}-mdpy-{vga,xga,hd} tap-mbochs-{c,rust}-mbochs-{small,medium,large} \
		tap-migration-rust-{mdpy-vga,mdpy-xga,mdpy-hd,mbochs-small,mbochs-medium,mbochs-large} \
		tap-migration-c-{mdpy-xga,mbochs-medium}; do
		[ -e "$OUT/$want.txt" ] || echo "not ok - $want: no results (VM status $vm_rc)"
	done | sort -u
	# The fuzz phase (guest-fuzz.sh): its lines, or a failure saying they are missing.
	for want in "random operations" "cycles: mdpy" "cycles: mbochs" "cycles: memory" "no kernel splat during the fuzz" \
		"both modules unload" "kmemleak clean"; do
		grep -qE "^(not )?ok - fuzz rust: $want" "$OUT/results.txt" ||
			echo "not ok - fuzz rust: $want: no result (VM status $vm_rc)"
	done
	# The hostile guest's phase (guest-hostile.sh): its lines, or a failure.
	for want in "the nested guest wrote random values" "QUERY_GFX_PLANE within the devices' limits" \
		"the mdevs are removed" "no kernel splat during the phase"; do
		grep -qE "^(not )?ok - hostile-guest: $want" "$OUT/results.txt" ||
			echo "not ok - hostile-guest: $want: no result (VM status $vm_rc)"
	done
	# mdev-probe's phase (guest-probe.sh) ran and reported.
	grep -q '^[a-z ]* - probe: ' "$OUT/results.txt" || echo "not ok - probe: no results (VM status $vm_rc)"
	[ -z "${MDEV_RS_ONLY:-}" ] || echo "not ok - partial run: MDEV_RS_ONLY=$MDEV_RS_ONLY"
	[ -s "$OUT/expected-checks.txt" ] || echo "not ok - end to end: no screendump planned (VM status $vm_rc)"
	if [ -e "$OUT/dmesg.txt" ] && "$MDEV_RS_TOP/tools/testing/vm/splat-check.sh" \
		"$OUT/dmesg.txt" "$OUT/kmemleak.txt" > "$OUT/splats.txt"; then
		echo "ok - no kernel splat (WARN, BUG, Oops, lockdep, UBSAN, list corruption) or kmemleak report"
	else
		echo "not ok - kernel splat, kmemleak report or no dmesg (see out/test/splats.txt)"
	fi
} > "$OUT/summary.tap"

cat "$OUT/summary.tap"
[ -s "$OUT/splats.txt" ] && cat "$OUT/splats.txt"
passed=$(grep -c '^ok' "$OUT/summary.tap")
failed=$(grep -c '^not ok' "$OUT/summary.tap")
notrun=$(grep -c '^not run' "$OUT/summary.tap")
# "not run" lines are no TAP test points: they are neither passed nor failed.
echo "1..$((passed + failed))"
echo "Artefacts: $OUT (screendumps as PNG: $OUT/checks/; per-test times: $OUT/times-*.txt)"
# The last line keeps the form CI and people read ("N passed, N failed"); the
# tests that did not run are counted on the line before it, never as passed.
echo "$notrun not run (the 'not run -' lines above: neither passed nor failed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
