# SPDX-License-Identifier: GPL-2.0
#
# Test phase of the guest driver mdpy-fb, sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, log, result, qmp).
#
# - KUnit: loading the Rust mdpy-fb.ko here runs its mode-validation suite.
# - Nested guests: for each host driver (C, Rust mdpy) x guest driver (C, Rust
#   mdpy-fb) but C with C, one nested guest with three mdpy devices (vga,
#   xga, hd) runs nested/init-mdpy-fb. The one of both Rust drivers is
#   live-migrated once its pattern is drawn (mdpy_fb_migrate). Its screens are dumped at each step into
#   OUT/checks/NAME.ppm with NAME.want saying what they must show; the
#   pixels are compared on the host after the VM (post-checks.sh), where
#   Python is not emulated.

MDPY_FB_TYPES="mdpy-vga mdpy-xga mdpy-hd"
# What nested/init-mdpy-fb writes on the framebuffer console.
MDPY_FB_TEXT="MDEV-RS fbcon on mdpy-fb 0123456789"
# PCI slot of each type's device in the nested guest, and its mode.
mdpy_fb_slot() { case $1 in mdpy-vga) echo 4 ;; mdpy-xga) echo 5 ;; mdpy-hd) echo 6 ;; esac; }
mdpy_fb_mode() { case $1 in mdpy-vga) echo 640,480 ;; mdpy-xga) echo 1024,768 ;; mdpy-hd) echo 1920,1080 ;; esac; }

mdpy_fb_kunit() {
	local ko=$TOP/mdpy-fb/mdpy-fb.ko marker n
	log "KUnit: mdpy-fb mode validation (runs when the module loads)"
	# A marker in the log, not a line count: the ring buffer may have wrapped.
	marker="mdev-rs: mdpy-fb KUnit start $$.$RANDOM"
	echo "$marker" > /dev/kmsg
	if ! insmod "$ko"; then result "not ok - kunit mdpy_fb_mode: insmod $ko"; return; fi
	dmesg | sed -n "/$marker/,\$p" > "$OUT/kunit-mdpy-fb.txt"
	rmmod mdpy_fb || result "not ok - kunit: rmmod mdpy_fb"
	# KTAP: the cases are indented "ok N name" lines, then the suite's own.
	n=0
	while read -r status name; do
		n=$((n + 1))
		if [ "$status" = ok ]; then result "ok - kunit mdpy_fb_mode.$name"
		else result "not ok - kunit mdpy_fb_mode.$name"; fi
	done < <(sed -nE 's/^\[[ .0-9]*\] {5}(not ok|ok) [0-9]+ ([a-z_0-9]+)$/\1 \2/p' "$OUT/kunit-mdpy-fb.txt" |
		sed 's/^not ok/not_ok/')
	[ "$n" -ge 8 ] || result "not ok - kunit mdpy_fb_mode: only $n test cases reported (see kunit-mdpy-fb.txt)"
	grep -Eq '^\[[ .0-9]*\] ok [0-9]+ mdpy_fb_mode$' "$OUT/kunit-mdpy-fb.txt" ||
		result "not ok - kunit mdpy_fb_mode: suite did not pass"
}

# Sends the nested guest its go-ahead on its ttyS1.
mdpy_fb_ctl() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"go\n"); s.close()' "$1"
}

# Waits until the serial log has LINE (a fixed string); fails on NESTED-DONE
# or QEMU's exit.
mdpy_fb_wait() { # SERIAL PIDFILE LINE TIMEOUT
	local t=0
	while [ $t -lt "$4" ]; do
		grep -qF "$3" "$1" 2>/dev/null && return 0
		[ "$3" != NESTED-DONE ] && grep -q NESTED-DONE "$1" 2>/dev/null && return 1
		kill -0 "$(cat "$2" 2>/dev/null)" 2>/dev/null || return 1
		sleep 2; t=$((t + 2))
		[ $((t % 60)) -eq 0 ] && log "  ... waiting for '$3' (${t}s)"
	done
	return 1
}

