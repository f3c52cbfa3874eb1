#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Judges one kselftest TAP log. usage: tap-verdict.sh IMPL TAPFILE [LABEL]
# (TAPFILE: DIR/tap-NAME.txt; DIR/notrun-NAME.txt, if there, lists the tests
# the run left out on purpose: "test<TAB>reason" a line.)
#
# IMPL=rust: every test must pass.
# IMPL=c:    tests named *.defect_N_* expose defects of the C sample and must
#            FAIL (reported "ok ... # XFAIL C defect reproduced"); all others
#            must pass.
# A test that SKIPs (the harness's "ok ... # SKIP reason") or was left out
# did not run: it is reported as "not run - ...: reason", neither passed nor
# failed. A failed test, a missing result or a crash counts as a failure.
# Prints one line per test ("ok", "not ok" or "not run"), each named
# "IMPL LABEL: test" (LABEL: e.g. the device type), then
# "# verdict: P passed, F failed, N not run".
set -u
impl=$1 tap=$2 label="$1${3:+ $3}"
pass=0 fail=0 notrun=0 seen=0
plan=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$tap" | head -1)
while IFS= read -r line; do
	[[ $line =~ ^(not\ )?ok\ [0-9]+\ ([^#]*)(#.*)?$ ]] || continue
	seen=$((seen + 1))
	name="$label: ${BASH_REMATCH[2]% }" directive=${BASH_REMATCH[3]:-} passed=1
	[ -n "${BASH_REMATCH[1]}" ] && passed=0
	if [[ $directive =~ ^#\ SKIP\ *(.*)$ ]]; then
		echo "not run - $name: ${BASH_REMATCH[1]:-no reason given}"; notrun=$((notrun + 1))
		continue
	fi
	if [ "$impl" = c ] && [[ $name == *.defect_* ]]; then
		if [ $passed = 0 ]; then
			echo "ok - $name # XFAIL C defect reproduced"; pass=$((pass + 1))
		else
			echo "not ok - $name # defect test did not fail on the C sample"; fail=$((fail + 1))
		fi
	elif [ $passed = 1 ]; then
		echo "ok - $name"; pass=$((pass + 1))
	else
		echo "not ok - $name${directive:+ $directive}"; fail=$((fail + 1))
	fi
done < "$tap"
notrun_list=${tap%/*}/notrun-${tap##*/tap-}
if [ -e "$notrun_list" ]; then
	while IFS=$'\t' read -r name reason; do
		echo "not run - $label: $name: $reason"; notrun=$((notrun + 1))
	done < "$notrun_list"
fi
if [ -z "$plan" ] || [ "$seen" -ne "$plan" ]; then
	echo "not ok - $label: $(basename "$tap"): ran $seen of ${plan:-?} planned tests (crash or hang?)"
	fail=$((fail + 1))
fi
echo "# verdict: $pass passed, $fail failed, $notrun not run"
