# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile-guest phase, sourced by guest-run.sh inside the test VM (uses its
# OUT, KDIR, TOP, NESTED_TIMEOUT, log, result, qmp). MODE test only.
#
# One nested guest with an mdpy-xga and an mbochs-medium of the Rust
# modules, no guest driver on them. Its init (nested/init-hostile) runs
# nested/hostile.c: random values into every config-space byte and every
# register (and the framebuffer/VRAM), HOSTILE_OPS (default 50000) random
# operations after a sweep of every byte, seeded (HOSTILE_SEED replays),
# then a valid 640x480 mode on mbochs. Meanwhile, on this side,
# hostile-plane-check borrows QEMU's device fds and keeps querying both
# devices' planes (and exporting and reading mbochs' dma-bufs), checking
# every answer against the device's limits. Result lines ("hostile-guest:"):
# the guest's run completed and QEMU still runs; the planes stayed within
# their limits and mbochs shows the guest's last mode; no kernel splat in
# the phase; the mdevs are removable and both modules unload.

# The host's HOSTILE_* settings (run-vm.sh writes them with FUZZ_*).
# shellcheck disable=SC1091
[ -r "$OUT/fuzz-env" ] && . "$OUT/fuzz-env"
HOSTILE_MDPY_TYPE=mdpy-xga
HOSTILE_MBOCHS_TYPE=mbochs-medium
HOSTILE_FINAL=640x480	# the mode nested/hostile.c sets last

# HOSTILE_IMPL=c (by hand, not in make check-full) runs the same against the C
# samples: their lines are findings, neither passed nor failed.
HOSTILE_IMPL=${HOSTILE_IMPL:-rust}
hostile_result() { # ok|"not ok" TEXT
	if [ "$HOSTILE_IMPL" = c ]; then
		result "finding - hostile-guest c: ($1) $2"
	else
		result "$1 - hostile-guest: $2"
	fi
}

hostile_create() { # DRIVER TYPE: prints the new mdev's uuid
	local uuid
	uuid=$(cat /proc/sys/kernel/random/uuid)
	echo "$uuid" > "/sys/class/mdev_bus/$1/mdev_supported_types/$2/create" && echo "$uuid"
}

