# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# The test tiers and the phases each runs; sourced by run-tests.sh on the
# host and by guest-run.sh in the test VM, so both agree on what a run is
# expected to report.
#
#   static  make check-static  no VM: rustfmt, clippy and the SAFETY lints,
#                              no unsafe outside rust/, the misuse checks,
#                              mdev-probe clippy and unit tests; the modules
#                              and kselftests built
#   check   make check         static + one VM without nested guests: each
#                              phase on one type per driver, a short fuzz
#   full    make check-full    everything (CI): every type, the nested guests
#                              (mdpy-fb, mbochs end to end, hostile guest),
#                              mdevctl and libvirt, the long fuzz, usage.rst's
#                              commands, Debian's own kernel (run-debian.sh),
#                              the bootstrap on a clean Debian 12 (run-bookworm.sh)
#
# MDEV_RS_ONLY="phase ...": only those phases (of the tier's scope), and
# only they are judged; the others print "not run - PHASE: MDEV_RS_ONLY".

# The VM's phases, in the order they run ("static" runs on the host first).
# The fuzz phase runs early, on a kernel that only the C mdpy ran on before.
MDEV_RS_PHASES="mdpy fuzz hostile mbochs_e2e mbochs mdpy_fb migration probe usage"
# Every phase, in the order they run: "static" on the host; "bookworm" on
# the host beside the test VM (run-bookworm.sh: a clean Debian 12 chroot,
# no VM); the test VM's; then "debian", a VM of its own that boots
# Debian's kernel (run-debian.sh).
MDEV_RS_ALL_PHASES="static bookworm $MDEV_RS_PHASES debian"

# Whether TIER runs PHASE at all.
tier_has_phase() { # TIER PHASE
	case $1:$2 in
	*:static) return 0 ;;
	static:*) return 1 ;;
	check:mbochs_e2e | check:hostile | check:usage | check:debian | check:bookworm) return 1 ;;
	*) return 0 ;;
	esac
}

# What the check tier leaves out of a phase it runs, for its "not run" line.
tier_check_leaves_out() { # PHASE
	case $1 in
	mdpy) echo "mdpy kselftests on mdpy-vga and mdpy-hd (C and Rust)" ;;
	mbochs) echo "mbochs kselftests on mbochs-small and mbochs-large (C and Rust)" ;;
	migration) echo "migration kselftests on mdpy-vga, mdpy-hd, mbochs-small, mbochs-large and the C samples; QEMU migration of a paused VM" ;;
	mdpy_fb) echo "mdpy-fb nested guests (Rust/C host x Rust/C guest, live migration)" ;;
	probe) echo "mdev-probe with mdevctl and libvirt" ;;
	fuzz) echo "the long fuzz (FUZZ_OPS 20000, FUZZ_CYCLES 1000 per driver)" ;;
	mbochs_e2e) echo "mbochs end to end (nested guest, QEMU's GL display, live migration)" ;;
	hostile) echo "hostile nested guest" ;;
	usage) echo "the shell blocks of Documentation/mdev-rs/usage.rst (the guest image under QEMU)" ;;
	debian) echo "Debian's own kernel: the modules built for it, installed, loaded, kselftests, a reboot" ;;
	bookworm) echo "bootstrap-deps.sh and make in a clean Debian 12 chroot" ;;
	esac
}

# The device types a tier runs a driver's kselftests on.
tier_types() { # TIER DRIVER
	case $1:$2 in
	full:mdpy) echo mdpy-vga mdpy-xga mdpy-hd ;;
	full:mbochs) echo mbochs-small mbochs-medium mbochs-large ;;
	*:mdpy) echo mdpy-xga ;;
	*:mbochs) echo mbochs-medium ;;
	esac
}

# The phases this run has: the tier's, or those of MDEV_RS_ONLY in it.
tier_run_phases() { # TIER ONLY
	local p out=""
	for p in $MDEV_RS_ALL_PHASES; do
		tier_has_phase "$1" "$p" || continue
		[ -z "$2" ] || [[ " $2 " == *" $p "* ]] || continue
		out="$out $p"
	done
	echo "${out# }"
}

# The kselftest TAP files a phase must leave (OUT/NAME.txt), one a line.
tier_expected_taps() { # TIER PHASE
	local impl type
	case $2 in
	mdpy | mbochs)
		for impl in c rust; do
			for type in $(tier_types "$1" "$2"); do echo "tap-$2-$impl-$type"; done
		done ;;
	migration)
		for type in $(tier_types "$1" mdpy) $(tier_types "$1" mbochs); do
			echo "tap-migration-rust-$type"
		done
		[ "$1" = full ] && echo tap-migration-c-mdpy-xga tap-migration-c-mbochs-medium | tr ' ' '\n' ;;
	esac
	return 0
}
