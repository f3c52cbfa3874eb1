# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Test phase of VFIO live migration (migration v2) of mdpy and mbochs,
# sourced by guest-run.sh inside the test VM (uses its OUT, KDIR, TOP, log,
# result, kselftest).
#
# MODE=test: the migration kselftest on every type of both drivers, against
# the C samples and the Rust modules, TAP in OUT/tap-migration-IMPL-TYPE.txt
# (judged on the host by tap-verdict.sh). The C samples have no migration:
# there every test SKIPs with that reason, which the summary shows as "not
# run", never as passed.

MIGRATION_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/migration_test
. "$TOP/tools/testing/vm/mbochs-c-kmemleak.sh"

# One run: IMPL DRIVER TYPE KO MODULE-ARGS
migration_suite() {
	local impl=$1 driver=$2 type=$3 ko=$4 args=$5 name=tap-migration-$1-$3
	local tap=$OUT/$name.txt
	echo "$name" >> "$OUT/expected-taps.txt"
	log "kselftest: migration, $impl $driver ($ko), type $type"
	if [ ! -x "$MIGRATION_TEST_BIN" ]; then
		printf 'TAP version 13\n1..1\nnot ok 1 migration.%s.test_built # %s does not exist\n' \
			"$impl" "$MIGRATION_TEST_BIN" > "$tap"
		return
	fi
	# shellcheck disable=SC2086
	if ! insmod "$ko" $args; then
		printf 'TAP version 13\n1..1\nnot ok 1 migration.%s.insmod # insmod %s failed\n' \
			"$impl" "$ko" > "$tap"
		return
	fi
	[ "$impl$driver" = cmbochs ] && mbochs_c_begin migration_test
	MDEV_IMPL=$impl MIG_DRIVER=$driver MIG_TYPE=$type kselftest "$tap" 900 "$MIGRATION_TEST_BIN"
	[ "$impl$driver" = cmbochs ] && mbochs_c_end
	rmmod "$driver" || result "not ok - rmmod $driver ($impl, migration)"
}

migration_phase() {
	[ "$1" = test ] || return 0
	local impl ko type
	for impl in c rust; do
		ko=$KDIR/samples/vfio-mdev/mdpy.ko
		[ $impl = rust ] && ko=$TOP/mdpy/mdpy.ko
		# Three devices at most at a time (two of the type, one of another).
		for type in mdpy-vga mdpy-xga mdpy-hd; do
			migration_suite $impl mdpy $type "$ko" "count=4"
		done
		ko=$KDIR/samples/vfio-mdev/mbochs.ko
		[ $impl = rust ] && ko=$TOP/mbochs/mbochs.ko
		# Two devices of the type and one small or medium one.
		for type in mbochs-small mbochs-medium mbochs-large; do
			migration_suite $impl mbochs $type "$ko" "count=160"
		done
	done
}
