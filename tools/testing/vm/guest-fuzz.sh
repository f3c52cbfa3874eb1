# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz and lifecycle-stress phase, sourced by guest-run.sh inside the test
# VM (uses its OUT, KDIR, TOP, log, result).
#
# MODE=test: the Rust modules only, FUZZ_OPS (default 20000 in make
#   check-full, 5000 in make check) random operations per driver (tools/testing/selftests/vfio-mdev/
#   mdev_fuzz.c: several threads, mdevs of both drivers, both open paths),
#   then FUZZ_CYCLES (default 1000; make check: 200) create/open/use/close/remove cycles per
#   driver with memory bounded. Result lines: the fuzzer's verdict (its
#   own checks: no forbidden answer, every mdev removable, every instance
#   available again), no kernel splat during the phase, kmemleak clean after
#   it, both modules unload.
# MODE=fuzz (make fuzz): the same for each of FUZZ_IMPLS (default "rust c"),
#   with FUZZ_OPS default 10^6. The C samples' results are findings
#   ("finding - ..." lines, neither passed nor failed): they are expected to
#   hit their defects, and may take the VM down; the Rust modules run first.

FUZZ_BIN=$TOP/tools/testing/selftests/vfio-mdev/mdev_fuzz
# The host's FUZZ_* settings (run-vm.sh writes them).
# shellcheck disable=SC1091
[ -r "$OUT/fuzz-env" ] && . "$OUT/fuzz-env"
# (KASAN's reports are "BUG: KASAN: ...".)
FUZZ_SPLATS='-+\[ cut here \]-+|BUG:|Oops|WARNING:|possible circular locking|inconsistent lock state|possible recursive locking|suspicious RCU usage|UBSAN:|list_(add|del) corruption|kernel BUG|general protection fault|Kernel panic|VFS: Close: file count is 0'

# A result line of IMPL: "ok"/"not ok" for Rust, "finding" for C.
fuzz_result() { # IMPL OK(0/1) TEXT
	if [ "$1" = c ]; then
		result "finding - fuzz c: $3"
	elif [ "$2" = 0 ]; then
		result "ok - fuzz rust: $3"
	else
		result "not ok - fuzz rust: $3"
	fi
}

