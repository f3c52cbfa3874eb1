#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Debian's own kernel (linux-image-7.3.x+debNN-amd64, trixie-backports), as
# Debian ships it, and a build tree to build Rust modules against it.
#
# Debian's linux-headers have the kernel's .config and Module.symvers (with
# the Rust kernel crate's exported symbols) but no Rust metadata
# (rust/*.rmeta, libmacros.so): no out-of-tree Rust module can be built
# against them as shipped. This script reproduces that metadata from
# Debian's linux-source of the same version with the headers' .config and
# the toolchain Debian built the kernel with (trixie's rustc, bindgen,
# libclang, gcc, binutils, pahole, in a trixie chroot made with debootstrap:
# a Rust crate's symbol names carry a hash of the exact rustc version, so
# only the same rustc gives names that match the kernel's).
#
# Cached under $MDEV_RS_CACHE, by version, each step done once:
#   debian-trixie-root/            the trixie chroot (rustc, bindgen, ...)
#   debian-$ver/debs/              the .debs (SHA256 from the suite's index)
#   debian-$ver/root/              them extracted: usr/lib/modules/$krel
#                                  (vmlinuz, modules, modules.dep) and
#                                  usr/src/linux-headers-$krel
#   debian-$ver/build/             KDIR: `make modules_prepare` of linux-source with
#                                  the headers' .config (the Rust metadata),
#                                  Debian's Module.symvers and vmlinux (BTF)
# Prints KDIR on stdout. --print-only: the cached KDIR, if any, no network.
# DEBIAN_KERNEL_VERSION (a package version) or DEBIAN_KERNEL_RELEASE (a
# kernel release, e.g. 7.3.4+deb13-amd64) choose the kernel; default: the
# newest linux-source-7.3 in $SUITE.
#   --modules DIR: also build our modules against KDIR (in the chroot, in a
#   copy of the sources at DIR) and check that each symbol they import is
#   exported by Debian's kernel (Module.symvers). Prints KDIR.
#   --install DIR ROOT: run our `make install` of the modules --modules built
#   in DIR (in the chroot), into ROOT (INSTALL_MOD_PATH: ROOT/lib/modules/
#   $krel/updates, and depmod). ROOT must hold the kernel's module tree
#   (ROOT/lib/modules/$krel). Prints KDIR.
# In KDIR, debian-krel holds the kernel release, debian-root the
# extracted packages' root (vng boots debian-root/usr/lib/modules/$krel/vmlinuz).
# Needs root (debootstrap, chroot): the test harness runs as root.
set -euo pipefail
. "$(dirname "$0")/env.sh"

# Bump when the way the build tree is made changes (its .prepared says which).
RECIPE=1
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_KERNEL_SUITE:-trixie-backports}
# The release whose toolchain built $SUITE's kernel.
TOOL_SUITE=${DEBIAN_TOOL_SUITE:-trixie}
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
mkdir -p "$MDEV_RS_CACHE"
cd "$MDEV_RS_CACHE"

newest() { ls -d debian-7.3*/build/.prepared 2>/dev/null | sed 's|/build/.prepared$||; s|^debian-||' | sort -V | tail -1; }
mods_dir= install_root=
case ${1:-} in
--print-only) v=$(newest); [ -z "$v" ] || echo "$MDEV_RS_CACHE/debian-$v/build"; exit 0 ;;
--modules) mods_dir=${2:?--modules DIR}; mods_dir=$(mkdir -p "$mods_dir" && cd "$mods_dir" && pwd) ;;
--install)
	mods_dir=$(cd "${2:?--install DIR ROOT}" && pwd) install_root=$(cd "${3:?--install DIR ROOT}" && pwd) ||
		die "--install DIR ROOT: no such directory" ;;
"") ;;
*) die "usage: $0 [--print-only | --modules DIR | --install DIR ROOT]" ;;
esac

