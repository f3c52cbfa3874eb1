# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# What the test VMs' scripts share (guest-run.sh in the test kernel's VM,
# debian-guest.sh in Debian's): progress and result lines, the kselftest
# runner and the sweeps that keep one failure from cascading. Sourced; uses
# OUT (the results' directory) and TOP (the tree).

# Progress: on the console, and appended to OUT/vm-progress.log, which the
# host shows as it grows (vm_run in env.sh).
log() { echo "[vm +${SECONDS}s] $*" | tee -a "$OUT/vm-progress.log"; }
result() { echo "$1" >> "$OUT/results.txt"; }

commas() { local s; printf -v s '%s, ' "$@"; echo "${s%, }"; }

# Removes every mdev left behind (a test killed by its timeout runs no
# teardown), so that the next test starts with none: one failure must not
# become many (a full pool answers ENOSPC). One result line for what was
# left. A removal waits for the device's last user: a process still holding
# it gets 30 s.
#
# The removal runs in the background and is given up on after 30 s: a
# device still held (by a task the kernel killed in an Oops, say) makes
# the writer wait for ever, uninterruptibly once signalled ("blocked until
# device is released"), and neither timeout(1) nor the harness could end
# it. The run then goes on to report, instead of hanging to the VM's limit.
mdev_sweep() { # LABEL
	local d n=0 names=""
	for d in /sys/bus/mdev/devices/*; do
		[ -e "$d/remove" ] || continue
		names="$names ${d##*/}"; n=$((n + 1))
		mdev_remove "${d##*/}" || log "  could not remove mdev ${d##*/} in 30 s (still in use); going on"
	done
	[ $n = 0 ] || result "not ok - $1: left $n mdev(s) behind (removed before going on):$names"
}

# Removes the mdev UUID as mdev_sweep does (in the background, given up on
# after 30 s if it is still held); fails unless it is gone.
mdev_remove() { # UUID
	local d=/sys/bus/mdev/devices/$1 t=0
	[ -e "$d/remove" ] || return 1
	sh -c "echo 1 > '$d/remove'" 2>/dev/null &
	while [ -e "$d" ] && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
	[ ! -e "$d" ]
}

# After a phase: no QEMU, mdev or module of ours may be left for the next.
phase_sweep() { # PHASE
	local m
	if pkill -x qemu-system-x86 2>/dev/null; then	# (comm: 15 characters)
		result "not ok - $1: left QEMU running (killed before going on)"
		sleep 2; pkill -9 -x qemu-system-x86 2>/dev/null
	fi
	mdev_sweep "$1"
	for m in mdpy_fb mbochs mdpy; do
		grep -q "^$m " /proc/modules || continue
		result "not ok - $1: left module $m loaded (unloaded before going on)"
		rmmod "$m" 2>/dev/null || log "  could not unload $m"
	done
}

# Runs a kselftest: TAP TIMEOUT CMD... Its output goes to TAP; a copy with
# each line's time (s since the start) to times-*.txt next to it. The tests
# record the mdevs they create in MDEV_LEDGER (mdev_lib.h), where the next
# test finds and removes those of a test that was killed; whatever is left
# at the end is removed here (mdev_sweep).
#
# KSELFTEST_LEAVE_OUT="VARIANT<TAB>REASON" (debian-guest.sh: no IOMMUFD, no
# iommufd_cdev) leaves that variant of every fixture out (the harness's -V)
# and lists its tests as not run, with REASON.
kselftest() {
	local tap=$1 limit=$2 start=${EPOCHREALTIME/./} t line name variant reason
	shift 2
	name=$(basename "$tap" .txt)
	rm -f "/tmp/mdev-ledger-$name"
	if [ -n "${KSELFTEST_LEAVE_OUT:-}" ]; then
		IFS=$'\t' read -r variant reason <<< "$KSELFTEST_LEAVE_OUT"
		# -l prints "%-20s %-25s %s": fixture (on its first line), variant, test.
		"$1" -l 2>&1 | awk -v want="$variant" -v reason="$reason" '
			function flush(  j) { if (has) for (j = 1; j <= nt; j++) printf "%s.%s.%s\t%s\n", f, want, t[j], reason; has = nt = 0 }
			/^# FIXTURE|^---/ { flush(); next }
			{
				name = substr($0, 1, 20); gsub(/ /, "", name)
				if (name != "") { flush(); f = name }
				var = substr($0, 22, 25); gsub(/ /, "", var)
				test = substr($0, 48); gsub(/ /, "", test)
				if (var == want) has = 1
				if (test != "") t[++nt] = test
			}
			END { flush() }' >> "${tap%/*}/notrun-${tap##*/tap-}"
		set -- "$1" -V "$variant" "${@:2}"
	fi
	MDEV_LEDGER=/tmp/mdev-ledger-$name timeout -k 10 "$limit" "$@" 2>&1 | while IFS= read -r line; do
		printf '%s\n' "$line"
		t=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
		printf '%4d.%d %s\n' $((t / 10)) $((t % 10)) "$line" >> "${tap%/*}/times-${tap##*/tap-}"
	done > "$tap"
	t=$(( (${EPOCHREALTIME/./} - start) / 1000000 ))
	log "  $(grep -E '^# (PASSED|FAILED|Totals)' "$tap" | tr '\n' ' ')in ${t}s"
	mdev_sweep "${name#tap-}"
}

# Restricts a kselftest run to the tests named (kselftest_harness's -t, all
# variants): prints the options, and writes every other test of BIN to
# NOTRUN, "fixture.variant.test<TAB>REASON" a line, which the summary shows
# as not run.
only_tests() { # BIN NOTRUN REASON TEST...
	local bin=$1 notrun=$2 reason=$3 t
	shift 3
	printf -- '-t %s ' "$@"
	# -l prints "%-20s %-25s %s": fixture (on a fixture's first line),
	# variant, test; a fixture's variants and tests side by side.
	"$bin" -l 2>&1 | awk -v keep=" $* " -v reason="$reason" -v notrun="$notrun" '
		function flush(  i, j) {
			for (i = 1; i <= nv; i++)
				for (j = 1; j <= nt; j++)
					if (index(keep, " " t[j] " ") == 0)
						printf "%s%s.%s\t%s\n", f, v[i] == "" ? "" : "." v[i], t[j], reason > notrun
			nv = nt = 0
		}
		/^# FIXTURE|^---/ { flush(); next }
		{
			name = substr($0, 1, 20); gsub(/ /, "", name)
			if (name != "") { flush(); f = name }
			var = substr($0, 22, 25); gsub(/ /, "", var)
			test = substr($0, 48); gsub(/ /, "", test)
			if (var != "" || nv == 0) v[++nv] = var
			if (test != "") { t[++nt] = test; known[test] = 1 }
		}
		END {
			flush(); printf "" > notrun
			n = split(keep, k, " ")
			for (i = 1; i <= n; i++) if (!(k[i] in known)) print k[i]
		}' | while read -r t; do result "not ok - $(basename "$bin"): no test $t to run"; done
}

# The Rust module NAME (mdpy, mbochs, mdpy-fb): the tree's build, or the
# one under RUST_KO_DIR (debian-guest.sh: the modules `make install` put in
# Debian's module tree, compressed as Debian's kbuild does).
rust_ko() { # NAME
	if [ -n "${RUST_KO_DIR:-}" ]; then
		find "$RUST_KO_DIR" -name "$1.ko*" | head -1
	else
		echo "$TOP/$1/$1.ko"
	fi
}
