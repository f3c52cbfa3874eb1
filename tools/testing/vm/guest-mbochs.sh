# SPDX-License-Identifier: GPL-2.0
#
# Test phase of mbochs (dma-buf display), sourced by guest-run.sh inside the
# test VM (uses its OUT, KDIR, TOP, log, result).
#
# MODE=test: the mbochs kselftest against the C sample and the Rust module,
# TAP in OUT/tap-mbochs-IMPL-TYPE.txt (judged on the host by tap-verdict.sh).
#
# The C sample leaks every dma-buf's page array (kcalloc'ed, never freed),
# which kmemleak reports; any kmemleak report fails the run. So:
#  - right after the C run (the module still loaded, so that backtraces name
#    it) kmemleak is scanned, its reports kept in OUT/kmemleak-mbochs-c.txt
#    and cleared; a report in that scan not from the C module is a failure;
#  - some of the C module's leaks escape that scan (stale pointers in reused
#    slab memory keep them "referenced" for a while). guest-run.sh calls
#    mbochs_kmemleak_filter on the final report: it moves to
#    kmemleak-mbochs-c.txt the reports allocated by the C run's mbochs_test
#    processes (by pid) through the C module's code (by address: it is
#    unloaded by then). Everything else stays and fails the run.

MBOCHS_TEST_BIN=$TOP/tools/testing/selftests/vfio-mdev/mbochs_test
MBOCHS_POOL=64	# MB: four mbochs-medium devices
MBOCHS_C_PIDS=""	# first and last pid of the C run
MBOCHS_C_TEXT=""	# the C module's address range while it was loaded

# kmemleak: scan, keep the C sample's reports, clear them.
mbochs_c_kmemleak() {
	local kml=/sys/kernel/debug/kmemleak rep=$OUT/kmemleak-mbochs-c.txt other
	[ -w $kml ] || return 0
	sleep 6	# kmemleak only reports objects older than 5 s
	echo scan > $kml; echo scan > $kml
	cat $kml > "$rep"
	echo clear > $kml
	other=$(awk '/^unreferenced object/ { if (blk != "" && blk !~ /\[mbochs\]/) n++; blk = "" }
		{ blk = blk $0 "\n" } END { if (blk != "" && blk !~ /\[mbochs\]/) n++; print n + 0 }' "$rep")
	log "  kmemleak: $(grep -c '^unreferenced object' "$rep") reports from the C mbochs kept in $(basename "$rep")"
	[ "$other" = 0 ] ||
		result "not ok - kmemleak: $other leak(s) not from the C mbochs (see $(basename "$rep"))"
}

# Called by guest-run.sh with the final kmemleak report (see above).
mbochs_kmemleak_filter() {
	local f=$1 tmp
	[ -n "$MBOCHS_C_PIDS" ] && [ -n "$MBOCHS_C_TEXT" ] && [ -s "$f" ] || return 0
	tmp=$(mktemp)
	# Addresses are compared as strings: all are 0x + 16 lowercase hex digits.
	awk -v pids="$MBOCHS_C_PIDS" -v text="$MBOCHS_C_TEXT" -v c="$tmp" '
		function flush() {
			if (blk == "") return
			if (cblk) printf "%s", blk >> c; else printf "%s", blk
			blk = ""
		}
		BEGIN { split(pids, p, " "); split(text, t, " ") }
		/^unreferenced object/ { flush(); cblk = 0; mine = 0; intext = 0 }
		{
			blk = blk $0 "\n"
			if (match($0, /comm "mbochs_test", pid [0-9]+/)) {
				n = substr($0, RSTART, RLENGTH); sub(/.* /, "", n)
				mine = n + 0 >= p[1] + 0 && n + 0 <= p[2] + 0
			}
			if (match($0, /0xffffffff[0-9a-f]+/)) {
				a = substr($0, RSTART, RLENGTH)
				if (length(a) == 18 && a >= t[1] && a < t[2]) intext = 1
			}
			if ($0 ~ /\[mbochs\]/) intext = 1
			cblk = mine && intext
		}
		END { flush() }' "$f" > "$f.rest"
	if [ -s "$tmp" ]; then
		log "kmemleak: $(grep -c '^unreferenced object' "$tmp") more reports from the C mbochs moved to kmemleak-mbochs-c.txt"
		cat "$tmp" >> "$OUT/kmemleak-mbochs-c.txt"
	fi
	mv "$f.rest" "$f"
	rm -f "$tmp"
}

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
	if [ "$impl" = c ]; then
		local base size
		read -r size base < <(awk '$1 == "mbochs" { print $2, $6 }' /proc/modules)
		MBOCHS_C_TEXT="$base $(printf '0x%016x' $((base + size)))"
		MBOCHS_C_PIDS=$(sh -c 'echo $$')	# pids grow: the test's are above
	fi
	MDEV_IMPL=$impl MBOCHS_TYPE=$type MBOCHS_COUNT=$MBOCHS_POOL timeout 600 \
		"$MBOCHS_TEST_BIN" > "$tap" 2>&1
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')"
	if [ "$impl" = c ]; then
		MBOCHS_C_PIDS="$MBOCHS_C_PIDS $(sh -c 'echo $$')"
		log "  C run: pids $MBOCHS_C_PIDS, module text $MBOCHS_C_TEXT"
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
	mbochs_suite c "$KDIR/samples/vfio-mdev/mbochs.ko" mbochs-medium
	mbochs_suite rust "$TOP/mbochs/mbochs.ko" mbochs-medium
	mbochs_mem_alias
}
