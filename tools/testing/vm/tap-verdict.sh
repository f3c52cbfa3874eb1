#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Judges one kselftest TAP log. usage: tap-verdict.sh IMPL TAPFILE
#
# IMPL=rust: every test must pass.
# IMPL=c:    tests named *.defect_N_* expose defects of the C sample and must
#            FAIL (reported "ok ... # XFAIL C defect"); all others must pass.
# A skipped test, a missing result or a crash counts as a failure.
# Prints one TAP line per test and "# verdict: P passed, F failed".
set -u
impl=$1 tap=$2
pass=0 fail=0 seen=0
plan=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$tap" | head -1)
while IFS= read -r line; do
	[[ $line =~ ^(not\ )?ok\ [0-9]+\ ([^#]*)(#.*)?$ ]] || continue
	seen=$((seen + 1))
	name=${BASH_REMATCH[2]% } directive=${BASH_REMATCH[3]:-}
	passed=1
	[ -n "${BASH_REMATCH[1]}" ] && passed=0
	[[ $directive == *SKIP* ]] && passed=0
	label="$impl: $name"
	if [ "$impl" = c ] && [[ $name == *.defect_* ]]; then
		if [ $passed = 0 ] && [[ $directive != *SKIP* ]]; then
			echo "ok - $label # XFAIL C defect reproduced"; pass=$((pass + 1))
		else
			echo "not ok - $label # defect test did not fail on the C sample"; fail=$((fail + 1))
		fi
	elif [ $passed = 1 ]; then
		echo "ok - $label"; pass=$((pass + 1))
	else
		echo "not ok - $label ${directive}"; fail=$((fail + 1))
	fi
done < "$tap"
if [ -z "$plan" ] || [ "$seen" -ne "$plan" ]; then
	echo "not ok - $impl: $(basename "$tap"): ran $seen of ${plan:-?} planned tests (crash or hang?)"
	fail=$((fail + 1))
fi
echo "# verdict: $pass passed, $fail failed"
