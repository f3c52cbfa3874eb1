# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# The C mbochs sample's kmemleak reports, kept out of the run's verdict.
# Sourced by guest-mbochs.sh (kselftest) and guest-mbochs-e2e.sh (QEMU),
# which both run the C sample (uses OUT, log, result of guest-run.sh).
#
# The C sample leaks every dma-buf's page array (kcalloc'ed, never freed),
# which kmemleak reports; any kmemleak report fails the run. So, for each
# run of the C module:
#  - mbochs_c_begin COMM, with the module loaded and before the processes
#    that use it start: notes the module's address range and the first pid;
#  - mbochs_c_end, when they are gone and the module is still loaded (so
#    that backtraces name it): notes the last pid, scans kmemleak, keeps its
#    reports in OUT/kmemleak-mbochs-c.txt and clears them; a report in that
#    scan not from the C module is a failure;
#  - some of the C module's leaks escape that scan (stale pointers in reused
#    slab memory keep them "referenced" for a while). guest-run.sh calls
#    mbochs_kmemleak_filter on the final report: it moves to
#    kmemleak-mbochs-c.txt the reports allocated by a C run's processes (by
#    comm and pid) through the C module's code (by address: it is unloaded
#    by then). Everything else stays and fails the run.

# One "comms pid_first pid_last text_start text_end" per finished C run, ";"
# between them (sourcing again keeps them).
: "${MBOCHS_C_RUNS:=}"
MBOCHS_C_RUN=""	# the current run: "comms pid_first text_start text_end"

mbochs_c_begin() { # COMMS: the processes' comms (up to 15 characters), "|" between
	local base size
	read -r size base < <(awk '$1 == "mbochs" { print $2, $6 }' /proc/modules)
	# pids grow: the run's processes get the ones above this
	MBOCHS_C_RUN="$1 $(sh -c 'echo $$') $base $(printf '0x%016x' $((base + size)))"
}

mbochs_c_end() {
	local kml=/sys/kernel/debug/kmemleak rep=$OUT/kmemleak-mbochs-c.txt other comm first text_start text_end
	read -r comm first text_start text_end <<< "$MBOCHS_C_RUN"
	MBOCHS_C_RUNS="$MBOCHS_C_RUNS$comm $first $(sh -c 'echo $$') $text_start $text_end;"
	log "  C run: $comm, pids $first.., module text $text_start $text_end"
	[ -w $kml ] || return 0
	sleep 6	# kmemleak only reports objects older than 5 s
	echo scan > $kml; echo scan > $kml
	cat $kml > "$rep.scan"
	cat "$rep.scan" >> "$rep"
	echo clear > $kml
	other=$(awk '/^unreferenced object/ { if (blk != "" && blk !~ /\[mbochs\]/) n++; blk = "" }
		{ blk = blk $0 "\n" } END { if (blk != "" && blk !~ /\[mbochs\]/) n++; print n + 0 }' "$rep.scan")
	log "  kmemleak: $(grep -c '^unreferenced object' "$rep.scan") reports from the C mbochs kept in $(basename "$rep")"
	rm -f "$rep.scan"
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
		# Whether the block so far is a C run'"'"'s: its comm and pid and
		# an address in that run'"'"'s module text.
		function judge(   i, r) {
			cblk = 0
			for (i = 1; i <= nruns; i++) {
				split(run[i], r, " ")
				if (index("|" r[1] "|", "|" comm "|") && pid >= r[2] + 0 && pid <= r[3] + 0 &&
				    (named || inrange(r[4], r[5])))
					cblk = 1
			}
		}
		function inrange(lo, hi,   i) {
			for (i = 1; i <= naddr; i++)
				if (addr[i] >= lo && addr[i] < hi) return 1
			return 0
		}
		BEGIN { nruns = split(runs, run, ";"); if (run[nruns] == "") nruns-- }
		/^unreferenced object/ { flush(); cblk = 0; comm = ""; pid = -1; naddr = 0; named = 0 }
		{
			blk = blk $0 "\n"
			if (match($0, /comm "[^"]*", pid [0-9]+/)) {
				s = substr($0, RSTART, RLENGTH)
				comm = s; sub(/^comm "/, "", comm); sub(/".*/, "", comm)
				pid = s; sub(/.* /, "", pid); pid += 0
			}
			if (match($0, /0xffffffff[0-9a-f]+/)) {
				a = substr($0, RSTART, RLENGTH)
				if (length(a) == 18) addr[++naddr] = a
			}
			if ($0 ~ /\[mbochs\]/) named = 1
			judge()
		}
		END { flush() }' "$f" > "$f.rest"
	if [ -s "$tmp" ]; then
		log "kmemleak: $(grep -c '^unreferenced object' "$tmp") more reports from the C mbochs moved to kmemleak-mbochs-c.txt"
		cat "$tmp" >> "$OUT/kmemleak-mbochs-c.txt"
	fi
	mv "$f.rest" "$f"
	rm -f "$tmp"
}
