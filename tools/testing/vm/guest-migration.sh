# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Test phase of VFIO live migration (migration v2) of mdpy and mbochs,
# sourced by guest-run.sh inside the test VM (uses its OUT, KDIR, TOP, log,
# result, kselftest).
#
# MODE=test: the migration kselftest on the tier's types (tiers.sh) of both
# Rust modules, and (check-full) on one type of each C sample, TAP in OUT/tap-migration-IMPL-TYPE.txt
# (judged on the host by tap-verdict.sh). The C samples have no migration:
# there every test SKIPs with that reason, which the summary shows as "not
# run", never as passed. Then a QEMU smoke test per driver (see
# migration_qemu_smoke).

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
	local type
	# The C samples have no migration: the suite's probe of the MIGRATION
	# feature fails the same way on every type, so one type per driver
	# shows it (each of its tests SKIPs, "not run" in the summary).
	if [ "$TIER" = full ]; then
		migration_suite c mdpy mdpy-xga "$KDIR/samples/vfio-mdev/mdpy.ko" "count=4"
		migration_suite c mbochs mbochs-medium "$KDIR/samples/vfio-mdev/mbochs.ko" "count=160"
	fi
	# Three devices at most at a time (two of the type, one of another).
	for type in $(tier_types "$TIER" mdpy); do
		migration_suite rust mdpy $type "$TOP/mdpy/mdpy.ko" "count=4"
	done
	# Two devices of the type and one small or medium one.
	for type in $(tier_types "$TIER" mbochs); do
		migration_suite rust mbochs $type "$TOP/mbochs/mbochs.ko" "count=160"
	done
	[ "$TIER" = full ] || return 0
	insmod "$TOP/mdpy/mdpy.ko" count=4 && { migration_qemu_smoke mdpy mdpy-xga; rmmod mdpy; }
	insmod "$TOP/mbochs/mbochs.ko" count=64 && { migration_qemu_smoke mbochs mbochs-medium; rmmod mbochs; }
}

# QEMU smoke test (the end-to-end test of a running guest is in the mdpy-fb
# and mbochs end-to-end phases): a paused
# VM without a guest, its vfio-pci device on a Rust mdev, migrates through a
# unix socket to a second QEMU (-incoming) on a second mdev of the type; the
# migration completes with the default enable-migration=auto, the destination
# runs, and for mdpy the two screendumps are identical. (A paused VM of zero
# pages gives QEMU no bandwidth estimate: nested_migrate tells it the
# socket's, avail-switchover-bandwidth; otherwise it would never switch over.)
# usage: migration_qemu_smoke DRIVER TYPE
migration_qemu_smoke() {
	local drv=$1 type=$2 u1 u2 disp="" dir=/tmp/mig-qemu st i name="rust $2: QEMU migration of a paused VM"
	local common=(-M q35 -m 64 -nodefaults -display none -S)
	mkdir -p $dir; rm -f $dir/*
	u1=$(cat /proc/sys/kernel/random/uuid); u2=$(cat /proc/sys/kernel/random/uuid)
	echo "$u1" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" &&
		echo "$u2" > "/sys/class/mdev_bus/$drv/mdev_supported_types/$type/create" ||
		{ result "not ok - $name: creating two mdevs failed"; return; }
	[ "$drv" = mdpy ] && disp=",display=on"
	qemu-system-x86_64 "${common[@]}" -device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$u1$disp,id=gpu0" \
		-qmp unix:$dir/src.sock,server=on,wait=off -daemonize -pidfile $dir/src.pid 2> "$OUT/qemu-mig-src-$type.err"
	qemu-system-x86_64 "${common[@]}" -device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$u2$disp,id=gpu0" \
		-qmp unix:$dir/dst.sock,server=on,wait=off -incoming unix:$dir/mig.sock \
		-daemonize -pidfile $dir/dst.pid 2> "$OUT/qemu-mig-dst-$type.err"
	if [ -S $dir/src.sock ] && [ -S $dir/dst.sock ]; then
		[ "$drv" = mdpy ] && qmp $dir/src.sock \
			'{"execute":"screendump","arguments":{"filename":"'$dir/src.ppm'","device":"gpu0"}}' > /dev/null
		st=$(nested_migrate $dir/src.sock $dir/dst.sock unix:$dir/mig.sock 120)
		log "  $type: $st"
		case $st in
		*'"completed"'*)
			qmp $dir/dst.sock '{"execute":"cont"}' > /dev/null
			sleep 1
			if qmp $dir/dst.sock '{"execute":"query-status"}' | grep -q '"running": true'; then
				result "ok - $name: completed ($(echo "$st" | grep -o '"vfio": {[^}]*}')), the destination runs"
			else
				result "not ok - $name: completed, but the destination does not run"
			fi
			if [ "$drv" = mdpy ]; then
				qmp $dir/dst.sock \
					'{"execute":"screendump","arguments":{"filename":"'$dir/dst.ppm'","device":"gpu0"}}' > /dev/null
				if [ -s $dir/src.ppm ] && cmp -s $dir/src.ppm $dir/dst.ppm; then
					result "ok - $name: the destination's screendump is the source's"
				else
					result "not ok - $name: the destination's screendump differs from the source's (or is missing)"
				fi
			fi ;;
		*) result "not ok - $name: did not complete: $st" ;;
		esac
	else
		result "not ok - $name: QEMU did not start (see qemu-mig-*-$type.err)"
	fi
	kill "$(cat $dir/src.pid 2>/dev/null)" "$(cat $dir/dst.pid 2>/dev/null)" 2>/dev/null
	for i in $(seq 30); do
		kill -0 "$(cat $dir/src.pid 2>/dev/null)" 2>/dev/null || kill -0 "$(cat $dir/dst.pid 2>/dev/null)" 2>/dev/null || break
		sleep 1
	done
	mdev_remove "$u1"; mdev_remove "$u2"
}
