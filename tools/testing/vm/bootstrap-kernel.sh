#!/usr/bin/env bash
# Fetch the current linux-source-7.3 from Debian (SHA256-verified), configure
# it with virtme-ng's VM config plus our fragment, and build it once.
# The build is cached under $MDEV_RS_CACHE, keyed by kernel version and by
# the hash of the config fragment; prints the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"

# Bump when the way the kernel is configured or built changes.
RECIPE=2
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${KERNEL_SUITE:-trixie-backports}
PKG=linux-source-7.3
# KFLAVOUR=host (default): the test VM's kernel, virtme-ng's config plus
# mdev-rs.config (debugging on). KFLAVOUR=guest: the nested guest's kernel,
# tinyconfig plus nested-guest.config (small, fast to boot under TCG-in-TCG).
# KFLAVOUR=kasan: the host flavour plus kasan.config (KASAN), built with
# clang (LLVM=-19: Rust with KASAN needs a clang-built kernel), for `make fuzz`.
KFLAVOUR=${KFLAVOUR:-host}
llvm=
case $KFLAVOUR in
host) FRAG="$MDEV_RS_TOP/tools/testing/kconfig/mdev-rs.config"; suffix= ;;
guest) FRAG="$MDEV_RS_TOP/tools/testing/kconfig/nested-guest.config"; suffix=-guest ;;
kasan) FRAG="$MDEV_RS_TOP/tools/testing/kconfig/mdev-rs.config"; suffix=-kasan; llvm=${KASAN_LLVM:--19}
	FRAG2="$MDEV_RS_TOP/tools/testing/kconfig/kasan.config" ;;
*) die "KFLAVOUR must be host, guest or kasan" ;;
esac
key=$( (echo "recipe $RECIPE"; cat "$FRAG"; [ -z "${FRAG2:-}" ] || { echo "llvm $llvm"; cat "$FRAG2"; }) |
	sha256sum | cut -c1-12)
mkdir -p "$MDEV_RS_CACHE"
cd "$MDEV_RS_CACHE"

# --print-only: the newest cached build for this config, if any; no network.
if [ "${1:-}" = --print-only ]; then
	b=$(ls -d build-*"$suffix-$key"/.built 2>/dev/null | sed 's|/.built$||' | sort -V | tail -1) || true
	[ -n "$b" ] && echo "$MDEV_RS_CACHE/$b"
	exit 0
fi

# 1. Which linux-source-7.3 is current? (Old files leave the pool: never hard-code.)
if [ -n "${KERNEL_DEB_VERSION:-}" ] && [ -f "src-$KERNEL_DEB_VERSION/.extracted" ]; then
	ver=$KERNEL_DEB_VERSION
else
	meta=$(mktemp)
	if curl -fsS --retry 3 "$MIRROR/dists/$SUITE/main/binary-amd64/Packages.xz" -o "$meta.xz"; then
		xz -dc "$meta.xz" | awk -v pkg="$PKG" '
			$0 == "Package: " pkg {p=1; next}
			p && /^(Version|Filename|SHA256):/ {print $2}
			p && /^$/ {p=0}' > "$meta"
		read -r ver file sha < <(tr '\n' ' ' < "$meta"; echo)
	fi
	rm -f "$meta" "$meta.xz"
	if [ -z "${ver:-}" ]; then
		# Offline: fall back to the newest source already extracted.
		ver=$(ls -d src-*/.extracted 2>/dev/null | sed 's|^src-||; s|/.extracted||' | sort -V | tail -1)
		[ -n "$ver" ] || die "cannot read $SUITE's package list and no cached kernel source"
		say "mirror unreachable; using cached kernel source $ver"
	fi
fi
SRC="$MDEV_RS_CACHE/src-$ver"

