#!/usr/bin/env bash
# Install the host tools: Debian packages (cargo too, when there is none),
# bindgen (cargo), virtme-ng (pip, in a venv under the cache: $MDEV_RS_VENV).
# Nothing is pip-installed outside that venv (Debian's python3 forbids it,
# PEP 668). Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
. "$(dirname "$0")/env.sh"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

PKGS=(rustc-web rust-web-src libclang-19-dev clang-19 llvm-19 lld-19
      busybox-static flex bison bc libelf-dev libssl-dev cpio kmod xz-utils
      gcc make python3-venv curl ca-certificates socat rsync
      rust-web-clippy rustfmt-web
      python3-gi gir1.2-glib-2.0
      mdevctl libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients udev jq strace uuid-runtime
      debootstrap dkms)
# cargo (bindgen-cli, mdev-probe): the one on PATH (e.g. rustup's), else
# Debian's cargo-web, rustc-web's own (only a Recommends of it, which
# --no-install-recommends leaves out; it depends on the same rustc-web version).
command -v cargo >/dev/null || PKGS+=(cargo-web)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "apt: installing ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU 10 (vfio migration v2, dma-buf display) and Mesa 25 (llvmpipe imports
# dma-bufs since 24.1) from bookworm-backports: that suite in its own sources
# file, only these packages taken from it, nothing else upgraded.
BPO_LIST=/etc/apt/sources.list.d/mdev-rs-bookworm-backports.sources
BPO_PKGS=(qemu-system-x86 qemu-system-gui qemu-system-modules-opengl
          libegl-mesa0 libgbm1 mesa-libgallium libgl1-mesa-dri libglx-mesa0)
# libvirt 11 (its QEMU driver starts usage.rst's libvirt guests; its node
# device driver is the probe's) from there too, package by package
# (pkg/bookworm-backports): with -t, its systemd-container would pull
# systemd itself from backports; this way its dependencies come from
# bookworm, but for libvirt's own.
BPO_LIBVIRT=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-driver-nodedev
             libvirt-clients libvirt0 libvirt-common libvirt-daemon-common libvirt-daemon-log)
if . /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]; then
	if [ ! -f "$BPO_LIST" ]; then
		say "apt: adding bookworm-backports ($BPO_LIST)"
		printf '%s\n' 'Types: deb' "URIs: ${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
			'Suites: bookworm-backports' 'Components: main' \
			'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | $SUDO tee "$BPO_LIST" >/dev/null
		$SUDO apt-get update -qq
	fi
	want_bpo=()
	for p in "${BPO_PKGS[@]}"; do
		inst=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
		case $inst in *bpo12*) ;; *) want_bpo+=("$p") ;; esac
	done
	if [ ${#want_bpo[@]} -gt 0 ]; then
		say "apt: installing from bookworm-backports: ${want_bpo[*]}"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
			-t bookworm-backports "${want_bpo[@]}" >/dev/null
		for p in "${want_bpo[@]}"; do
			say "    $p $(dpkg-query -W -f='${Version}' "$p")"
		done
	fi
	want_lv=()
	for p in "${BPO_LIBVIRT[@]}"; do
		inst=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
		case $inst in *bpo12*) ;; *) want_lv+=("$p/bookworm-backports") ;; esac
	done
	# Its QEMU driver needs systemd-container, which must match the
	# installed systemd: bookworm's, or backports' where QEMU's install
	# above brought that one (a system without systemd, like a chroot).
	if [ ${#want_lv[@]} -gt 0 ] && ! dpkg-query -W -f='${Status}' systemd-container 2>/dev/null | grep -q 'install ok installed'; then
		case $(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true) in
		*bpo12*) want_lv+=(systemd-container/bookworm-backports) ;;
		*) want_lv+=(systemd-container) ;;
		esac
	fi
	if [ ${#want_lv[@]} -gt 0 ]; then
		say "apt: installing libvirt from bookworm-backports: ${want_lv[*]%%/*}"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
			"${want_lv[@]}" >/dev/null
		say "    libvirt-daemon $(dpkg-query -W -f='${Version}' libvirt-daemon)"
	fi
elif ! dpkg-query -W qemu-system-x86 qemu-system-gui >/dev/null 2>&1; then
	# Newer releases carry QEMU >= 10 and Mesa >= 25 in their main suite.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		qemu-system-x86 qemu-system-gui libegl-mesa0 libgbm1 libgl1-mesa-dri >/dev/null
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q '0\.72\.1'; then
	say "cargo: installing bindgen-cli 0.72.1 (about a minute)"
	cargo install --locked --quiet bindgen-cli@0.72.1
fi

# virtme-ng in its own venv, made by Debian's python3 (python3-venv above);
# its commands are linked into $MDEV_RS_VENV/commands, which env.sh puts
# first on PATH (vng runs virtme-run and the others from PATH).
VNG_VERSION=1.42
if ! "$MDEV_RS_VENV/commands/vng" --version >/dev/null 2>&1; then
	mkdir -p "$(dirname "$MDEV_RS_VENV")"
	exec {venv_lock}> "$(dirname "$MDEV_RS_VENV")/.venv.lock"
	flock "$venv_lock"	# another checkout's bootstrap may be at it
	if ! "$MDEV_RS_VENV/commands/vng" --version >/dev/null 2>&1; then
		py=/usr/bin/python3
		[ -x "$py" ] || py=$(command -v python3) || die "no python3"
		if ! "$MDEV_RS_VENV/bin/python3" -c '' 2>/dev/null; then
			say "venv: creating $MDEV_RS_VENV ($("$py" --version 2>&1))"
			rm -rf "$MDEV_RS_VENV"
			"$py" -m venv "$MDEV_RS_VENV" ||
				{ rm -rf "$MDEV_RS_VENV"; die "$py -m venv $MDEV_RS_VENV failed (python3-venv?)"; }
		fi
		say "pip (venv $MDEV_RS_VENV): installing virtme-ng $VNG_VERSION"
		"$MDEV_RS_VENV/bin/python3" -m pip install --quiet "virtme-ng==$VNG_VERSION" ||
			"$MDEV_RS_VENV/bin/python3" -m pip install --quiet virtme-ng ||
			die "pip could not install virtme-ng into $MDEV_RS_VENV"
		rm -rf "$MDEV_RS_VENV/commands"; mkdir -p "$MDEV_RS_VENV/commands"
		for c in "$MDEV_RS_VENV"/bin/vng* "$MDEV_RS_VENV"/bin/virtme-*; do
			if [ -e "$c" ]; then ln -s "$c" "$MDEV_RS_VENV/commands/"; fi
		done
	fi
	exec {venv_lock}>&-
fi
hash -r
[ "$(command -v vng)" = "$MDEV_RS_VENV/commands/vng" ] ||
	die "vng on PATH is $(command -v vng || echo none), not the venv's $MDEV_RS_VENV/commands/vng (see env.sh)"
"$RUSTC" --version >/dev/null || die "no rustc at $RUSTC"
say "host tools ready: $("$RUSTC" --version), $("$BINDGEN" --version 2>&1 | head -1), vng $(vng --version 2>&1 | head -1)"