# 1. Which Debian 7.3 kernel is current in $SUITE? (Old files leave the pool:
# never hard-code.) Its packages: linux-headers-$krel (with -common and
# linux-kbuild), linux-modules-$krel, linux-binary-$krel (vmlinuz, signed),
# linux-base-$krel, and linux-source-7.3 of the same version.
# DEBIAN_KERNEL_RELEASE (dkms-build.sh: the kernel being built for): its
# version is the installed image package's, when there is one.
if [ -z "${DEBIAN_KERNEL_VERSION:-}" ] && [ -n "${DEBIAN_KERNEL_RELEASE:-}" ]; then
	DEBIAN_KERNEL_VERSION=$(dpkg-query -W -f='${Version}' "linux-image-$DEBIAN_KERNEL_RELEASE" 2>/dev/null || true)
fi
index=$(mktemp) ver=
if curl -fsS --retry 3 "$MIRROR/dists/$SUITE/main/binary-amd64/Packages.xz" -o "$index.xz"; then
	xz -dc "$index.xz" > "$index"
	ver=${DEBIAN_KERNEL_VERSION:-$(awk '$0 == "Package: linux-source-7.3" {p=1; next} p && /^Version:/ {print $2; exit}' "$index")}
fi
rm -f "$index.xz"
if [ -z "$ver" ]; then
	ver=${DEBIAN_KERNEL_VERSION:-$(newest)}
	[ -n "$ver" ] || die "cannot read $SUITE's package list and no cached Debian kernel"
	say "mirror unreachable; using the cached Debian kernel $ver"
	rm -f "$index"; index=
fi
D="$MDEV_RS_CACHE/debian-$ver"
B="$D/build"
prepared() { [ "$(cat "$B/.prepared" 2>/dev/null)" = "recipe $RECIPE" ]; }
if prepared && [ -z "$mods_dir" ] &&
	{ [ -z "${DEBIAN_KERNEL_RELEASE:-}" ] || [ "$(cat "$B/debian-krel")" = "$DEBIAN_KERNEL_RELEASE" ]; }; then
	rm -f "${index:-}"; echo "$B"; exit 0
fi
[ -z "$install_root" ] || prepared || die "--install: no build tree for Debian's $ver yet (run --modules first)"

# 2. Download (SHA256-checked) and extract the packages.
if [ ! -f "$D/root/.extracted" ]; then
	[ -n "$index" ] || die "no package index to download Debian's kernel $ver from"
	# The packages of version $ver: the -amd64 flavour's (not cloud, rt, dbg).
	awk -v ver="$ver" '
		function stanza() {
			if (v == ver && (pkg ~ /^linux-(headers|modules|binary|base)-7\.3\.[0-9]+\+deb[0-9]+-amd64$/ ||
			    pkg ~ /^linux-headers-7\.3\.[0-9]+\+deb[0-9]+-common$/ ||
			    pkg ~ /^linux-kbuild-7\.3\.[0-9]+\+deb[0-9]+$/ || pkg == "linux-source-7.3"))
				print pkg, file, sha
			pkg = v = file = sha = ""
		}
		/^Package: / {pkg = $2}
		/^Version: / {v = $2}
		/^Filename: / {file = $2}
		/^SHA256: / {sha = $2}
		/^$/ {stanza()}
		END {stanza()}' "$index" > "$index.want"
	[ "$(wc -l < "$index.want")" = 7 ] || { cat "$index.want" >&2; die "expected 7 packages of $ver in $SUITE"; }
	mkdir -p "$D/debs"
	while read -r pkg file sha; do
		deb="$D/debs/$(basename "$file")"
		# linux-source-7.3: bootstrap-kernel.sh may have it extracted already.
		[ "$pkg" = linux-source-7.3 ] && [ -f "$MDEV_RS_CACHE/src-$ver/.extracted" ] && continue
		echo "$sha  $deb" | sha256sum -c --quiet - > /dev/null 2>&1 && continue
		say "downloading $pkg $ver"
		curl -fL --retry 3 -sS -o "$deb.part" "$MIRROR/$file"
		echo "$sha  $deb.part" | sha256sum -c --quiet - || die "SHA256 mismatch for $file"
		mv "$deb.part" "$deb"
	done < "$index.want"
	rm -f "$index.want"
	say "extracting Debian's kernel packages to $D/root"
	rm -rf "$D/root"; mkdir -p "$D/root"
	for deb in "$D"/debs/linux-{headers,modules,binary,base,kbuild}-*.deb; do
		dpkg-deb -x "$deb" "$D/root"
	done
	krel=$(basename "$(ls -d "$D"/root/usr/lib/modules/*/)")
	[ -f "$D/root/usr/lib/modules/$krel/vmlinuz" ] || die "no vmlinuz in $D/root/usr/lib/modules/$krel"
	# The .debs leave modules.dep to the installing system: make it here,
	# so that modprobe works in a VM that boots this tree.
	depmod -b "$D/root/usr" "$krel"
	echo "$krel" > "$D/root/.krel"
	touch "$D/root/.extracted"