# 2. Download, verify, extract.
if [ ! -f "$SRC/.extracted" ]; then
	deb="$MDEV_RS_CACHE/$(basename "$file")"
	if [ ! -f "$deb" ] || ! echo "$sha  $deb" | sha256sum -c --quiet - > /dev/null 2>&1; then
		say "downloading $PKG $ver (~166 MB)"
		curl -fL --retry 3 -# -o "$deb.part" "$MIRROR/$file"
		echo "$sha  $deb.part" | sha256sum -c --quiet - || die "SHA256 mismatch for $file"
		mv "$deb.part" "$deb"
	fi
	say "extracting kernel source to $SRC"
	rm -rf "$SRC" "$SRC.tmp"; mkdir -p "$SRC.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-7.3.tar.xz | tar -xJ -C "$SRC.tmp" --strip-components=1
	touch "$SRC.tmp/.extracted"
	mv "$SRC.tmp" "$SRC"
	rm -f "$deb"
fi

# 3. Configure (in a build dir keyed by version + fragment hash) and build.
B="$MDEV_RS_CACHE/build-$ver$suffix-$key"
KMAKE=(make -C "$SRC" O="$B" LLVM="$llvm" RUSTC="$RUSTC" BINDGEN="$BINDGEN" HOSTRUSTC="$RUSTC")
if [ -f "$B/.built" ]; then
	# uapi headers for the kselftests
	[ -f "$B/usr/include/linux/vfio.h" ] || "${KMAKE[@]}" -s headers_install >&2
	echo "$B"; exit 0
fi
mkdir -p "$B"
if [ -n "${FRAG2:-}" ]; then
	# One fragment for the configuration and its check below.
	cat "$FRAG" "$FRAG2" > "$B/fragment.config"
	FRAG=$B/fragment.config
fi
if [ ! -f "$B/.configured" ]; then
	say "configuring kernel in $B"
	# virtme-ng's config (x86_64 defconfig + what vng needs: virtio, 9p, ...)
	# with our fragment on top.
	if [ "$KFLAVOUR" != guest ]; then
		# virtme-configkernel puts its own items after ours (DWARF debug
		# info among them): merge our fragment once more so ours win.
		{ (cd "$SRC" && virtme-configkernel --defconfig --custom "$FRAG" O="$B" \
			LLVM="$llvm" RUSTC="$RUSTC" BINDGEN="$BINDGEN" HOSTRUSTC="$RUSTC") &&
		  "$SRC/scripts/kconfig/merge_config.sh" -m -O "$B" "$B/.config" "$FRAG" &&
		  "${KMAKE[@]}" olddefconfig; } > "$B/config.log" 2>&1
	else
		{ "${KMAKE[@]}" tinyconfig &&
		  "$SRC/scripts/kconfig/merge_config.sh" -m -O "$B" "$B/.config" "$FRAG" &&
		  "${KMAKE[@]}" olddefconfig; } > "$B/config.log" 2>&1
	fi || { tail -20 "$B/config.log" >&2; die "kernel configuration failed"; }
	"${KMAKE[@]}" -s rustavailable >&2 || die "Rust is not available for this kernel build"
	# Check that what we asked for survived olddefconfig.
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		opt=${line%%=*}; want=${line#*=}
		if [ "$want" = n ]; then
			! grep -q "^$opt=[ym]" "$B/.config" || say "warning: $opt is set, wanted n"
		else
			grep -q "^$line\$" "$B/.config" || say "warning: $opt is not $want in the final config"
		fi
	done < "$FRAG"
	if [ "$KFLAVOUR" = kasan ]; then
		for opt in CONFIG_RUST CONFIG_KASAN CONFIG_CC_IS_CLANG; do
			grep -qx "$opt=y" "$B/.config" || die "$opt is not y in $B/.config (see $B/config.log)"
		done
	fi
	touch "$B/.configured"
fi
jobs=$(( $(nproc) + 1 ))
say "building the $KFLAVOUR kernel $ver in $B (-j$jobs; host: ~15, guest: ~5, kasan: ~20 minutes on 2 cores, once)"
start=$(date +%s)
"${KMAKE[@]}" -j"$jobs" >"$B/build.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 30
	printf '    ... %4ds, %s objects built\n' $(( $(date +%s) - start )) \
		"$(find "$B" -name '*.o' 2>/dev/null | wc -l)" >&2
done
wait "$pid" || { tail -40 "$B/build.log" >&2; die "kernel build failed (log: $B/build.log)"; }
"${KMAKE[@]}" -s modules_prepare headers_install >&2
touch "$B/.built"
say "kernel built in $(( $(date +%s) - start ))s"
echo "$B"
