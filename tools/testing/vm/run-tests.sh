#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test suite, in three tiers (tiers.sh):
#   make check-static  (TIER=static) builds what is missing, then the static
#       checks: rustfmt, CLIPPY=1 build without warnings (rust/ denies an
#       unsafe block without a SAFETY comment and an unsafe fn without a
#       Safety section), no `unsafe` outside rust/, no Rust slice over
#       memory user space maps, the misuse checks (code a driver must not
#       compile: tools/testing/misuse/), mdev-probe clippy and unit tests;
#   make check         (TIER=check) static + one VM without nested guests:
#       kselftests C vs Rust on one type per driver (C defects must
#       reproduce on C and be fixed on Rust), migration, KUnit, mdev-probe,
#       a short fuzz, the detectors and the splat scan;
#   make check-full    (TIER=full) everything: every type, the end-to-end
#       display checks and live migrations through QEMU in nested guests,
#       the hostile nested guest, mdevctl and libvirt, the longer fuzz,
#       the bootstrap in a clean Debian 12 chroot (run-bookworm.sh, on the
#       host beside the VM), Debian's own kernel (run-debian.sh: a VM of its
#       own, at the end).
# Prints TAP-like lines ("ok", "not ok", and "not run" for a test that was
# not run, with the reason: a tier that leaves a phase out says which tier
# runs it), then each phase's wall time, and ends with
# "N passed, N failed"; exit status 0 iff nothing failed.
# Developers: MDEV_RS_ONLY="phase ..." (tiers.sh: static and the VM's
# phases) runs only those and judges only them.
set -uo pipefail
. "$(dirname "$0")/env.sh"
. "$(dirname "$0")/tiers.sh"
cd "$MDEV_RS_TOP"

TIER=${1:-full}
case $TIER in static | check | full) ;; *) die "usage: run-tests.sh static|check|full" ;; esac
ONLY=${MDEV_RS_ONLY:-}
for p in $ONLY; do
	[[ " $MDEV_RS_ALL_PHASES " == *" $p "* ]] || die "MDEV_RS_ONLY: no phase '$p' (phases: $MDEV_RS_ALL_PHASES)"
done
PHASES=$(tier_run_phases "$TIER" "$ONLY")
[ -n "$PHASES" ] || die "MDEV_RS_ONLY='$ONLY' has no phase of tier $TIER"
runs() { [[ " $PHASES " == *" $1 "* ]]; }
vm_phases() { local p; for p in $PHASES; do case " $MDEV_RS_PHASES " in *" $p "*) echo "$p" ;; esac; done; }

OUT="$MDEV_RS_TOP/out/test"
rm -rf "$OUT"; mkdir -p "$OUT"
TIMES=$OUT/phase-times.txt	# "phase seconds" a line (the VM adds its phases)
: > "$OUT/host-times.txt"
T0=$SECONDS
timed() { # NAME CMD...: runs CMD, records its wall time
	local name=$1 t=$SECONDS rc=0
	shift
	"$@" || rc=$?
	echo "$name $((SECONDS - t))" >> "$OUT/host-times.txt"
	say "$name: $((SECONDS - t))s"
	return $rc
}
case $TIER in static) target=check-static ;; check) target=check ;; *) target=check-full ;; esac
say "make $target: ${PHASES// /, }${ONLY:+ (MDEV_RS_ONLY)}"

# Build: what the tier needs, once (build-all.sh).
# (the nested guests' kernel and images only for the phases that boot them)
build_tier=check
[ "$TIER" = full ] && { runs mdpy_fb || runs mbochs_e2e || runs hostile || runs usage || runs debian; } && build_tier=full
build() { KDIR=$("$MDEV_RS_TOP/tools/testing/vm/build-all.sh" "$build_tier"); }
timed build build || die "build failed"