# Screendumps device gpu-TYPE into OUT/checks/NAME.ppm, to be compared with WANT.
mdpy_fb_dump() { # SOCK NAME WANT TYPE
	mkdir -p "$OUT/checks"
	if qmp "$1" "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$OUT/checks/$2.ppm\",\"device\":\"gpu-$4\"}}" >/dev/null; then
		echo "$3" > "$OUT/checks/$2.want"
	else
		result "not ok - $2: screendump failed"
	fi
}

# The -device options of one nested guest's mdpy devices: UUIDS are the
# mdevs, in the order of TYPES (each type's PCI slot stays its own, whatever
# mdev is put there).
mdpy_fb_devs() { # "UUIDS" "TYPES"
	local uuids=($1) types=($2) i
	for i in "${!types[@]}"; do
		printf ' -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=on,id=gpu-%s,addr=0x%s.0' \
			"${uuids[$i]}" "${types[$i]}" "$(mdpy_fb_slot "${types[$i]}")"
	done
}

# Starts a nested guest's QEMU (daemonized). usage: mdpy_fb_qemu GUEST DEVS
# SERIAL CTL SOCK PIDFILE [INCOMING_URI]
mdpy_fb_qemu() {
	local incoming=()
	[ -n "${7:-}" ] && incoming=(-incoming "$7")
	rm -f "$4" "$5" "$3"
	# shellcheck disable=SC2086
	qemu-system-x86_64 -M q35 -m 256 -nodefaults -no-user-config -display none \
		-kernel "$OUT/nested-bzImage" -initrd "$TOP/out/guest-image/initramfs.cpio.gz" \
		-append "mdevrs.role=mdpy-fb console=ttyS0 vt.global_cursor_default=0 consoleblank=0 panic=-1 loglevel=4 mdevrs.guest=$1 mdevrs.nfb=3 mdevrs.redraw=${MDPY_FB_REDRAW:-0}" \
		$2 -serial "file:$3" -trace 'enable=vfio_save_*' -D "${6%.pid}-qemu.log" \
		-chardev "socket,id=ctl,path=$4,server=on,wait=off" -device isa-serial,chardev=ctl \
		-qmp "unix:$5,server=on,wait=off" -pidfile "$6" -daemonize "${incoming[@]}"
}

# Stops the QEMU of SOCK and PIDFILE.
mdpy_fb_quit() { # SOCK PIDFILE
	qmp "$1" '{"execute":"quit"}' >/dev/null 2>&1
	sleep 1
	kill "$(cat "$2" 2>/dev/null)" 2>/dev/null
}

# The guest being live-migrated redraws the whole of its screens until
# pre-copy has sent more than this many times its framebuffers (in
# quarters: 10 = 2.5x): the initial data and more than one full state of
# re-sends (before commit 96e1583, pre-copy stopped re-sending after one
# state's worth, at about 2x).
MDPY_FB_RESEND_QUARTERS=10
# Seconds the guest may redraw for without pre-copy getting there (measured:
# it gets there in under 10 s): the test then fails, the guest too slow or
# pre-copy not sending again what the guest redraws.
MDPY_FB_REDRAW_LIMIT=120

# The framebuffers' total bytes of TYPES, from the types' descriptions.
mdpy_fb_bytes() { # "TYPES"
	local type fbs=0
	for type in $1; do
		fbs=$((fbs + $(sed -n 's/.*, \([0-9]*\)x\([0-9]*\) framebuffer/\1 \2/p' \
			"/sys/class/mdev_bus/mdpy/mdev_supported_types/$type/description" |
			{ read -r w h; echo $((w * h * 4)); })))
	done
	echo "$fbs"
}

# Watches the live migration from its source (QMP SOCK) while the guest
# redraws (nested_migrate_watch_vfio, its answers in PROGRESS) and once the
# device state sent passes WANT bytes, or after MDPY_FB_REDRAW_LIMIT
# seconds, tells the guest to stop (a line on its ttyS1, CTL). Writes the
# watch's verdict into VERDICT ("reached|short SECONDS BYTES", "ended STATUS
# SECONDS BYTES": then the guest was not told).
mdpy_fb_watch() { # SOCK CTL WANT PROGRESS VERDICT
	local v what secs bytes
	v=$(nested_migrate_watch_vfio "$1" "$3" "$MDPY_FB_REDRAW_LIMIT" "$4")
	echo "${v:-none}" > "$5"
	read -r what secs bytes <<< "$v"
	case $what in
	reached|short)
		log "  $secs s into the migration: $bytes bytes of device state sent ($([ "$what" = short ] && echo "not ")more than $3); the guest stops redrawing"
		mdpy_fb_ctl "$2" ;;
	*) log "  migration watch: ${v:-no answer}" ;;
	esac
}

