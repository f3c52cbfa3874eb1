#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fails (exit 1) if a kernel log shows any splat or a kmemleak report.
# usage: splat-check.sh DMESG [KMEMLEAK_REPORT]
#
# It finds the reports of what the test kernel has on (guest-run.sh checks
# that each is on, in its "detectors" result line): WARN (7.3 prints a
# "cut here" line first), BUG, Oops, lockdep (PROVE_LOCKING), UBSAN (bounds,
# shift), DEBUG_LIST corruption (a WARN, or a BUG with
# BUG_ON_DATA_CORRUPTION), DEBUG_ATOMIC_SLEEP ("BUG: sleeping function"),
# Rust panics (a BUG), and kmemleak; KASAN ("BUG: KASAN: ...") on the
# kernel of make fuzz (the test kernel of make check has no KASAN).
set -u
pat='-+\[ cut here \]-+|BUG:|Oops|WARNING:|possible circular locking|inconsistent lock state|possible recursive locking|suspicious RCU usage|UBSAN:|list_(add|del) corruption|kernel BUG|general protection fault|unreferenced object|Kernel panic|VFS: Close: file count is 0'
rc=0
if grep -nE -- "$pat" "$1" > /tmp/splats.$$; then
	echo "kernel splats in $1:"; sed 's/^/    /' /tmp/splats.$$ | head -40; rc=1
fi
if [ -n "${2:-}" ] && [ -s "$2" ]; then
	echo "kmemleak reports in $2:"; head -40 "$2" | sed 's/^/    /'; rc=1
fi
rm -f /tmp/splats.$$
exit $rc
