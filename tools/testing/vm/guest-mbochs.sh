# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mbochs (dma-buf display), sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, TIER, log, result), and by
# debian-guest.sh in Debian's kernel (MDEV_RS_IMPLS=rust: Debian builds no
# C sample; rust_ko: the installed modules).
#
# MODE=test: the mbochs kselftest against the C sample and the Rust module,
# on the tier's types (tiers.sh), TAP in OUT/tap-mbochs-IMPL-TYPE.txt (judged on the host by
# tap-verdict.sh).
#
# The C sample's kmemleak reports (it leaks by design) are set aside by
# mbochs-c-kmemleak.sh, only those.

MBOCHS_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mbochs_test
. "$TOP/tools/testing/vm/mbochs-c-kmemleak.sh"

# mbochs-medium runs every test; the other types the tests that depend on
# the type (VRAM size, EDID maximum, the pool it was loaded with): the rest
# cannot differ (see only_tests in guest-run.sh). The two tests that bound a
# leak by MemFree (defect 6, the 2000 mode changes) run on mbochs-medium
# only: their bounds are calibrated for its 16 MB of VRAM, which larger
# types legitimately fill further and smaller ones leak less of.
MBOCHS_FULL_TYPE=mbochs-medium
MBOCHS_TYPE_TESTS="region_info_bars config_bar_sizing dispi_initial_registers
	reset_restores_dispi bar0_rw_roundtrip bar0_initially_zero
	bar0_mmap_shared_between_mappings defect_2_bar0_rw_matches_mmap bar0_bad_accesses
	mmap_bad query_too_big_for_vram defect_16_dmabuf_pixels_written_by_mmap
	defect_16_dmabuf_pan defect_edid_max_resolution_enforced
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
	[ "$impl" = c ] && mbochs_c_begin mbochs_test
	# shellcheck disable=SC2086
	[ "$type" = $MBOCHS_FULL_TYPE ] || only=$(only_tests "$MBOCHS_TEST_BIN" \
		"$OUT/notrun-mbochs-$impl-$type.txt" "type-independent or calibrated for $MBOCHS_FULL_TYPE, run there" \
		$MBOCHS_TYPE_TESTS)
	# shellcheck disable=SC2086
	MDEV_IMPL=$impl MBOCHS_TYPE=$type MBOCHS_COUNT=$pool kselftest "$tap" 600 "$MBOCHS_TEST_BIN" $only
	[ "$impl" = c ] && mbochs_c_end
	rmmod mbochs || result "not ok - rmmod mbochs ($impl)"
}

# C defect 15: the pool parameter is documented as `mem` but named `count`.
# The Rust module takes both (`mem` wins if nonzero): check the pool they
# give, and that each shows the value it was given in sysfs (defaults:
# count 256, mem 0).
mbochs_mem_alias() {
	local ko args want got shown
	ko=$(rust_ko mbochs)
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

# One failure must not cascade (the ledger of mdev_lib.h): a test killed
# while its mdevs exist, as the harness kills one at its time limit (SIGKILL
# to its process group: no teardown), leaves them to the next test of the
# run, whose mdev_create() removes them before creating its own. Here
# pool_accounting (it fills the pool: with mdevs left over, its counts are
# wrong) is killed once it holds two of the pool's four mbochs-medium
# mdevs, then run again with the same ledger: it must pass, and nothing may
# be left.
mbochs_cascade_guard() {
	local ledger=/tmp/mdev-ledger-cascade-guard pid t=0 left name="rust mbochs-medium: one failure does not cascade"
	local tap=$OUT/mbochs-cascade-guard.txt
	insmod "$(rust_ko mbochs)" count=64 || { result "not ok - $name: insmod"; return; }
	rm -f "$ledger"
	MDEV_LEDGER=$ledger MDEV_IMPL=rust MBOCHS_TYPE=mbochs-medium MBOCHS_COUNT=64 \
		setsid "$MBOCHS_TEST_BIN" -r mbochs:iommufd_cdev:pool_accounting > "$tap.killed" 2>&1 &
	pid=$!
	while [ $t -lt 300 ] && [ "$(ls /sys/bus/mdev/devices 2>/dev/null | wc -l)" -lt 2 ]; do
		sleep 0.1; t=$((t + 1))
	done
	pkill -9 -s "$pid"	# the run's whole session, as a timeout kills a test
	wait "$pid" 2>/dev/null
	left=$(ls /sys/bus/mdev/devices 2>/dev/null | wc -l)
	if [ "$left" -lt 2 ]; then
		result "not ok - $name: the killed test held $left mdevs, not the 2 this check needs (see $(basename "$tap").killed)"
	else
		MDEV_LEDGER=$ledger MDEV_IMPL=rust MBOCHS_TYPE=mbochs-medium MBOCHS_COUNT=64 \
			timeout 300 "$MBOCHS_TEST_BIN" -r mbochs:iommufd_cdev:pool_accounting > "$tap" 2>&1
		if grep -q '^ok 1 mbochs.iommufd_cdev.pool_accounting' "$tap" &&
		   [ -z "$(ls /sys/bus/mdev/devices 2>/dev/null)" ]; then
			result "ok - $name: a test killed holding $left mdevs left them to the next, which removed them and passed ($(grep -c 'left by a killed test' "$tap") removed)"
		else
			result "not ok - $name: after a test killed holding $left mdevs, the next: $(grep -m1 -E '^(not )?ok' "$tap"), $(ls /sys/bus/mdev/devices | wc -l) mdevs left (see $(basename "$tap"))"
		fi
	fi
	mdev_sweep "$name"
	rmmod mbochs || result "not ok - $name: rmmod mbochs"
}

mbochs_phase() {
	[ "$1" = test ] || return 0
	local impl ko type pool
	# Each type (the tier's, tiers.sh) with a pool of four of its devices
	# (4, 16, 64 MB each).
	for impl in ${MDEV_RS_IMPLS:-c rust}; do
		ko=$KDIR/samples/vfio-mdev/mbochs.ko
		[ $impl = rust ] && ko=$(rust_ko mbochs)
		for type in $(tier_types "$TIER" mbochs); do
			case $type in mbochs-small) pool=16 ;; mbochs-medium) pool=64 ;; *) pool=256 ;; esac
			mbochs_suite $impl "$ko" $type $pool
		done
	done
	mbochs_mem_alias
	mbochs_cascade_guard
}