# Waits up to TIMEOUT seconds for the fixed string LINE in the concatenation
# of FILES (a migrated guest's console: the source's, then the destination's).
mdpy_fb_wait_any() { # "FILES" LINE TIMEOUT
	local t=0
	# shellcheck disable=SC2086
	while ! cat $1 2>/dev/null | tr -d '\r' | grep -qF "$2"; do
		[ $t -ge "$3" ] && return 1
		sleep 2; t=$((t + 2))
	done
}

# The result line of the redrawing guest's pre-copy, from the VERDICT of
# mdpy_fb_watch and the guest's console (SERIALS: the source's, then the
# destination's). usage: mdpy_fb_redraw_result NAME VERDICT "SERIALS" FBS WANT QEMU_LOG
mdpy_fb_redraw_result() {
	local name=$1 v what secs bytes pre redrawn
	v=$(cat "$2" 2>/dev/null)
	read -r what secs bytes <<< "$v"
	# shellcheck disable=SC2086
	redrawn=$(cat $3 | tr -d '\r' | sed -n 's/^NESTED-REDRAWN //p' | paste -sd, - | sed 's/,/, /g')
	case $what in
	reached)
		if pre=$(qemu_precopy_bytes "$6") && [ "$pre" -gt "$5" ]; then
			result "ok - $name: pre-copy went on while the guest redrew its whole screens: $pre bytes of device state for $4 bytes of framebuffers ($(awk "BEGIN { printf \"%.2f\", $pre / $4 }")x; the guest was told to stop ${secs} s into the migration, at $bytes bytes, having redrawn ${redrawn:-nothing}), then the migration converged"
		else
			result "not ok - $name: pre-copy sent '${pre:-?}' bytes of device state by QEMU's trace, want more than $5 (query-migrate said $bytes; see $name-qemu-trace.log)"
		fi ;;
	short)
		result "not ok - $name: in ${secs} s of pre-copy with the guest redrawing its whole screens, only $bytes bytes of device state sent, want more than $5 ($MDPY_FB_RESEND_QUARTERS/4 of the $4 bytes of framebuffers): the guest redrew too slowly (${redrawn:-no NESTED-REDRAWN line}), or pre-copy stopped sending what it redrew" ;;
	ended)
		result "not ok - $name: the migration ended ($secs) with $bytes bytes of device state sent, less than $5, the guest still redrawing" ;;
	*)
		result "not ok - $name: no answer from the migration's watch ('$v'; see $name-migration-progress.txt)" ;;
	esac
}

