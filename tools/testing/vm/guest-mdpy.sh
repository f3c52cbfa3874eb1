# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mdpy (region display), sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, TIER, log, result, kselftest,
# only_tests), and by debian-guest.sh in Debian's kernel (MDEV_RS_IMPLS=rust:
# Debian builds no C sample; rust_ko: the installed modules).
#
# MODE=test: the mdpy kselftest against the C sample and the Rust module on
# the tier's types (tiers.sh), TAP in OUT/tap-mdpy-IMPL-TYPE.txt (judged on
# the host by tap-verdict.sh). End to end through mdpy: guest-mdpy-fb.sh.

MDPY_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mdpy_test

# mdpy-xga runs every test; the other types the tests that depend on the
# type (its size, the count it was loaded with): the rest cannot differ.
MDPY_FULL_TYPE=mdpy-xga
MDPY_TYPE_TESTS="region_info_bar0_and_display config_identity config_bar0_sizing
	defect_1_bar0_rw_offsets_and_sizes bar0_initial_gradient bar0_bad_accesses
	mmap_coherent_at_offset_zero defect_1_mmap_coherent_everywhere mmap_bad
	query_gfx_plane reset_restores_gradient sysfs_device sysfs_count_limit
	sysfs_module_param_count"

# mdpy kselftest of one implementation: IMPL KO TYPE COUNT
mdpy_suite() {
	local impl=$1 ko=$2 type=$3 count=$4 tap="$OUT/tap-mdpy-$1-$3.txt" only=""
	echo "tap-mdpy-$impl-$type" >> "$OUT/expected-taps.txt"
	log "kselftest: $impl mdpy ($ko), type $type, count=$count"
	if ! insmod "$ko" count="$count"; then
		printf 'TAP version 13\n1..1\nnot ok 1 mdpy.%s.insmod # insmod %s failed\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	# shellcheck disable=SC2086
	[ "$type" = $MDPY_FULL_TYPE ] || only=$(only_tests "$MDPY_TEST_BIN" "$OUT/notrun-mdpy-$impl-$type.txt" \
		"type-independent, run on $MDPY_FULL_TYPE" $MDPY_TYPE_TESTS)
	# shellcheck disable=SC2086
	MDEV_IMPL=$impl MDPY_TYPE=$type MDPY_COUNT=$count kselftest "$tap" 900 "$MDPY_TEST_BIN" $only
	rmmod mdpy || result "not ok - rmmod mdpy ($impl)"
}

mdpy_phase() {
	[ "$1" = test ] || return 0
	local impl ko type count
	for impl in ${MDEV_RS_IMPLS:-c rust}; do
		ko=$KDIR/samples/vfio-mdev/mdpy.ko
		[ $impl = rust ] && ko=$(rust_ko mdpy)
		for type in $(tier_types "$TIER" mdpy); do
			count=4; [ $type = mdpy-hd ] && count=3
			mdpy_suite $impl "$ko" $type $count
		done
	done
}