fi
rm -f "${index:-}"
krel=$(cat "$D/root/.krel")
[ -z "${DEBIAN_KERNEL_RELEASE:-}" ] || [ "$krel" = "$DEBIAN_KERNEL_RELEASE" ] ||
	die "Debian's kernel $ver is $krel, not $DEBIAN_KERNEL_RELEASE (set DEBIAN_KERNEL_VERSION to its package version)"
H="$D/root/usr/src/linux-headers-$krel"

SRC="$MDEV_RS_CACHE/src-$ver"
if [ ! -f "$SRC/.extracted" ]; then
	say "extracting linux-source-7.3 $ver to $SRC"
	rm -rf "$SRC.tmp"; mkdir -p "$SRC.tmp"
	dpkg-deb --fsys-tarfile "$D"/debs/linux-source-7.3_*.deb | tar -xO ./usr/src/linux-source-7.3.tar.xz |
		tar -xJ -C "$SRC.tmp" --strip-components=1
	touch "$SRC.tmp/.extracted"
	mv "$SRC.tmp" "$SRC"
fi
rm -f "$D"/debs/linux-source-7.3_*.deb

# 3. The toolchain Debian used, from the headers' .config.
want_rustc=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$H/.config")
want_bindgen=$(sed -n 's/^CONFIG_BINDGEN_VERSION_TEXT="\(.*\)"$/\1/p' "$H/.config")
want_cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$H/.config")
[ -n "$want_rustc" ] || die "$H/.config has no CONFIG_RUSTC_VERSION_TEXT: not a Rust-enabled kernel"
say "Debian's $krel was built with: $want_rustc; $want_bindgen; $want_cc"

# The trixie chroot: rustc and bindgen as Debian built the kernel with.
CH="$MDEV_RS_CACHE/debian-$TOOL_SUITE-root"
# (openssl: Kconfig asks it whether it supports ML-DSA, as on Debian's builders.)
CH_PKGS=rustc,rust-src,bindgen,libclang-19-dev,gcc-14,make,flex,bison,bc,libelf-dev,libssl-dev,openssl,dwarves,kmod,cpio,python3,xz-utils,libc6-dev,binutils,rsync
if [ ! -f "$CH/.ready" ]; then
	say "debootstrap: a $TOOL_SUITE chroot with its rustc, bindgen and gcc in $CH (a few minutes, once)"
	$SUDO rm -rf "$CH.tmp"
	$SUDO debootstrap --variant=minbase --include="$CH_PKGS" "$TOOL_SUITE" "$CH.tmp" "$MIRROR" \
		> "$MDEV_RS_CACHE/debian-$TOOL_SUITE-debootstrap.log" 2>&1 ||
		{ tail -20 "$MDEV_RS_CACHE/debian-$TOOL_SUITE-debootstrap.log" >&2; die "debootstrap failed"; }
	$SUDO touch "$CH.tmp/.ready"
	$SUDO mv "$CH.tmp" "$CH"
