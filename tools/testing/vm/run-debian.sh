#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Phase "debian" of make check-full: our modules on Debian's own kernel
# (linux-image-7.3.x+debNN-amd64, trixie-backports), as a user of Debian
# gets them (README, "On Debian's own kernel"):
#  1. make debian-kernel (bootstrap-debian-kernel.sh): Debian's packages, the Rust metadata
#     reproduced with Debian's rustc 1.85.1 (the oldest rustc 7.3 supports:
#     this is also the MSRV build), our modules built with it, each symbol
#     they import checked against Debian's Module.symvers;
#  2. `make debian-install` (our `make install`, in the chroot) into a copy
#     of Debian's module tree (hard links: the cache is not written),
#     checked in its modules.dep;
#  2b. DKMS: dkms.conf's build and install for Debian's kernel (no boot);
#  3. two boots of Debian's unmodified vmlinuz with that module tree
#     (virtme-ng, TCG; debian-guest.sh): modprobe by dependency, devices
#     defined with mdevctl --auto, then a reboot that brings them back, the
#     kselftests of both drivers, and QEMU on a device of each (the guest
#     image; mdpy's screendump judged here).
# Writes OUT/summary.tap (one line a check, "debian" in each name).
# usage: run-debian.sh OUT [all|prepare|boot]
#   prepare: steps 1 to 2b (no VM: run-tests.sh runs them beside the test
#            VM); boot: step 3, after a prepare of the same OUT; all: both.
set -uo pipefail
. "$(dirname "$0")/env.sh"
OUT=$1 STEPS=${2:-all}
case $STEPS in all | prepare | boot) ;; *) die "usage: run-debian.sh OUT [all|prepare|boot]" ;; esac
SUM=$OUT/summary.tap
if [ "$STEPS" != boot ]; then
	rm -rf "$OUT"; mkdir -p "$OUT"
	: > "$SUM"
fi
add() { echo "$1" >> "$SUM"; }
# The steps' results so far; boot needs what prepare made (OUT/prepared).
if [ "$STEPS" = boot ]; then
	[ -s "$OUT/prepared" ] || { add "not ok - debian: nothing prepared to boot (run-debian.sh prepare did not finish: see out/test/debian-prep.log)"; exit 0; }
	read -r B krel < "$OUT/prepared"
	moddir=$OUT/root/usr/lib/modules/$krel
fi

