# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mbochs (dma-buf display), sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, log, result).
#
# MODE=test: the mbochs kselftest against the C sample and the Rust module,
# on every type, TAP in OUT/tap-mbochs-IMPL-TYPE.txt (judged on the host by
# tap-verdict.sh).
#
# The C sample leaks every dma-buf's page array (kcalloc'ed, never freed),
# which kmemleak reports; any kmemleak report fails the run. So:
#  - right after each C run (the module still loaded, so that backtraces
#    name it) kmemleak is scanned, its reports added to
#    OUT/kmemleak-mbochs-c.txt and cleared; a report in that scan not from
#    the C module is a failure;
#  - some of the C module's leaks escape that scan (stale pointers in reused
#    slab memory keep them "referenced" for a while). guest-run.sh calls
#    mbochs_kmemleak_filter on the final report: it moves to
#    kmemleak-mbochs-c.txt the reports allocated by a C run's mbochs_test
#    processes (by pid) through that run's C module code (by address: it is
#    unloaded by then). Everything else stays and fails the run.

MBOCHS_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mbochs_test
# One "first-pid last-pid text-start text-end;" per C run: the pids of its
# test processes, and the C module's address range while it was loaded.
MBOCHS_C_RUNS=""

# kmemleak: scan, keep the C sample's reports, clear them.
mbochs_c_kmemleak() {
	local kml=/sys/kernel/debug/kmemleak rep=$OUT/kmemleak-mbochs-c.txt scan other
	[ -w $kml ] || return 0
	sleep 6	# kmemleak only reports objects older than 5 s
	echo scan > $kml; echo scan > $kml
	scan=$(cat $kml)
	echo clear > $kml
	printf '%s\n' "$scan" >> "$rep"
	other=$(printf '%s\n' "$scan" | awk '/^unreferenced object/ { if (blk != "" && blk !~ /\[mbochs\]/) n++; blk = "" }
		{ blk = blk $0 "\n" } END { if (blk != "" && blk !~ /\[mbochs\]/) n++; print n + 0 }')
	log "  kmemleak: $(printf '%s\n' "$scan" | grep -c '^unreferenced object') reports from the C mbochs kept in $(basename "$rep")"
	[ "$other" = 0 ] ||
		result "not ok - kmemleak: $other leak(s) not from the C mbochs (see $(basename "$rep"))"
}

# Called by guest-run.sh with the final kmemleak report (see above).
mbochs_kmemleak_filter() {
	local f=$1 tmp
	[ -n "$MBOCHS_C_RUNS" ] && [ -s "$f" ] || return 0
	tmp=$(mktemp)
	# Addresses are compared as strings: all are 0x + 16 lowercase hex digits.
	awk -v runs="$MBOCHS_C_RUNS" -v c="$tmp" '
		function flush() {
			if (blk == "") return
			if (cblk) printf "%s", blk >> c; else printf "%s", blk
			blk = ""
		}
		BEGIN { nruns = split(runs, r, ";") - 1 }
		/^unreferenced object/ { flush(); cblk = 0; run = 0; intext = 0 }
		{
			blk = blk $0 "\n"
			if (match($0, /comm "mbochs_test", pid [0-9]+/)) {
				n = substr($0, RSTART, RLENGTH); sub(/.* /, "", n)
				for (i = 1; i <= nruns; i++) {
					split(r[i], q, " ")
					if (n + 0 >= q[1] + 0 && n + 0 <= q[2] + 0) run = i
				}
			}
			if (run && match($0, /0xffffffff[0-9a-f]+/)) {
				a = substr($0, RSTART, RLENGTH)
				split(r[run], q, " ")
				if (length(a) == 18 && a >= q[3] && a < q[4]) intext = 1
			}
			if ($0 ~ /\[mbochs\]/) intext = 1
			cblk = run && intext
		}
		END { flush() }' "$f" > "$f.rest"
	if [ -s "$tmp" ]; then
		log "kmemleak: $(grep -c '^unreferenced object' "$tmp") more reports from the C mbochs moved to kmemleak-mbochs-c.txt"
		cat "$tmp" >> "$OUT/kmemleak-mbochs-c.txt"
	fi
	mv "$f.rest" "$f"
	rm -f "$tmp"
}

# mbochs-medium runs every test; the other types the tests that depend on
# the type (VRAM size, EDID maximum, the pool it was loaded with): the rest
# cannot differ (see only_tests in guest-run.sh).
MBOCHS_FULL_TYPE=mbochs-medium
MBOCHS_TYPE_TESTS="region_info_bars config_bar_sizing dispi_initial_registers
	reset_restores_dispi bar0_rw_roundtrip bar0_initially_zero
	bar0_mmap_shared_between_mappings defect_2_bar0_rw_matches_mmap bar0_bad_accesses
	mmap_bad query_too_big_for_vram defect_16_dmabuf_pixels_written_by_mmap
	defect_16_dmabuf_pan defect_6_close_frees_unexported_dmabuf_pages
	defect_dmabuf_cache_bounded_over_2000_modes defect_edid_max_resolution_enforced
	defect_7_dmabuf_outlives_mdev_removal hostile_dispi edid_registers pool_accounting
	sysfs_device sysfs_module_param_count"

# One kselftest run: IMPL KO TYPE POOL (the count parameter, in MB)
mbochs_suite() {
	local impl=$1 ko=$2 type=$3 pool=$4 name=tap-mbochs-$1-$3 only=""
	local tap=$OUT/$name.txt
	echo "$name" >> "$OUT/expected-taps.txt"
	log "kselftest: $impl mbochs ($ko), type $type, pool $pool MB"
	if [ ! -e "$ko" ]; then
		printf 'TAP version 13\n1..1\nnot ok 1 mbochs.%s.module_built # %s does not exist\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	if [ ! -x "$MBOCHS_TEST_BIN" ]; then
		printf 'TAP version 13\n1..1\nnot ok 1 mbochs.%s.test_built # %s does not exist\n' \
			"$impl" "$MBOCHS_TEST_BIN" > "$tap"
		return
	fi
	if ! insmod "$ko" count="$pool"; then
		printf 'TAP version 13\n1..1\nnot ok 1 mbochs.%s.insmod # insmod %s failed\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	local base size first text
	if [ "$impl" = c ]; then
		read -r size base < <(awk '$1 == "mbochs" { print $2, $6 }' /proc/modules)
		text="$base $(printf '0x%016x' $((base + size)))"
		first=$(sh -c 'echo $$')	# pids grow: the test's are above
	fi
	# shellcheck disable=SC2086
	[ "$type" = $MBOCHS_FULL_TYPE ] || only=$(only_tests "$MBOCHS_TEST_BIN" \
		"$OUT/notrun-mbochs-$impl-$type.txt" "type-independent, run on $MBOCHS_FULL_TYPE" \
		$MBOCHS_TYPE_TESTS)
	# shellcheck disable=SC2086
	MDEV_IMPL=$impl MBOCHS_TYPE=$type MBOCHS_COUNT=$pool kselftest "$tap" 600 "$MBOCHS_TEST_BIN" $only
	if [ "$impl" = c ]; then
		first="$first $(sh -c 'echo $$')"
		MBOCHS_C_RUNS+="$first $text;"
		log "  C run: pids $first, module text $text"
		mbochs_c_kmemleak
	fi
	rmmod mbochs || result "not ok - rmmod mbochs ($impl)"
}

# C defect 15: the pool parameter is documented as `mem` but named `count`.
# The Rust module takes both (`mem` wins if nonzero): check the pool they
# give, and that each shows the value it was given in sysfs (defaults:
# count 256, mem 0).
mbochs_mem_alias() {
	local ko=$TOP/mbochs/mbochs.ko args want got shown
	local avail=/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-small/available_instances
	local params=/sys/module/mbochs/parameters
	for args in "mem=32:8:256,32" "count=64 mem=16:4:64,16" "count=12:3:12,0"; do
		IFS=: read -r args want shown <<< "$args"
		# shellcheck disable=SC2086
		if ! insmod "$ko" $args; then result "not ok - mbochs parameters: insmod $args"; continue; fi
		got=$(cat "$avail" 2>/dev/null)
		if [ "$got" = "$want" ]; then
			result "ok - mbochs parameters: $args gives $want mbochs-small instances"
		else
			result "not ok - mbochs parameters: $args gives '$got' mbochs-small instances, want $want"
		fi
		got="$(cat "$params/count" 2>/dev/null),$(cat "$params/mem" 2>/dev/null)"
		if [ "$got" = "$shown" ]; then
			result "ok - mbochs parameters: $args shows count,mem = $shown in $params"
		else
			result "not ok - mbochs parameters: $args shows count,mem = '$got' in $params, want $shown"
		fi
		rmmod mbochs || result "not ok - rmmod mbochs ($args)"
	done
}

mbochs_phase() {
	[ "$1" = test ] || return 0
	# Each type with a pool of four of its devices (4, 16, 64 MB each).
	for impl in c rust; do
		local ko=$KDIR/samples/vfio-mdev/mbochs.ko
		[ $impl = rust ] && ko=$TOP/mbochs/mbochs.ko
		mbochs_suite $impl "$ko" mbochs-small 16
		mbochs_suite $impl "$ko" mbochs-medium 64
		mbochs_suite $impl "$ko" mbochs-large 256
	done
	mbochs_mem_alias
}