fuzz_impl() { # IMPL OPS SECONDS
	local impl=$1 ops=$2 secs=$3 mdpy mbochs out=$OUT/fuzz-$1 rc line dmesg0 n t
	local pool=128 kml=/sys/kernel/debug/kmemleak
	# mdpy's count: room for 16 instances though the fuzzer keeps 3 mdpy
	# mdevs. A migration data fd holds its device (and so the mdev's
	# instance) until it is closed, and the workers keep data fds past the
	# device's close and removal on purpose: an mdpy removed while a worker
	# keeps one of its data fds holds an instance until that fd is closed,
	# and the remover's re-creation must still find one free (with count=4
	# two such fds made it fail with EUSERS, seen once on 2026-12-07).
	local mdpy_count=16
	mdpy=$KDIR/samples/vfio-mdev/mdpy.ko mbochs=$KDIR/samples/vfio-mdev/mbochs.ko
	# FUZZ_MODDIR: the Rust modules built for another kernel (make fuzz's KASAN one).
	[ "$impl" = rust ] && mdpy=${FUZZ_MODDIR:-$TOP}/mdpy/mdpy.ko mbochs=${FUZZ_MODDIR:-$TOP}/mbochs/mbochs.ko
	if [ ! -x "$FUZZ_BIN" ]; then
		fuzz_result "$impl" 1 "$FUZZ_BIN does not exist"; return
	fi
	if ! insmod "$mdpy" count=$mdpy_count || ! insmod "$mbochs" count=$pool; then
		fuzz_result "$impl" 1 "insmod $mdpy / $mbochs failed"; rmmod mdpy 2>/dev/null; return
	fi
	# (kmemleak is not cleared here: that would hide what earlier phases leaked.)
	dmesg0=$(dmesg | wc -l)
	log "fuzz: $impl mdpy + mbochs, $ops ops per driver (limit ${secs}s), seed ${FUZZ_SEED:-random}"
	t=$SECONDS
	MDEV_IMPL=$impl FUZZ_OPS=$ops FUZZ_SECONDS=$secs FUZZ_POOL_MB=$pool FUZZ_MDPY_COUNT=$mdpy_count \
		timeout $((secs + 120)) "$FUZZ_BIN" fuzz > "$out.txt" 2>&1
	rc=$?
	line=$(grep -m1 '^# done' "$out.txt" | sed 's/^# //')
	log "  fuzz $impl: status $rc in $((SECONDS - t))s: ${line:-no summary}"
	if [ $rc = 0 ]; then
		fuzz_result "$impl" 0 "random operations: $line"
	else
		fuzz_result "$impl" 1 "random operations: status $rc: $(grep -m1 -E '^# FAIL' "$out.txt" | cut -c3-300) ${line:+($line)} (seed: $(grep -m1 -o 'seed 0x[0-9a-f]*' "$out.txt"); see $(basename "$out").txt)"
	fi
	# One driver at a time: side by side, under TCG, the other driver's
	# deferred frees (RCU, kmemleak's own objects) land in the window and
	# Slab looked like it grew with the cycles, while each driver alone
	# stays flat (Documentation/mdev-rs/robustness.rst).
	local drv
	for drv in mdpy mbochs; do
		log "cycles: $impl $drv, ${FUZZ_CYCLES:-1000} cycles"
		# /proc/slabinfo, vmstat, meminfo, zoneinfo, vmallocinfo, the stack
		# depot's stats and each process's RssAnon at cycle 50, half way and
		# the end; counters-trace.txt: the memory counters every n/20 cycles
		# (at least 25).
		mkdir -p "$out-memory-$drv"
		t=$SECONDS
		MDEV_IMPL=$impl FUZZ_DRIVERS=$drv FUZZ_CYCLES=${FUZZ_CYCLES:-1000} FUZZ_POOL_MB=$pool FUZZ_MDPY_COUNT=$mdpy_count \
			FUZZ_OUT=$out-memory-$drv timeout 900 "$FUZZ_BIN" cycles > "$out-cycles-$drv.txt" 2>&1
		rc=$?
		log "  cycles $impl $drv: status $rc in $((SECONDS - t))s"
		n=0
		while IFS= read -r line; do
			case $line in
			"ok - "*) fuzz_result "$impl" 0 "cycles: ${line#ok - }"; n=$((n + 1)) ;;
			"not ok - fds:"*) fuzz_result "$impl" 1 "cycles: ${line#not ok - }" ;;
			"not ok - "*) fuzz_result "$impl" 1 "cycles: ${line#not ok - }"; n=$((n + 1)) ;;
			esac
		done < "$out-cycles-$drv.txt"
		[ $n = 2 ] && [ $rc = 0 ] || fuzz_result "$impl" 1 "cycles: $drv: status $rc, $n of 2 results ($drv, memory) (see $(basename "$out")-cycles-$drv.txt)"
		log "  $(grep -m1 '^# counters' "$out-cycles-$drv.txt" | cut -c3-)"
	done
	# FUZZ_CYCLE_BISECT="STEPS ..." (e.g. "none dmabuf-mmap dmabuf plane
	# bar0 open"; unset: none of this): mbochs' cycles again,
	# FUZZ_CYCLE_BISECT_N (default 500) each, leaving out each STEPS
	# (mdev_fuzz.c's FUZZ_CYCLE_SKIP; "none": whole cycles), to see which
	# step a memory counter moves with. Logged and saved
	# (fuzz-rust-bisect-STEPS/), not judged.
	local steps
	for steps in ${FUZZ_CYCLE_BISECT:-}; do
		[ "$impl" = rust ] || break
		mkdir -p "$out-bisect-$steps"
		t=$SECONDS
		MDEV_IMPL=$impl FUZZ_DRIVERS=mbochs FUZZ_CYCLES=${FUZZ_CYCLE_BISECT_N:-500} FUZZ_POOL_MB=$pool \
			FUZZ_MDPY_COUNT=$mdpy_count FUZZ_CYCLE_SKIP=$steps FUZZ_OUT=$out-bisect-$steps \
			timeout 900 "$FUZZ_BIN" cycles > "$out-bisect-$steps/out.txt" 2>&1
		log "  bisect mbochs without $steps: status $?, $((SECONDS - t))s: $(grep -m1 '^# counters' "$out-bisect-$steps/out.txt" | cut -c3-)"
		log "    $(grep -m1 ' - memory:' "$out-bisect-$steps/out.txt")"
	done
	# The kernel's verdict on the phase.
	dmesg | tail -n +"$((dmesg0 + 1))" > "$out-dmesg.txt"
	if grep -qE -- "$FUZZ_SPLATS" "$out-dmesg.txt"; then
		fuzz_result "$impl" 1 "kernel splat during the fuzz and cycles: $(grep -m1 -E -- "$FUZZ_SPLATS" "$out-dmesg.txt" | sed 's/^\[[^]]*\] //' | cut -c1-160) (see $(basename "$out")-dmesg.txt)"
	else
		fuzz_result "$impl" 0 "no kernel splat during the fuzz and cycles ($(wc -l < "$out-dmesg.txt") kernel log lines)"
	fi
	if rmmod mbochs && rmmod mdpy; then
		fuzz_result "$impl" 0 "both modules unload after the run"
	else
		fuzz_result "$impl" 1 "a module does not unload after the run: $(grep -E '^(mdpy|mbochs) ' /proc/modules | tr '\n' ' ')"
		rmmod mbochs 2>/dev/null; rmmod mdpy 2>/dev/null
	fi
	if [ -w $kml ]; then
		sleep 6	# kmemleak reports objects older than 5 s
		echo scan > $kml; echo scan > $kml
		cat $kml > "$out-kmemleak.txt"
		# The C samples' known leaks that surface late are set aside as in
		# the run's final scan (guest-run.sh), by the same filters.
		[ "$impl" = rust ] && for f in $(compgen -A function | grep '_kmemleak_filter$'); do
			"$f" "$out-kmemleak.txt"
		done
		n=$(grep -c '^unreferenced object' "$out-kmemleak.txt")
		if [ "$n" = 0 ]; then
			fuzz_result "$impl" 0 "kmemleak clean after the run"
		else
			fuzz_result "$impl" 1 "kmemleak clean after the run: no, $n unreferenced objects (see $(basename "$out")-kmemleak.txt)"
		fi
		# The C samples' leaks are findings of that run, not of later ones.
		[ "$impl" = c ] && echo clear > $kml
	fi
}

fuzz_phase() {
	local impl
	case $1 in
	test)
		# make check: a short run (tiers.sh); make check-full the longer one.
		if [ "$TIER" = full ]; then
			FUZZ_CYCLES=${FUZZ_CYCLES:-1000} fuzz_impl rust "${FUZZ_OPS:-20000}" "${FUZZ_SECONDS:-300}"
		else
			FUZZ_CYCLES=${FUZZ_CYCLES:-200} fuzz_impl rust "${FUZZ_OPS:-5000}" "${FUZZ_SECONDS:-120}"
		fi ;;
	fuzz)
		for impl in ${FUZZ_IMPLS:-rust c}; do
			fuzz_impl "$impl" "${FUZZ_OPS:-1000000}" "${FUZZ_SECONDS:-3600}"
		done ;;
	esac
}