: > "$OUT/results.txt"
static="$OUT/static.txt"; : > "$static"
check() { # NAME CMD...: one static check as a TAP line
	local name=$1; shift
	if "$@" > "$OUT/static-$name.log" 2>&1; then echo "ok - static: $name" >> "$static"
	else echo "not ok - static: $name (see out/test/static-$name.log)" >> "$static"; fi
}
# The build (build-all.sh) was clippy-driver's: no warning or error in its
# log, from rustc, clippy or objtool (which sees, e.g., a call to a panic
# function it does not know fall through to the next function).
clippy_clean() {
	[ -e .clippy.log ] || { echo "no .clippy.log: the modules were not built by build-all.sh"; return 1; }
	! grep -E '^(warning|error)|: (warning|error): objtool:' .clippy.log
}
# That build really ran clippy with the SAFETY lints on: each crate's command
# line (.*.o.cmd) is clippy-driver's with the kernel's
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
static_checks() {
	check rustfmt make -s rustfmtcheck
	check clippy clippy_clean
	check safety-lints-in-force clippy_lints_in_force
	# mdev-probe: clippy-clean (Debian's clippy-driver, the rustc that builds it).
	check mdev-probe-clippy env RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER" RUSTFLAGS="-D warnings" \
		cargo check --release --locked --manifest-path tools/mdev-probe/Cargo.toml --target-dir out/cargo-clippy
	check mdev-probe-unit-tests cargo test --release --locked --manifest-path tools/mdev-probe/Cargo.toml \
		--target-dir out/cargo
	check no-unsafe-in-drivers bash -c '! grep -rnwE "unsafe" --include="*.rs" mdpy mbochs mdpy-fb 2>/dev/null'
	# No Rust slice over raw memory in rust/ but the sysfs page: memory user
	# space may map (vmalloc buffers, pages, BARs) is only copied by C
	# through raw pointers, never through a Rust reference (issue 24). The
	# one exception, marked EXCLUSIVE-DST: uaccess::read_exclusive, an unsafe
	# fn whose callers guarantee no one else can reach the memory yet.
	check no-slices-over-user-memory bash -c \
		'! grep -rn "from_raw_parts" --include="*.rs" rust | grep -v "^rust/generated/\|^rust/sysfs.rs:\|^rust/uaccess.rs:.*// EXCLUSIVE-DST$"'
	# The misuse checks (tools/testing/misuse/check.sh): code a driver must
	# not be able to compile, built like a driver. The valid uses must
	# compile, then each misuse must fail with the error codes it names.
	# The MSRV: the oldest rustc 7.3 supports, 1.85, which Debian's kernel was
	# built with: `make debian-kernel` builds the modules with it (against
	# Debian's kernel, in its trixie chroot: the only 1.85-built kernel
	# there is). Cold it downloads and prepares minutes of work, so this
	# tier runs it once that is cached; check-full's debian phase always does.
	local deb
	deb=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-debian-kernel.sh" --print-only 2>/dev/null)
	if [ "$TIER" = full ]; then
		:	# (the debian phase)
	elif [ -n "$deb" ] && [ -f "$deb/.prepared" ]; then
		check msrv-rustc-1.85 bash -c 'make -s debian-kernel && grep -q "^CONFIG_RUSTC_VERSION_TEXT=\"rustc 1\.85\." "$0/.config"' "$deb"
	else
		echo "not run - static: msrv-rustc-1.85: Debian's kernel tree is not prepared yet (make debian-kernel: minutes, once; make check-full always runs it)" >> "$static"
	fi
	check misuse-control env KDIR="$KDIR" tools/testing/misuse/check.sh control
	local c
	for c in $(tools/testing/misuse/check.sh --list); do
		check "misuse-${c//_/-}" env KDIR="$KDIR" tools/testing/misuse/check.sh "$c"
	done
}
# With a VM to run, beside it (niced: the VM's TCG leaves part of the two
# cores idle, and these checks build nothing the VM uses), like bookworm.
static_pid=
if runs static; then
	if [ "$TIER" != static ] && [ -n "$(vm_phases)" ]; then
		say "static checks beside the VM: rustfmt, clippy, unsafe discipline, misuse (log: out/test/static.log)"
		static_niced() { renice -n 10 "$BASHPID" > /dev/null; static_checks; }
		timed static static_niced > "$OUT/static.log" 2>&1 &
		static_pid=$!
	else
		say "static checks: rustfmt, clippy, unsafe discipline, misuse"
		timed static static_checks
	fi
fi

# Phase usage: the host's blocks of Documentation/mdev-rs/usage.rst (build
# and install, into a scratch root the VM's blocks load from), before the
# VM runs the others (guest-usage.sh). One result line per block.
usage_host() {
	local script=$OUT/usage-host.sh res=$OUT/usage-host-results.txt
	: > "$res"
	if ! python3 tools/testing/vm/usage_blocks.py Documentation/mdev-rs/usage.rst host > "$script" 2> "$OUT/usage-blocks.err"; then
		echo "not ok - usage: $(cat "$OUT/usage-blocks.err")" >> "$res"; return 0
	fi
	rm -rf "$OUT/usage-root"
	(
		export KDIR USAGE_ROOT=$OUT/usage-root
		usage_begin() { usage_n=$1 usage_title=$2 usage_first=$3 usage_t0=$SECONDS; echo "### block $1 ($2)"; }
		usage_end() { echo "ok - usage: block $usage_n ($usage_title, on the host, $((SECONDS - usage_t0)) s): $usage_first" >> "$res"; }
		usage_elsewhere() { :; }
		usage_failed() { echo "not ok - usage: block $usage_n ($usage_title, on the host): '$BASH_COMMAND' failed (status $1; see usage-host.log)" >> "$res"; exit 1; }
		set -eE -o pipefail
		trap 'usage_failed $?' ERR
		# shellcheck disable=SC1090
		. "$script"
	) > "$OUT/usage-host.log" 2>&1 < /dev/null
	return 0
}
if runs usage; then
	say "usage.rst: the host's blocks (build and install into out/test/usage-root)"
	timed usage-host usage_host
