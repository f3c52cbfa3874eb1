#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Misuse checks of the rust/ layer's safe API: code a driver must not be
# able to compile. misuse.rs includes the layer as a driver does and Kbuild
# builds it with a driver's flags (see Kbuild and misuse.rs here):
#   check.sh control   the crate as is (the valid uses) must compile;
#   check.sh CASE      with --cfg kx_misuse_CASE it must fail, with exactly
#                      the errors its `//~ ERROR Exxxx` marks name (code and
#                      line; a mark belongs to the case of the nearest
#                      `#[cfg(kx_misuse_CASE)]` above it);
#   check.sh --list    the cases;
#   check.sh           control and every case, one TAP-like line each
#                      ("ok - misuse: CASE: ..." / "not ok - ..."), exit
#                      status 0 iff all are ok.
# The static tier (run-tests.sh) runs each as a check of its own.
# KDIR: the kernel build tree (default: the cached test kernel). Needs
# rust/generated/bindings.rs, which building the modules makes.
set -uo pipefail
. "$(dirname "$0")/../vm/env.sh"
DIR="$MDEV_RS_TOP/tools/testing/misuse"
cd "$DIR" || exit 1

cases() {
	grep -ho '#\[cfg(kx_misuse_[a-z0-9_]*)\]' ./*.rs | sed 's/.*(kx_misuse_\(.*\))\]/\1/' | sort -u
}

# "file:line code" of every mark of case $1.
marks() {
	awk -v want="kx_misuse_$1" '
		FNR == 1 { cur = "" }
		match($0, /#\[cfg\(kx_misuse_[a-z0-9_]*\)\]/) {
			cur = substr($0, RSTART + 6, RLENGTH - 8)
		}
		cur == want && match($0, /\/\/~ ERROR E[0-9][0-9][0-9][0-9]/) {
			print FILENAME ":" FNR " " substr($0, RSTART + 10, 5)
		}' ./*.rs | sed 's|^\./||' | sort -u
}

# Builds misuse.o with the cfg $1 (empty: none); rustc's output on stdout.
build() {
	local kdir=${KDIR:-$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-kernel.sh" --print-only)}
	[ -e "$MDEV_RS_TOP/rust/generated/bindings.rs" ] ||
		make -s -C "$MDEV_RS_TOP" KDIR="$kdir" modules >&2 || return 2
	rm -f misuse.o
	# The lock of the module builds: `make clean` of the tree removes objects
	# anywhere under it, these included.
	flock "$MDEV_RS_TOP/.build.lock" make -s -C "$kdir" M="$DIR" RUSTC="$RUSTC" \
		BINDGEN="$BINDGEN" KX_MISUSE="$1" misuse.o 2>&1
}

# "file:line code" of every error rustc reported (its primary span, the first
# " --> " after the error line).
errors() {
	awk '
		/^error\[E[0-9]+\]/ { code = substr($0, 7, 5); next }
		code != "" && /^ *--> / {
			sub(/^ *--> /, ""); split($0, at, ":")
			print at[1] ":" at[2] " " code; code = ""
		}' | sed 's|^\./||' | sort -u
}

check_control() {
	local out
	if out=$(build ""); then
		echo "$out"
		echo "control: the valid uses compile"
	else
		echo "$out"
		echo "control: the valid uses do not compile, so the cases would test nothing"
		return 1
	fi
}

check_case() {
	local c=$1 out want got
	want=$(marks "$c")
	[ -n "$want" ] || { echo "$c: no case of that name with a //~ ERROR mark"; return 1; }
	if out=$(build "kx_misuse_$c"); then
		echo "$out"
		echo "$c: compiled; expected: $(echo "$want" | paste -sd' ')"
		return 1
	fi
	echo "$out"
	got=$(echo "$out" | errors)
	if [ "$got" != "$want" ]; then
		echo "$c: expected errors: $(echo "$want" | paste -sd' ')"
		echo "$c: got errors:      $(echo "$got" | paste -sd' ')"
		return 1
	fi
	echo "$c: refused as expected: $(echo "$got" | paste -sd' ')"
}

case ${1:-} in
--list) cases ;;
control) check_control ;;
"")
	rc=0
	log=$(mktemp)
	for c in control $(cases); do
		if [ "$c" = control ]; then check_control > "$log"; else check_case "$c" > "$log"; fi
		if [ $? -eq 0 ]; then echo "ok - misuse: $(tail -n 1 "$log")"
		else
			echo "not ok - misuse: $(tail -n 1 "$log")"
			grep -E '^(error|warning)' "$log" | sed 's/^/#   /'
			rc=1
		fi
	done
	rm -f "$log"
	exit $rc
	;;
*) check_case "$1" ;;
esac