prepare() {
	# DEBIAN_KERNEL_LOG: the log of a `make debian-kernel` of this checkout that
	# succeeded (run-tests.sh runs it beside the test VM): read, not run again.
	debian_kernel() {
		if [ -n "${DEBIAN_KERNEL_LOG:-}" ] && [ -s "$DEBIAN_KERNEL_LOG" ]; then
			say "debian: make debian-kernel ran beside the test VM (its log: $DEBIAN_KERNEL_LOG)"
			cp "$DEBIAN_KERNEL_LOG" "$OUT/build.log"
		else
			say "debian: Debian's kernel packages, its Rust metadata and our modules (make debian-kernel)"
			make -s -C "$MDEV_RS_TOP" debian-kernel > "$OUT/build.out" 2> >(tee "$OUT/build.log" >&2)
		fi
	}
	if ! debian_kernel ||
		! B=$("$MDEV_RS_TOP/tools/testing/vm/bootstrap-debian-kernel.sh" --print-only) || [ -z "$B" ]; then
		sleep 1
		add "not ok - debian: make debian-kernel: $(grep -m1 '^error:' "$OUT/build.log" || tail -1 "$OUT/build.log") (see out/test/debian/build.log)"
		return 0
	fi
	sleep 1	# (tee's last lines)
	krel=$(cat "$B/debian-krel")
	rustc_v=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$B/.config")
	line=$(grep -o 'the [0-9]* Rust symbols Debian.s vmlinux exports are all in the reproduced rust/\*.o' "$OUT/build.log")
	if [ -n "$line" ]; then add "ok - debian: $krel's Rust metadata reproduced with its own $rustc_v: $line"
	else add "not ok - debian: no symbol check of the reproduced rust/*.o in the build log"; fi
	if grep -q "every symbol the modules import is exported by Debian" "$OUT/build.log"; then
		add "ok - debian: mdpy, mbochs and mdpy-fb build with $rustc_v (the oldest rustc 7.3 supports: the MSRV) against $krel; every symbol they import is exported by it ($(grep -oE '[a-z-]+\.ko: [0-9]+ imported' "$OUT/build.log" | tr '\n' ' ' | sed 's/ $//'))"
	else
		add "not ok - debian: the modules' imported symbols were not checked (see out/test/debian/build.log)"
	fi

	# A copy of Debian's module tree in DIR/$krel: hard links (install and
	# depmod replace files, never write into them), or a copy across file systems.
	copy_module_tree() { # DIR
		mkdir -p "$1"
		cp -al "$B/debian-root/usr/lib/modules/$krel" "$1/" 2>/dev/null ||
			cp -a "$B/debian-root/usr/lib/modules/$krel" "$1/"
	}

	# 2. make install into a copy of Debian's module tree.
	root=$OUT/root
	copy_module_tree "$root/usr/lib/modules"
	moddir=$root/usr/lib/modules/$krel
	if make -s -C "$MDEV_RS_TOP" debian-install INSTALL_MOD_PATH="$root/usr" > "$OUT/install.log" 2>&1; then
		installed=$(cd "$moddir" && find updates -name '*.ko*' | sort | tr '\n' ' ')
		dep=$(grep '^updates/.*/mdpy\.ko[^:]*:' "$moddir/modules.dep")
		if [ "$(echo "$installed" | wc -w)" = 3 ] && [[ $dep == *vfio/mdev/mdev.ko* ]] && [[ $dep == *vfio/vfio.ko* ]]; then
			add "ok - debian: make debian-install: ${installed% } in $krel's tree; depmod: mdpy needs mdev and vfio"
		else
			add "not ok - debian: make debian-install: installed '$installed', modules.dep of mdpy: '$dep'"
		fi
	else
		add "not ok - debian: make debian-install (see out/test/debian/install.log)"
	fi

	# 2b. DKMS (dkms.conf, tools/dkms-build.sh), as on a kernel upgrade: `dkms
	# add`, then `dkms build` and `dkms install` for Debian's kernel, whose
	# headers lack the Rust metadata. DKMS's own tree under OUT; its install
	# and depmod go to /lib/modules/$krel, which here is a copy of Debian's
	# module tree bind-mounted in a mount namespace of its own (this machine
	# runs another kernel: its /lib/modules is not touched, created empty if
	# it has none).
	dkms_check() {
		local d=$OUT/dkms ver h built
		ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$MDEV_RS_TOP/dkms.conf")
		h=$B/debian-root/usr/src/linux-headers-$krel
		mkdir -p "$d/src/mdev-rs-$ver" "$d/tree"
		(cd "$MDEV_RS_TOP" && git ls-files -z | rsync -a --from0 --files-from=- . "$d/src/mdev-rs-$ver/") || return 1
		copy_module_tree "$d/modules"
		dkms --dkmstree "$d/tree" --sourcetree "$d/src" add -m mdev-rs -v "$ver" || return 1
		dkms --dkmstree "$d/tree" --sourcetree "$d/src" build -m mdev-rs -v "$ver" -k "$krel" --kernelsourcedir "$h" || {
			cat "$d/tree/mdev-rs/$ver/build/make.log"; return 1; }
		mkdir -p /lib/modules
		unshare -m bash -c 'set -e; mount -t tmpfs mdev-rs-dkms /lib/modules; mkdir "/lib/modules/$1"
			mount --bind "$2" "/lib/modules/$1"
			dkms --dkmstree "$3/tree" --sourcetree "$3/src" install -m mdev-rs -v "$4" -k "$1" --kernelsourcedir "$5"' \
			_ "$krel" "$d/modules/$krel" "$d" "$ver" "$h" || return 1
		built=$(cd "$d/modules/$krel" && find updates/dkms -name '*.ko*' | sort | tr '\n' ' ')
		echo "installed: $built"
		[ "$(echo "$built" | wc -w)" = 3 ] &&
			grep -q '^updates/dkms/mdpy\.ko[^:]*:.*vfio/mdev/mdev\.ko.*vfio/vfio\.ko' "$d/modules/$krel/modules.dep" &&
			[ "$(modinfo -F vermagic "$d/modules/$krel/updates/dkms/mbochs.ko"* | cut -d' ' -f1)" = "$krel" ]
	}
	say "debian: DKMS: dkms add, build and install for $krel"
	if dkms_check > "$OUT/dkms.log" 2>&1; then
		add "ok - debian: DKMS ($(dkms --version)): dkms.conf builds mdpy, mbochs and mdpy-fb for $krel (Rust metadata reproduced by tools/dkms-build.sh) and installs them in updates/dkms/; depmod: mdpy needs mdev and vfio"
	else
		add "not ok - debian: DKMS: $(tail -1 "$OUT/dkms.log") (see out/test/debian/dkms.log)"
	fi
	echo "$B $krel" > "$OUT/prepared"
}
[ "$STEPS" = boot ] || prepare
[ "$STEPS" != prepare ] && [ -s "$OUT/prepared" ] || exit 0