fi

# Phase bookworm: on the host, beside the test VM (a chroot, mostly apt
# and downloads; the VM's time limits have room for it).
bookworm_pid=
if runs bookworm; then
	say "bookworm: bootstrap-deps.sh and make in a clean Debian 12 chroot, beside the VM (log: out/test/bookworm.log)"
	timed bookworm nice -n 10 "$MDEV_RS_TOP/tools/testing/vm/run-bookworm.sh" "$OUT/bookworm" "$KDIR" \
		> "$OUT/bookworm.log" 2>&1 &
	bookworm_pid=$!
fi

# Phase debian's build (Debian's packages, its chroot and Rust metadata:
# minutes on a fresh machine, seconds warm), beside the VM too; the phase
# itself, after the VM, then finds it done.
# Then the phase's other steps that need no VM (make debian-install, DKMS:
# run-debian.sh prepare), beside it too; its boots come after the VM.
debian_prep_pid=
if runs debian; then
	say "debian: make debian-kernel, make debian-install and DKMS beside the VM (log: out/test/debian-prep.log)"
	debian_prep() {
		renice -n 10 "$BASHPID" > /dev/null
		local log=$OUT/debian-kernel.log
		make -s -C "$MDEV_RS_TOP" debian-kernel > "$log" 2>&1 || log=
		# (if that build failed, run-debian.sh runs it again and reports it)
		DEBIAN_KERNEL_LOG=$log "$MDEV_RS_TOP/tools/testing/vm/run-debian.sh" "$OUT/debian" prepare
	}
	timed debian-prep debian_prep > "$OUT/debian-prep.log" 2>&1 &
	debian_prep_pid=$!
fi

vm_rc=0
if [ -n "$(vm_phases)" ]; then
	timed vm env MDEV_RS_TIER="$TIER" MDEV_RS_ONLY="$ONLY" \
		"$MDEV_RS_TOP/tools/testing/vm/run-vm.sh" test "$KDIR" "$OUT" || vm_rc=$?
fi

[ -z "$bookworm_pid" ] || wait "$bookworm_pid"
[ -z "$static_pid" ] || wait "$static_pid"
[ -z "$debian_prep_pid" ] || wait "$debian_prep_pid"

# Phase debian: a VM of its own, booting Debian's kernel (run-debian.sh's
# boots; what it prepared ran beside the test VM).
if runs debian; then
	timed debian "$MDEV_RS_TOP/tools/testing/vm/run-debian.sh" "$OUT/debian" boot
fi

# The phases' wall times: the host's, then the VM's (guest-run.sh), the
# VM's boot and setup being what its phases leave of its time.
phase_times() {
	local vm_total vm_phases_sum
	grep -v '^vm ' "$OUT/host-times.txt"
	vm_total=$(sed -n 's/^vm //p' "$OUT/host-times.txt")
	if [ -n "$vm_total" ]; then
		vm_phases_sum=$(awk '{s += $2} END {print s + 0}' "$OUT/vm-phase-times.txt" 2>/dev/null || echo 0)
		echo "vm-boot-and-setup $((vm_total - vm_phases_sum))"
		cat "$OUT/vm-phase-times.txt" 2>/dev/null
	fi
	echo "total $((SECONDS - T0))"
}