hostile_run() {
	local serial=$OUT/hostile-guest-serial.log qlog=$OUT/hostile-guest-qemu.log
	local sock=/tmp/qmp-hostile.sock stop=/tmp/hostile-stop check=$OUT/hostile-guest-planes.txt
	local seed=${HOSTILE_SEED:-$(printf '0x%x' "$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ))")}
	local ops=${HOSTILE_OPS:-50000} mdpy="" mbochs="" qpid cpid t=0 limit dmesg0 uuid counters
	local crc status=running

	dmesg0=$(dmesg | wc -l)
	local mdpy_ko=$TOP/mdpy/mdpy.ko mbochs_ko=$TOP/mbochs/mbochs.ko
	[ "$HOSTILE_IMPL" = c ] && mdpy_ko=$KDIR/samples/vfio-mdev/mdpy.ko mbochs_ko=$KDIR/samples/vfio-mdev/mbochs.ko
	if ! insmod "$mdpy_ko" || ! insmod "$mbochs_ko"; then
		hostile_result "not ok" "insmod $mdpy_ko and $mbochs_ko"; rmmod mdpy 2>/dev/null; return
	fi
	mdpy=$(hostile_create mdpy "$HOSTILE_MDPY_TYPE") && mbochs=$(hostile_create mbochs "$HOSTILE_MBOCHS_TYPE") ||
		{ hostile_result "not ok" "creating $HOSTILE_MDPY_TYPE and $HOSTILE_MBOCHS_TYPE"; }
	log "hostile guest: $HOSTILE_MDPY_TYPE and $HOSTILE_MBOCHS_TYPE ($HOSTILE_IMPL), $ops random operations, seed $seed"
	rm -f "$stop" "$sock"
	if [ -n "$mdpy" ] && [ -n "$mbochs" ]; then
		(
			ulimit -c 0
			exec qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config -display none \
				-kernel "$OUT/nested-bzImage" -initrd "$TOP/out/guest-image/initramfs.cpio.gz" \
				-append "mdevrs.role=hostile console=ttyS0 panic=-1 loglevel=4 nomodeset mdevrs.seed=$seed mdevrs.ops=$ops" \
				-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$mdpy,display=off" \
				-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$mbochs,display=off" \
				-serial "file:$serial" -qmp "unix:$sock,server=on,wait=off"
		) > "$qlog" 2>&1 &
		qpid=$!
		# The checker starts once QEMU holds both devices (before the guest boots).
		while [ $t -lt 60 ] && [ "$(ls -l "/proc/$qpid/fd" 2>/dev/null | grep -cE 'vfio-device|/dev/vfio/devices/')" -lt 2 ]; do
			sleep 1; t=$((t + 1))
		done
		# shellcheck disable=SC2046
		"$TOP/out/hostile-plane-check" "$qpid" "$stop" "$HOSTILE_FINAL" $([ "$HOSTILE_IMPL" = c ] && echo --c-sample) \
			> "$check" 2>&1 &
		cpid=$!
		# A sweep of both devices, then the operations: about 2 ms each under TCG in TCG.
		limit=$((NESTED_TIMEOUT + ops / 100)) t=0
		while [ $t -lt $limit ] && ! grep -q NESTED-DONE "$serial" 2>/dev/null && kill -0 "$qpid" 2>/dev/null; do
			sleep 2; t=$((t + 2))
			[ $((t % 60)) -eq 0 ] && log "  ... ${t}s: $(tr -d '\r' < "$serial" 2>/dev/null | grep '^HOSTILE' | tail -1)"
		done
		touch "$stop"
		wait "$cpid"; crc=$?
		# "mdpy: config writes N, ..." of each device, as the guest printed them.
		counters=$(tr -d '\r' < "$serial" | sed -n 's|^HOSTILE /sys/bus/pci/devices/[^ ]* \(.*config writes.*\)|\1|p' | tr '\n' ' ')
		if grep -q NESTED-HOSTILE-DONE "$serial"; then
			hostile_result ok "the nested guest wrote random values into every config-space byte and register of $HOSTILE_MDPY_TYPE and $HOSTILE_MBOCHS_TYPE, then $ops random operations (seed $seed, ${t}s): $counters"
		else
			hostile_result "not ok" "the nested guest did not finish its $ops operations (seed $seed) in ${t}s: $(tr -d '\r' < "$serial" | grep -E '^(NESTED-FAIL|HOSTILE)' | tail -2 | tr '\n' ' ') (see $(basename "$serial"))"
		fi
		if [ "$crc" = 0 ]; then
			hostile_result ok "QUERY_GFX_PLANE within the devices' limits throughout, mbochs then shows the guest's $HOSTILE_FINAL: $(tail -1 "$check")"
		else
			hostile_result "not ok" "plane checks: $(grep -m3 '^FAIL' "$check" | tr '\n' ' ') $(tail -1 "$check") (see $(basename "$check"))"
		fi
		if kill -0 "$qpid" 2>/dev/null; then
			qmp "$sock" '{"execute":"quit"}' > /dev/null 2>&1
			t=0; while kill -0 "$qpid" 2>/dev/null && [ $t -lt 20 ]; do sleep 1; t=$((t + 1)); done
			kill "$qpid" 2>/dev/null
			wait "$qpid" 2>/dev/null
		else
			wait "$qpid"; status="exited with status $?"
		fi
		[ "$status" = running ] ||
			hostile_result "not ok" "QEMU $status before the end: $(tail -3 "$qlog" | tr '\n' ' ')"
		tr -d '\r' < "$serial" | grep '^NESTED-GUEST-LOG' | head -3 | while read -r line; do
			log "  guest kernel log: ${line#NESTED-GUEST-LOG }"
		done
	fi
	for uuid in $mdpy $mbochs; do
		mdev_remove "$uuid" || hostile_result "not ok" "remove mdev $uuid"
	done
	if rmmod mbochs && rmmod mdpy; then
		hostile_result ok "the mdevs are removed and both modules unload"
	else
		hostile_result "not ok" "a module does not unload: $(grep -E '^(mdpy|mbochs) ' /proc/modules | tr '\n' ' ')"
		rmmod mbochs 2>/dev/null; rmmod mdpy 2>/dev/null
	fi
	dmesg | tail -n +"$((dmesg0 + 1))" > "$OUT/hostile-guest-dmesg.txt"
	# The splat patterns of the whole run's check, on the phase's log.
	if ! "$TOP/tools/testing/vm/splat-check.sh" "$OUT/hostile-guest-dmesg.txt" > "$OUT/hostile-guest-splats.txt"; then
		hostile_result "not ok" "kernel splat: $(sed -n '2s/^ *[0-9]*:\[[^]]*\] //p' "$OUT/hostile-guest-splats.txt" | cut -c1-160) (see hostile-guest-splats.txt)"
	else
		hostile_result ok "no kernel splat during the phase ($(wc -l < "$OUT/hostile-guest-dmesg.txt") kernel log lines)"
	fi
}

hostile_phase() {
	[ "$1" = test ] && hostile_run
}