# Live migration of the running nested guest (Rust host driver), after its
# pattern is drawn: first to a QEMU whose vga and xga slots hold mdevs of
# the other type, which must refuse the stream while the source keeps
# running with its screens intact; then to a QEMU on mdevs of the right
# types, while the guest redraws the whole of its three screens (the
# pattern's own pixels) until pre-copy has sent more than 2.5x the
# framebuffers (mdpy_fb_watch); the migration must then converge, and the
# destination's screens show the pattern. The guest then goes on, on the
# destination (it draws the console text and, reloaded, the pattern again).
# The source's guest is waiting at step "drawn" (CTL answers it, SERIAL is
# its console). Sets MIG_SOCK MIG_CTL MIG_SERIAL MIG_PIDF to the
# destination's, or leaves them empty if the migration failed.
mdpy_fb_migrate() { # NAME SOCK PIDFILE "DST_UUIDS" CTL SERIAL
	local name=$1 sock=$2 pidf=$3 dst=$4 ctl=$5 serial=$6 dir=/tmp/mig-$1 type swapped
	local vga xga hd fbs want wpid sc t0
	read -r vga xga hd <<< "$dst"
	MIG_SOCK="" MIG_CTL="" MIG_SERIAL="" MIG_PIDF=""
	mkdir -p "$dir"
	# Refused: the destination's vga slot is an xga mdev and the other way round.
	log "  migration to mdevs of other types (must be refused)"
	swapped=$(mdpy_fb_devs "$xga $vga $hd" "$MDPY_FB_TYPES")
	mdpy_fb_qemu rust "$swapped" "$dir/refused-serial.log" "$dir/refused-ctl.sock" "$dir/refused.sock" \
		"$dir/refused.pid" "unix:$dir/refused-mig.sock" 2> "$OUT/$name-mig-refused-dst.err" ||
		result "not ok - $name: the refusing destination's QEMU did not start"
	if nested_migrate_refused "$name" "mdevs of other types" "$sock" "$dir/refused.sock" \
		"unix:$dir/refused-mig.sock"; then
		dmesg | grep -E 'mdpy.*(migration|stream)' | tail -3 > "$OUT/$name-mig-refused-dmesg.txt"
		for type in $MDPY_FB_TYPES; do
			mdpy_fb_dump "$sock" "$name-refused-$type" pattern "$type"
		done
	fi
	mdpy_fb_quit "$dir/refused.sock" "$dir/refused.pid"

	fbs=$(mdpy_fb_bytes "$MDPY_FB_TYPES")
	want=$((fbs * MDPY_FB_RESEND_QUARTERS / 4))
	log "  live migration to mdevs of the same types, the guest redrawing its whole screens until pre-copy has sent $want bytes"
	MIG_SERIAL=$OUT/$name-migrated-serial.log
	mdpy_fb_qemu rust "$(mdpy_fb_devs "$dst" "$MDPY_FB_TYPES")" "$MIG_SERIAL" "$dir/dst-ctl.sock" "$dir/dst.sock" \
		"$dir/dst.pid" "unix:$dir/mig.sock" 2> "$OUT/$name-mig-dst.err" ||
		result "not ok - $name: the destination's QEMU did not start"
	# The go-ahead after "drawn": the guest starts redrawing.
	mdpy_fb_ctl "$ctl"
	if ! mdpy_fb_wait "$serial" "$pidf" "NESTED-WAIT redrawing" 120; then
		result "not ok - $name: the guest did not start redrawing (see $(basename "$serial"))"
		mdpy_fb_quit "$dir/dst.sock" "$dir/dst.pid"
		MIG_SERIAL=""
		return
	fi
	rm -f "$dir/verdict" "$OUT/$name-migration-progress.txt"
	mdpy_fb_watch "$sock" "$ctl" "$want" "$OUT/$name-migration-progress.txt" "$dir/verdict" &
	wpid=$!
	t0=$SECONDS
	# A switchover threshold of 3.2 MB (32 MB/s x 100 ms): more than the
	# registers and what is left once the guest stops, less than the 12.7
	# MB of framebuffers. While the guest redraws, everything is changed
	# again faster than QEMU sends it (the guest writes about 150 MB/s under
	# nested TCG, QEMU sends about 10): QEMU cannot switch over and iterates
	# pre-copy. Once the guest stops, pre-copy sends what it redrew last and
	# the migration converges.
	if ! NESTED_MIG_PARAMS='{"avail-switchover-bandwidth":33554432,"downtime-limit":100}' \
		nested_migrate_live "$name" "$sock" "$dir/dst.sock" "unix:$dir/mig.sock" "$OUT/$name-migration.json"; then
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
		cp "${pidf%.pid}-qemu.log" "$OUT/$name-qemu-trace.log" 2>/dev/null
		mdpy_fb_redraw_result "$name" "$dir/verdict" "$serial" "$fbs" "$want" "${pidf%.pid}-qemu.log"
		mdpy_fb_quit "$dir/dst.sock" "$dir/dst.pid"
		MIG_SERIAL=""
		return
	fi
	wait "$wpid"
	log "  migration: $((SECONDS - t0)) s"
	# The guest's stop may have been printed on either side of the switchover.
	# If the watch did not tell it to stop, it still redraws: the
	# destination tells it.
	case $(cat "$dir/verdict" 2>/dev/null) in reached*|short*) ;; *) mdpy_fb_ctl "$dir/dst-ctl.sock" ;; esac
	mdpy_fb_wait_any "$serial $MIG_SERIAL" "NESTED-WAIT redrawn" 120 ||
		result "not ok - $name: the guest did not stop redrawing when told to (no NESTED-WAIT redrawn on its console)"
	for type in $MDPY_FB_TYPES; do
		mdpy_fb_dump "$dir/dst.sock" "$name-migrated-$type" pattern "$type"
	done
	cp "${pidf%.pid}-qemu.log" "$OUT/$name-qemu-trace.log" 2>/dev/null
	mdpy_fb_redraw_result "$name" "$dir/verdict" "$serial $MIG_SERIAL" "$fbs" "$want" "${pidf%.pid}-qemu.log"
	# Once the guest stopped, pre-copy sent what it had redrawn: stop-copy
	# (the downtime's data) holds the registers and what changed since, not
	# the framebuffers.
	if sc=$(qemu_stop_copy_bytes "${pidf%.pid}-qemu.log") && [ "$sc" -gt 0 ] && [ "$sc" -lt $((fbs / 8)) ]; then
		result "ok - $name: stop-copy after pre-copy sent $sc bytes for $fbs bytes of framebuffers, the guest having redrawn its whole screens until told to stop ($(nested_migrate_summary "$(cat "$OUT/$name-migration.json")"))"
	else
		result "not ok - $name: stop-copy after pre-copy sent '${sc:-?}' bytes, want under 1/8 of the $fbs bytes of framebuffers (see $name-qemu-trace.log)"
	fi
	mdpy_fb_quit "$sock" "$pidf"
	MIG_SOCK=$dir/dst.sock MIG_CTL=$dir/dst-ctl.sock MIG_PIDF=$dir/dst.pid
}