{
	runs static && cat "$static"
	# What this run leaves out, and which tier runs it.
	for p in $MDEV_RS_ALL_PHASES; do
		if [ -n "$ONLY" ] && ! runs "$p" && tier_has_phase "$TIER" "$p"; then
			echo "not run - $p: not in MDEV_RS_ONLY=\"$ONLY\""
		elif ! tier_has_phase "$TIER" "$p"; then
			[ "$TIER" = static ] && echo "not run - $p: in make check and make check-full" && continue
			echo "not run - $p: $(tier_check_leaves_out "$p"): in make check-full"
		elif [ "$TIER" = check ] && runs "$p" && [ "$p" != static ]; then
			echo "not run - $p: $(tier_check_leaves_out "$p"): in make check-full"
		fi
	done
	if [ -n "$(vm_phases)" ]; then
		# How the VM ended, in one line (vm_run): boot failure before our
		# code ran, death after it, or a complete run; any boot retried.
		cat "$OUT/vm-boot-verdict.txt" 2>/dev/null || echo "not ok - test VM: no boot verdict (vm_run did not finish)"
		# tap-DRIVER-IMPL-TYPE.txt: one kselftest run (IMPL is c or rust).
		for tap in "$OUT"/tap-*.txt; do
			[ -e "$tap" ] || continue
			impl=$(basename "$tap" .txt | cut -d- -f3) type=$(basename "$tap" .txt | cut -d- -f4-)
			"$MDEV_RS_TOP/tools/testing/vm/tap-verdict.sh" "$impl" "$tap" "$type" | grep -v '^# verdict'
		done
		cat "$OUT/results.txt"
		[ "$build_tier" = full ] && "$MDEV_RS_TOP/tools/testing/vm/post-checks.sh" "$OUT"
		# Each phase that ran left its results, or a failure says so.
		for p in $(vm_phases); do
			grep -qx "$p [0-9]*" "$OUT/vm-phase-times.txt" 2>/dev/null ||
				echo "not ok - $p: the phase did not finish (VM status $vm_rc)"
			for want in $(tier_expected_taps "$TIER" "$p"); do
				[ -e "$OUT/$want.txt" ] || echo "not ok - $want: no results (VM status $vm_rc)"
			done
		done | sort -u
		if runs fuzz; then
			for want in "random operations" "cycles: mdpy" "cycles: mbochs" "cycles: memory" \
				"no kernel splat during the fuzz" "both modules unload" "kmemleak clean"; do
				grep -qE "^(not )?ok - fuzz rust: $want" "$OUT/results.txt" ||
					echo "not ok - fuzz rust: $want: no result (VM status $vm_rc)"
			done
		fi
		if runs hostile; then
			for want in "the nested guest wrote random values" "QUERY_GFX_PLANE within the devices' limits" \
				"the mdevs are removed" "no kernel splat during the phase"; do
				grep -qE "^(not )?ok - hostile-guest: $want" "$OUT/results.txt" ||
					echo "not ok - hostile-guest: $want: no result (VM status $vm_rc)"
			done
		fi
		runs probe && ! grep -q '^[a-z ]* - probe: ' "$OUT/results.txt" &&
			echo "not ok - probe: no results (VM status $vm_rc)"
		if [ "$build_tier" = full ]; then
			[ -s "$OUT/expected-checks.txt" ] || echo "not ok - end to end: no screendump planned (VM status $vm_rc)"
		fi
		if [ -e "$OUT/dmesg.txt" ] && "$MDEV_RS_TOP/tools/testing/vm/splat-check.sh" \
			"$OUT/dmesg.txt" "$OUT/kmemleak.txt" > "$OUT/splats.txt"; then
			echo "ok - no kernel splat (WARN, BUG, Oops, lockdep, UBSAN, list corruption) or kmemleak report"
		else
			echo "not ok - kernel splat, kmemleak report or no dmesg (see out/test/splats.txt)"
		fi
	fi
	if runs bookworm; then
		if [ -s "$OUT/bookworm/summary.tap" ]; then cat "$OUT/bookworm/summary.tap"
		else echo "not ok - bookworm: the phase left no results (see out/test/bookworm.log)"; fi
	fi
	if runs debian; then
		if [ -s "$OUT/debian/summary.tap" ]; then cat "$OUT/debian/summary.tap"
		else echo "not ok - debian: the phase left no results"; fi
	fi
} > "$OUT/summary.tap"

cat "$OUT/summary.tap"
[ -s "$OUT/splats.txt" ] && cat "$OUT/splats.txt"
phase_times > "$TIMES"
passed=$(grep -c '^ok' "$OUT/summary.tap")
failed=$(grep -c '^not ok' "$OUT/summary.tap")
notrun=$(grep -c '^not run' "$OUT/summary.tap")
# "not run" lines are no TAP test points: they are neither passed nor failed.
echo "1..$((passed + failed))"
echo "Artefacts: $OUT (screendumps as PNG: $OUT/checks/; per-test times: $OUT/times-*.txt)"
echo "Phase wall times, tier $TIER (also in out/test/phase-times.txt):"
awk '{printf "    %-22s %5ds  %2d:%02d\n", $1, $2, $2 / 60, $2 % 60}' "$TIMES"
# The last line keeps the form CI and people read ("N passed, N failed"); the
# tests that did not run are counted on the line before it, never as passed.
echo "$notrun not run (the 'not run -' lines above: neither passed nor failed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
