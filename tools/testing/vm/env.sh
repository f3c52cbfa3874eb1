# shellcheck shell=bash
# Shared settings for the bootstrap, build, test and demo scripts.
# Sourced, never executed.

MDEV_RS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MDEV_RS_CACHE=${MDEV_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdev-rs}
export RUSTC=${RUSTC:-/usr/bin/rustc}
export BINDGEN=${BINDGEN:-bindgen}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
# pip --user / pyenv shims: make sure vng is found wherever pip put it.
if command -v python3 >/dev/null; then
	PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null):$PATH"
fi
export PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
export CLIPPY_DRIVER=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
export RUSTFMT=${RUSTFMT:-/usr/bin/rustfmt}

# Boots KDIR under virtme-ng (TCG: KVM does not work on these machines) with
# OUT writable, runs CMD... in it, and shows the VM's "[vm ...]" progress
# lines meanwhile; the console goes to OUT/vm-console.log. Returns vng's
# status (255 also when the command finished: callers check their output).
vm_run() { # TIMEOUT KDIR OUT CMD...
	local timeout=$1 kdir=$2 out=$3 vm tailer rc=0 lock
	shift 3
	# One VM at a time on this machine: two TCG VMs on two cores make each
	# three times slower and push runs past their time limits.
	exec {lock}> "${TMPDIR:-/tmp}/mdev-rs-vm.lock"
	flock -n "$lock" || { say "waiting for another mdev-rs VM run to finish"; flock "$lock"; }
	# vng needs a terminal-less stdin in CI. The kernel log must hold the
	# whole run (the splat check reads it at the end): 8 MB, 32 times the default.
	timeout "$timeout" vng --run "$kdir" --disable-kvm --user root --verbose \
		--memory 2G --cpus 2 --rwdir "$out" --append "log_buf_len=8M" -- "$@" \
		< /dev/null > "$out/vm-console.log" 2>&1 &
	vm=$!
	tail -n +1 -F "$out/vm-console.log" 2>/dev/null | grep --line-buffered -E '^\[vm |Kernel panic|BUG:' &
	tailer=$!
	wait $vm || rc=$?
	sleep 1; kill $tailer 2>/dev/null || true
	exec {lock}>&-
	return $rc
}
