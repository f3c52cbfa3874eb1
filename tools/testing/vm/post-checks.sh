#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Judges the screendumps a VM run left in OUT/checks, on the host (pixel
# loops in Python are slow under TCG). Each NAME.ppm has a NAME.want:
#   pattern [WxH]  every pixel equals the nested/pattern.h pattern (and the
#                  screendump is W x H)
#   fbcon TEXT     the top line shows TEXT in a kernel console font
# Writes NAME.png next to it; prints one TAP line per screendump, and a
# failure for each name in OUT/expected-checks.txt that has no screendump.
# usage: post-checks.sh OUT
set -uo pipefail
. "$(dirname "$0")/env.sh"
OUT=$1
VM=$MDEV_RS_TOP/tools/testing/vm
GUEST_SRC=$(readlink -f "$(KFLAVOUR=guest "$VM/bootstrap-kernel.sh" --print-only)/source")
for want in "$OUT"/checks/*.want; do
	[ -e "$want" ] || continue
	name=$(basename "$want" .want) base=${want%.want}
	read -r kind arg < "$want"
	case $kind in
	# shellcheck disable=SC2086
	pattern) msg=$(python3 "$VM/screendump_check.py" "$base.ppm" "$base.png" $arg 2>&1) ;;
	fbcon) msg=$(python3 "$VM/fbcon_check.py" "$base.ppm" "$base.png" "$GUEST_SRC/lib/fonts" "$arg" 2>&1) ;;
	*) msg="unknown check '$kind'"; false ;;
	esac
	if [ $? -eq 0 ]; then echo "ok - $name: $msg"; else echo "not ok - $name: $msg"; fi
done
for name in $(cat "$OUT/expected-checks.txt" 2>/dev/null); do
	[ -e "$OUT/checks/$name.want" ] || echo "not ok - $name: no screendump (VM or nested guest failed earlier)"
done