# 3. Two boots of Debian's kernel.
boot() { # NAME ARGS...
	local name=$1 dir=$OUT/$1 rc=0
	shift
	mkdir -p "$dir"
	say "debian: booting Debian's $krel ($name)"
	vm_run "${VM_TIMEOUT_DEBIAN:-1200}" "$moddir/vmlinuz" "$dir" \
		bash "$MDEV_RS_TOP/tools/testing/vm/debian-guest.sh" "$name" "$dir" "$B" "$MDEV_RS_TOP" "$krel" "$@" || rc=$?
	sed 's/^\(\(not \)\?ok\) - test VM:/\1 - debian: '"$name"': VM:/' "$dir/vm-boot-verdict.txt" >> "$SUM"
	cat "$dir/results.txt" >> "$SUM" 2>/dev/null
	for tap in "$dir"/tap-*.txt; do
		[ -e "$tap" ] || continue
		"$MDEV_RS_TOP/tools/testing/vm/tap-verdict.sh" rust "$tap" \
			"debian $(basename "$tap" .txt | cut -d- -f4-)" | grep -v '^# verdict' >> "$SUM"
	done
	# QEMU's screendumps (debian-guest.sh's qemu_end_to_end), judged here.
	if [ -s "$dir/expected-checks.txt" ]; then
		"$MDEV_RS_TOP/tools/testing/vm/post-checks.sh" "$dir" | sed 's/^\(\(not \)\?ok\) - /\1 - debian: /' >> "$SUM"
	fi
	if [ -s "$dir/dmesg.txt" ] && "$MDEV_RS_TOP/tools/testing/vm/splat-check.sh" "$dir/dmesg.txt" > "$dir/splats.txt"; then
		add "ok - debian: $name: no kernel splat (WARN, BUG, Oops; Debian's kernel has no lockdep or kmemleak)"
	else
		add "not ok - debian: $name: kernel splat or no dmesg (see out/test/debian/$name/splats.txt)"
	fi
	return $rc
}
boot boot1
boot boot2 "$OUT/boot1/persist"
for want in tap-mdpy-rust-mdpy-xga tap-mbochs-rust-mbochs-medium; do
	[ -e "$OUT/boot2/$want.txt" ] || add "not ok - debian: boot2: $want: no results"
done
grep -q "^ok - debian: QEMU.* on mbochs-medium" "$SUM" || grep -q "^not ok - debian: QEMU" "$SUM" ||
	add "not ok - debian: boot2: QEMU end to end: no results"
exit 0