mdpy_fb_nested() { # HOST_IMPL GUEST_IMPL
	local host=$1 guest=$2 name="mdpy-fb-$1-host-$2-guest" ko type uuid uuids="" dst="" migrate=0 count=4
	local serial="$OUT/$name-serial.log" sock=/tmp/qmp-$name.sock ctl=/tmp/ctl-$name.sock pidf=/tmp/qemu-$name.pid
	local serials
	if [ "$host" = c ]; then ko=$KDIR/samples/vfio-mdev/mdpy.ko; else ko=$TOP/mdpy/mdpy.ko; fi
	# The Rust host with the Rust guest also migrates (three more mdevs).
	[ "$host$guest" = rustrust ] && [ "$MDPY_FB_MIGRATE" = 1 ] && migrate=1 count=6
	log "nested $name: three mdpy devices, guest driver $guest mdpy-fb$([ $migrate = 1 ] && echo ", live-migrated")"
	insmod "$ko" count=$count || { result "not ok - $name: insmod $ko"; return; }
	for type in $MDPY_FB_TYPES $([ $migrate = 1 ] && echo "$MDPY_FB_TYPES"); do
		uuid=$(cat /proc/sys/kernel/random/uuid)
		if ! echo "$uuid" > "/sys/class/mdev_bus/mdpy/mdev_supported_types/$type/create"; then
			result "not ok - $name: create $type"; continue
		fi
		if [ "$(echo $uuids | wc -w)" -lt 3 ]; then uuids="$uuids $uuid"; else dst="$dst $uuid"; fi
	done
	serials=$serial
	MDPY_FB_REDRAW=$migrate mdpy_fb_qemu "$guest" "$(mdpy_fb_devs "$uuids" "$MDPY_FB_TYPES")" "$serial" "$ctl" "$sock" "$pidf" ||
		result "not ok - $name: QEMU did not start"

	local steps="drawn:pattern fbcon:fbcon"
	[ "$guest" = rust ] && steps="$steps reloaded:pattern"
	local step want
	for step in $steps; do
		if [ "${step#*:}" = fbcon ]; then echo "$name-fbcon" >> "$OUT/expected-checks.txt"; continue; fi
		for type in $MDPY_FB_TYPES; do echo "$name-${step%%:*}-$type" >> "$OUT/expected-checks.txt"; done
	done
	[ $migrate = 1 ] && for type in $MDPY_FB_TYPES; do
		echo "$name-refused-$type $name-migrated-$type" | tr ' ' '\n' >> "$OUT/expected-checks.txt"
	done
	for step in $steps; do
		want=${step#*:} step=${step%%:*}
		if ! mdpy_fb_wait "$serial" "$pidf" "NESTED-WAIT $step" "$NESTED_TIMEOUT"; then
			result "not ok - $name: nested guest never reached step '$step' (see $(basename "$serial"))"
			break
		fi
		log "  step $step: screendumps"
		if [ "$want" = fbcon ]; then
			# The console is on fb0: find its device from the PCI slot.
			local addr slot
			addr=$(tr -d '\r' < "$serial" | sed -n 's/^NESTED-FBCON //p')
			slot=$((16#$(echo "$addr" | cut -d: -f3 | cut -d. -f1)))
			for type in $MDPY_FB_TYPES; do
				[ "$(mdpy_fb_slot "$type")" = "$slot" ] &&
					mdpy_fb_dump "$sock" "$name-fbcon" "fbcon $MDPY_FB_TEXT" "$type"
			done
		else
			for type in $MDPY_FB_TYPES; do
				mdpy_fb_dump "$sock" "$name-$step-$type" pattern "$type"
			done
		fi
		if [ $migrate = 1 ] && [ "$step" = drawn ]; then
			# The rest of the steps run on the destination.
			mdpy_fb_migrate "$name" "$sock" "$pidf" "$dst" "$ctl" "$serial"
			[ -n "$MIG_SOCK" ] || break
			sock=$MIG_SOCK ctl=$MIG_CTL serial=$MIG_SERIAL pidf=$MIG_PIDF
			serials="$serials $serial"
		fi
		mdpy_fb_ctl "$ctl"
	done
	mdpy_fb_wait "$serial" "$pidf" NESTED-DONE "$NESTED_TIMEOUT" ||
		result "not ok - $name: nested guest did not finish (see $(basename "$serial"))"

	# What the guest checked, and its framebuffers' sysfs against the types.
	# shellcheck disable=SC2086
	cat $serials | tr -d '\r' | sed -n 's/^NESTED-OK /ok - '"$name"': /p; s/^NESTED-FAIL /not ok - '"$name"': /p' \
		>> "$OUT/results.txt"
	local line fb addr vsize bpp stride fbname slot mode
	for type in $MDPY_FB_TYPES; do
		slot=$(printf '%02x' "$(mdpy_fb_slot "$type")") mode=$(mdpy_fb_mode "$type")
		# shellcheck disable=SC2086
		line=$(cat $serials | tr -d '\r' | grep "^NESTED-FB fb[0-9]* 0000:00:$slot.0 " | head -1)
		read -r _ fb addr vsize bpp stride fbname <<< "$line"
		if [ "$vsize" = "$mode" ] && [ "$bpp" = 32 ] && [ "$stride" = $((${mode%,*} * 4)) ] &&
		   [ "$fbname" = mdpy-fb ]; then
			result "ok - $name: $type is $fb: virtual_size $vsize, 32 bpp, stride $stride, name $fbname"
		else
			result "not ok - $name: $type sysfs: got '${line:-nothing}', want virtual_size $mode, 32 bpp, stride $((${mode%,*} * 4)), name mdpy-fb"
		fi
	done

	mdpy_fb_quit "$sock" "$pidf"
	for uuid in $uuids $dst; do
		mdev_remove "$uuid" || result "not ok - $name: remove mdev"
	done
	rmmod mdpy || result "not ok - $name: rmmod mdpy"
}

mdpy_fb_phase() {
	local combos combo
	if [ "$1" = test ]; then
		mdpy_fb_kunit
		# The nested guests are check-full's (tiers.sh).
		[ "$TIER" = full ] || return 0
		# Each of our drivers against the other's C sample, and both of ours
		# together (live-migrated too). C host with C guest would test no code
		# of ours: it is left out (a nested boot is minutes under TCG).
		combos="rust:rust rust:c c:rust"
		MDPY_FB_MIGRATE=1
	else
		combos="rust:rust"
		MDPY_FB_MIGRATE=0
	fi
	for combo in $combos; do
		mdpy_fb_nested "${combo%%:*}" "${combo#*:}"
	done
}
