# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mbochs (dma-buf display), sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, log, result).
#
# MODE=test: the mbochs kselftest against the C sample and the Rust module,
# TAP in OUT/tap-mbochs-IMPL-TYPE.txt (judged on the host by tap-verdict.sh).
#
# The C sample's kmemleak reports (it leaks by design) are set aside by
# mbochs-c-kmemleak.sh, only those.

MBOCHS_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mbochs_test
MBOCHS_POOL=64	# MB: four mbochs-medium devices
. "$TOP/tools/testing/vm/mbochs-c-kmemleak.sh"

# One kselftest run: IMPL KO TYPE
mbochs_suite() {
	local impl=$1 ko=$2 type=$3 name=tap-mbochs-$1-$3
	local tap=$OUT/$name.txt
	echo "$name" >> "$OUT/expected-taps.txt"
	log "kselftest: $impl mbochs ($ko), type $type, pool ${MBOCHS_POOL} MB"
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
	if ! insmod "$ko" count="$MBOCHS_POOL"; then
		printf 'TAP version 13\n1..1\nnot ok 1 mbochs.%s.insmod # insmod %s failed\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	[ "$impl" = c ] && mbochs_c_begin mbochs_test
	MDEV_IMPL=$impl MBOCHS_TYPE=$type MBOCHS_COUNT=$MBOCHS_POOL timeout 600 \
		"$MBOCHS_TEST_BIN" > "$tap" 2>&1
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')"
	[ "$impl" = c ] && mbochs_c_end
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
	mbochs_suite c "$KDIR/samples/vfio-mdev/mbochs.ko" mbochs-medium
	mbochs_suite rust "$TOP/mbochs/mbochs.ko" mbochs-medium
	mbochs_mem_alias
}