fi
# Runs CMD in the chroot, with the cache, the project and CH_BINDS at their
# own paths (one argument: a shell command line).
CH_BINDS=()
in_chroot() { # CMD...
	local q=$1
	[ $# = 1 ] || printf -v q '%q ' "$@"
	local CHROOT_ENV=()
	chroot_run "$CH" "$q" "$MDEV_RS_CACHE" "$MDEV_RS_TOP" "${CH_BINDS[@]}"
}
# A chroot made by an older version of this script: add what it lacks.
# shellcheck disable=SC2016
ch_missing=$(in_chroot 'for p in '"${CH_PKGS//,/ }"'; do dpkg-query -W -f="\${Status}\n" $p 2>/dev/null | grep -q "ok installed" || echo $p; done')
if [ -n "$ch_missing" ]; then
	$SUDO cp /etc/resolv.conf "$CH/etc/resolv.conf"
	say "apt in the $TOOL_SUITE chroot: installing" $ch_missing
	# shellcheck disable=SC2086
	in_chroot apt-get install -y -qq --no-install-recommends $ch_missing > "$CH.apt.log" 2>&1 ||
		{ in_chroot apt-get update -qq && in_chroot apt-get install -y -qq --no-install-recommends $ch_missing; } \
		>> "$CH.apt.log" 2>&1 || { tail "$CH.apt.log" >&2; die "apt-get in the chroot failed"; }
fi
have_rustc=$(in_chroot rustc --version)
have_bindgen=$(in_chroot bindgen --version | head -1)
[ "$have_rustc" = "$want_rustc" ] ||
	die "the $TOOL_SUITE chroot's rustc is '$have_rustc', Debian's kernel was built with '$want_rustc': the Rust symbol names would not match"
[ "$have_bindgen" = "$want_bindgen" ] || say "warning: the chroot's bindgen is '$have_bindgen', the kernel's '$want_bindgen'"

# 4. The build tree: linux-source with the headers' .config, `make modules_prepare`
# (which builds rust/: the kernel crate and its metadata), then Debian's
# Module.symvers and vmlinux (for the modules' BTF) in place of our own.
# The variables of the headers' .kernelvariables: Debian's compiler and its
# KERNELRELEASE (the modules' vermagic, "$krel SMP preempt mod_unload").
KVARS=(CROSS_COMPILE=x86_64-linux-gnu- CC=x86_64-linux-gnu-gcc-14 HOSTCC=gcc-14
       KERNELRELEASE="$krel" RUSTC=rustc BINDGEN=bindgen HOSTRUSTC=rustc)
KMAKE=(make -C "$SRC" O="$B" "${KVARS[@]}")
if ! prepared; then
	# (An interrupted run's objects are kept: make redoes what changed.)
	mkdir -p "$B"
	cp "$H/.config" "$B/.config"
	say "make modules_prepare of linux-source $ver with Debian's .config in $B (the Rust metadata; several minutes on 2 cores, once)"
	start=$(date +%s)
	in_chroot "${KMAKE[@]}" -j"$(( $(nproc) + 1 ))" olddefconfig modules_prepare > "$B/prepare.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 30
		printf '    ... %4ds, rust/: %s\n' $(( $(date +%s) - start )) \
			"$(cd "$B/rust" 2>/dev/null && ls -- *.rmeta 2>/dev/null | tr '\n' ' ')" >&2
	done
	wait "$pid" || { tail -30 "$B/prepare.log" >&2; die "make modules_prepare failed (log: $B/prepare.log)"; }
	# olddefconfig must not have changed Debian's configuration.
	if ! diff <(grep '^CONFIG_' "$H/.config" | sort) <(grep '^CONFIG_' "$B/.config" | sort) > "$B/config.diff"; then
		cat "$B/config.diff" >&2
		die "the .config changed in the chroot (different toolchain?): see $B/config.diff"
	fi
	for f in libkernel.rmeta libcore.rmeta libmacros.so libbindings.rmeta libpin_init.rmeta; do
		[ -e "$B/rust/$f" ] || die "make modules_prepare left no rust/$f"
	done
	cp "$H/Module.symvers" "$B/Module.symvers"
	cp "$H/vmlinux" "$B/vmlinux"
	echo "$krel" > "$B/debian-krel"
	ln -sfn "$D/root" "$B/debian-root"
	echo "recipe $RECIPE" > "$B/.prepared"
	say "Rust metadata reproduced in $(( $(date +%s) - start ))s"
fi
# Our kernel crate's symbols must be Debian's: every Rust symbol Debian's
# vmlinux exports (Module.symvers) must be defined, by the same name, in the
# reproduced rust/*.o (the hash in each name, the crate's StableCrateId,
# depends on the exact rustc version).
nm --defined-only -g "$B"/rust/*.o 2>/dev/null | awk '$3 ~ /^_R/ {print $3}' | sort -u > "$B/rust-symbols.txt"
awk -F'\t' '$2 ~ /^_R/ && $3 == "vmlinux" {print $2}' "$B/Module.symvers" | sort -u > "$B/debian-rust-exports.txt"
if comm -23 "$B/debian-rust-exports.txt" "$B/rust-symbols.txt" | grep -q .; then
	comm -23 "$B/debian-rust-exports.txt" "$B/rust-symbols.txt" | head -5 >&2
	die "$(comm -23 "$B/debian-rust-exports.txt" "$B/rust-symbols.txt" | wc -l) of the $(wc -l < "$B/debian-rust-exports.txt") Rust symbols Debian's vmlinux exports are not in the reproduced rust/*.o"
fi
say "the $(wc -l < "$B/debian-rust-exports.txt") Rust symbols Debian's vmlinux exports are all in the reproduced rust/*.o ($(grep -oE 'Cs[0-9A-Za-z]+_6kernel' "$B/debian-rust-exports.txt" | sort -u | head -1))"

# (--install) Our Makefile's `make install`, as a user runs it after
# `make KDIR=...`: the kernel's modules_install into ROOT's updates/, then
# depmod (the tree has no System.map).
if [ -n "$install_root" ]; then
	[ -d "$install_root/lib/modules/$krel/kernel" ] || die "--install: $install_root/lib/modules/$krel holds no kernel module tree"
	# The chroot sees the module tree at its own path (e.g. the host's
	# /usr/lib/modules/$krel for ROOT /).
	case $install_root/ in
	"$MDEV_RS_TOP"/* | "$MDEV_RS_CACHE"/*) ;;
	*) CH_BINDS=("$(cd "$install_root/lib/modules/$krel" && pwd -P)") ;;
	esac
	say "make install of $mods_dir into $install_root (INSTALL_MOD_PATH)"
	in_chroot make -C "$mods_dir" KDIR="$B" "${KVARS[@]}" INSTALL_MOD_PATH="$install_root" install \
		> "$mods_dir/install.log" 2>&1 || { tail -20 "$mods_dir/install.log" >&2; die "make install failed (log: $mods_dir/install.log)"; }
	echo "$B"
	exit 0
fi

# 5. Our modules, built against KDIR in the chroot (its rustc), and the
# symbols they import checked against Debian's kernel.
if [ -n "$mods_dir" ]; then
	say "building mdpy, mbochs, mdpy-fb against $krel in $mods_dir (the chroot's $have_rustc)"
	rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' --exclude=generated \
		"$MDEV_RS_TOP"/{Makefile,Kbuild,rust,mdpy,mbochs,mdpy-fb} "$mods_dir/"
	case $mods_dir/ in "$MDEV_RS_TOP"/* | "$MDEV_RS_CACHE"/*) ;; *) die "--modules DIR must be under $MDEV_RS_TOP or $MDEV_RS_CACHE (the chroot sees only those)" ;; esac
	in_chroot make -C "$B" M="$mods_dir" "${KVARS[@]}" modules > "$mods_dir/build.log" 2>&1 ||
		{ tail -30 "$mods_dir/build.log" >&2; die "the module build failed (log: $mods_dir/build.log)"; }
	missing=0
	want_magic=$(modinfo -F vermagic "$(find "$D/root/usr/lib/modules/$krel/kernel/drivers/vfio" -name 'mdev.ko*')")
	for ko in mdpy/mdpy.ko mbochs/mbochs.ko mdpy-fb/mdpy-fb.ko; do
		[ -f "$mods_dir/$ko" ] || die "no $ko built"
		n=0
		while read -r sym; do
			n=$((n + 1))
			grep -q "^0x[0-9a-f]*	$sym	" "$B/Module.symvers" && continue
			echo "  $ko imports $sym: not exported by Debian's $krel" >&2; missing=$((missing + 1))
		done < <(nm -u "$mods_dir/$ko" | awk '{print $2}' | grep -v '^__this_module$')
		magic=$(modinfo -F vermagic "$mods_dir/$ko")
		[ "$magic" = "$want_magic" ] || die "$ko: vermagic '$magic', Debian's modules have '$want_magic'"
		say "  $ko: $n imported symbols, all exported; vermagic $magic"
	done
	[ "$missing" = 0 ] || die "$missing imported symbol(s) not in Debian's Module.symvers"
	say "every symbol the modules import is exported by Debian's $krel (Module.symvers)"
fi
echo "$B"
