#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark (`make bench`): the C samples against the Rust modules, in
# one VM boot (tools/testing/bench/bench-vm.sh), alternating for
# BENCH_ROUNDS rounds (default 5), BENCH_SAMPLES samples per metric and
# round (default 5). Prints the table of medians with the
# Rust/C ratios and leaves it in out/bench/results.{txt,md,rst}.
# Timings are reported, never judged: the exit status is non-zero only if
# something could not be built or run.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$MDEV_RS_TOP"

KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh") || die "build failed"
# build-all.sh builds the modules with clippy-driver, which turns rustc's MIR
# optimisations off (mir-opt-level=0, for its lints) and so emits larger,
# slower code than `make` does. Measure what users build: the same modules
# rebuilt by rustc (Kbuild rebuilds them, their command line changed).
say "rebuilding the Rust modules with rustc (what \`make\` builds) for the benchmark"
make -s KDIR="$KDIR" modules >&2 || die "module build (rustc) failed"
OUT="$MDEV_RS_TOP/out/bench"
rm -rf "$OUT"; mkdir -p "$OUT/ko"

say "building the benchmark program"
make -s -C tools/testing/bench KHDR="$KDIR/usr/include" >&2 || die "mdev_bench build failed"

# The modules as built, and stripped of debug info (what gets loaded).
for drv in mdpy mbochs; do
	cp "$KDIR/samples/vfio-mdev/$drv.ko" "$OUT/ko/c-$drv.ko"
	cp "$MDEV_RS_TOP/$drv/$drv.ko" "$OUT/ko/rust-$drv.ko"
	for impl in c rust; do
		strip --strip-debug -o "$OUT/ko/$impl-$drv-stripped.ko" "$OUT/ko/$impl-$drv.ko"
	done
done
{
	for drv in mdpy mbochs; do
		for impl in c rust; do
			raw=$OUT/ko/$impl-$drv.ko stripped=$OUT/ko/$impl-$drv-stripped.ko
			echo "static $drv ko_size $impl $(stat -c %s "$raw") B"
			echo "static $drv ko_size_stripped $impl $(stat -c %s "$stripped") B"
			# text + data + bss of the loadable sections
			read -r text data bss _ < <(size "$stripped" | tail -1)
			echo "static $drv ko_text $impl $text B"
			echo "static $drv ko_data_bss $impl $((data + bss)) B"
		done
	done
} > "$OUT/static.txt"

ROUNDS=${BENCH_ROUNDS:-5}
say "booting the benchmark VM (virtme-ng, TCG): $ROUNDS rounds of C and Rust mdpy and mbochs"
rc=0
vm_run "${VM_TIMEOUT:-1800}" "$KDIR" "$OUT" bash "$MDEV_RS_TOP/tools/testing/bench/bench-vm.sh" \
	"$OUT" "$KDIR" "$MDEV_RS_TOP" "$ROUNDS" "${BENCH_SAMPLES:-}" || rc=$?
# (vng's own exit status is not the script's: the script leaves OUT/done.)
[ -e "$OUT/done" ] || say "the benchmark did not finish: VM status $rc (log: $OUT/vm-console.log)"

python3 "$MDEV_RS_TOP/tools/testing/bench/bench-report.py" "$OUT" || die "no results (see $OUT/vm-console.log)"
cat "$OUT/results.txt"
echo "Results: $OUT/results.{txt,md,rst}; samples: $OUT/samples.txt"
[ -e "$OUT/done" ] && ! grep -q '^error' "$OUT/samples.txt"
