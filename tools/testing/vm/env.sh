# shellcheck shell=bash
# Shared settings for the bootstrap, build, test and demo scripts.
# Sourced, never executed.

MDEV_RS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MDEV_RS_CACHE=${MDEV_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdev-rs}
export RUSTC=${RUSTC:-/usr/bin/rustc}
export BINDGEN=${BINDGEN:-bindgen}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
# virtme-ng lives in a venv of its own (bootstrap-deps.sh: Debian's python3
# refuses pip installs outside a venv, PEP 668). Its commands (vng, and
# virtme-run, virtme-configkernel, ..., which vng runs from PATH) are linked
# into $MDEV_RS_VENV/commands, first on PATH; the venv's bin/ is not on PATH
# (its python3 would shadow the one the harness's scripts run with).
MDEV_RS_VENV=${MDEV_RS_VENV:-$MDEV_RS_CACHE/venv}
export PATH="$MDEV_RS_VENV/commands:$HOME/.cargo/bin:$HOME/.local/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
export CLIPPY_DRIVER=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
export RUSTFMT=${RUSTFMT:-/usr/bin/rustfmt}

# How the test VM's TCG runs its vCPUs (VM_TCG_THREAD): "multi", QEMU's
# default (one host thread per vCPU), or "single" (all in one host thread).
# With "multi", the kernel's live text patching (static keys, alternatives:
# INT3, IPI, rewrite, IPI) races with the other vCPU translating the same
# code: a translation block read before a store and linked after it keeps
# the stale bytes, and the vCPU later executes a stale INT3 that no patch
# owns: "Oops: int3" early in boot (see Documentation/mdev-rs/testing.rst,
# "Boot crashes"). "single" removes the race but gives the VM one host core,
# which makes `make check` too slow for its time budget; so the default is
# "multi", and a VM that dies before the guest command starts is booted
# again, once, and reported (vm_run below).
VM_TCG_THREAD=${VM_TCG_THREAD:-multi}

# One boot of KDIR under virtme-ng, as vm_run (below) describes.
vm_boot_once() { # TIMEOUT KDIR OUT CMD...
	local timeout=$1 kdir=$2 out=$3 pid rc=0 stamp idle=0 stall=${VM_STALL:-1200}
	shift 3
	rm -f "$out/vm-stalled"
	stamp=$(mktemp)
	# vng needs a terminal-less stdin in CI. The kernel log must hold the
	# whole run (the splat check reads it at the end): 8 MB, 32 times the default.
	timeout "$timeout" vng --run "$kdir" --disable-kvm --user root --verbose \
		--memory 2G --cpus "${VM_CPUS:-2}" --rwdir "$out" --append "log_buf_len=8M" \
		--qemu-opts="-accel tcg,thread=$VM_TCG_THREAD" \
		-- bash "$MDEV_RS_TOP/tools/testing/vm/vm-entry.sh" "$out" "$@" \
		< /dev/null > "$out/vm-console.log" 2>&1 &
	pid=$!
	# A hung VM is caught by its silence, not only by TIMEOUT: the guest
	# writes its progress, results and logs into OUT as it goes (the console
	# is left out: a stuck kernel can go on printing there). VM_STALL
	# seconds (default 20 minutes, four times the longest quiet stretch of
	# a run) without a new write end the VM, so TIMEOUT can leave room for
	# a machine shared with another VM without a hang waiting for it.
	while kill -0 "$pid" 2>/dev/null; do
		sleep 10
		if [ -n "$(find "$out" -type f ! -name vm-console.log -newer "$stamp" -print -quit 2>/dev/null)" ]; then
			touch "$stamp"; idle=0
		else
			idle=$((idle + 10))
		fi
		if [ "$idle" -ge "$stall" ]; then
			echo "stalled: the guest wrote nothing into $out for $idle s (VM_STALL), the VM was stopped" > "$out/vm-stalled"
			kill -TERM "$pid" 2>/dev/null
			break
		fi
	done
	wait "$pid" || rc=$?
	rm -f "$stamp"
	return $rc
}

# After a boot: how far the VM got, from the markers vm-entry.sh
# leaves in OUT (files written through 9p before going on, so a
# crash after a marker cannot lose it). Prints one of
#   done      the guest command finished
#   boot      the VM died before the guest command started: not our code
#   guest     it died after the guest command started, before any module
#             was loaded (guest-run.sh's first insmod)
#   modules   it died after a module was loaded: our code's failure (or
#             the kernel's under it)
vm_boot_stage() { # OUT
	if [ -e "$1/vm-guest-done" ]; then echo done
	elif [ -e "$1/vm-modules-loaded" ]; then echo modules
	elif [ -e "$1/vm-guest-started" ]; then echo guest
	else echo boot; fi
}

# The first line of the console that says why the kernel died, if any.
vm_death_line() { # OUT
	grep -m1 -aE 'Oops|BUG:|Kernel panic|general protection|WARNING:|RIP:' "$1/vm-console.log" 2>/dev/null |
		sed 's/^.*\] //' | cut -c1-160
}

# Boots KDIR under virtme-ng (TCG: KVM does not work on these machines) with
# OUT writable, runs CMD... in it (through vm-entry.sh, which leaves the
# boot markers), and shows the VM's "[vm ...]" progress lines meanwhile (the
# guest appends them to OUT/vm-progress.log through 9p: the console file is
# not written in order as it grows); the console goes to OUT/vm-console.log. Returns vng's status (255 also when
# the command finished: callers check their output).
#
# A VM that died before the guest command started (stage "boot": the kernel
# itself, before any of our code ran) is booted again, at most
# VM_BOOT_RETRIES times (default 1); each such boot is recorded in
# OUT/vm-boots.txt and shown by the callers. A VM that got further is never
# retried. OUT/vm-boot-verdict.txt gets the one line that says which kind of
# death it was.
vm_run() { # TIMEOUT KDIR OUT CMD...
	local timeout=$1 kdir=$2 out=$3 tailer rc=0 lock attempt=0 stage why
	shift 3
	# One VM at a time on this machine: two TCG VMs on two cores make each
	# three times slower and push runs past their time limits.
	exec {lock}> "${TMPDIR:-/tmp}/mdev-rs-vm.lock"
	flock -n "$lock" || { say "waiting for another mdev-rs VM run to finish"; flock "$lock"; }
	: > "$out/vm-boots.txt"
	while :; do
		attempt=$((attempt + 1)) rc=0
		rm -f "$out"/vm-guest-started "$out"/vm-modules-loaded "$out"/vm-guest-done
		: > "$out/vm-console.log"
		rm -f "$out/vm-progress.log"
		python3 "$MDEV_RS_TOP/tools/testing/vm/follow-log.py" "$out/vm-progress.log" '' &
		tailer=$!
		vm_boot_once "$timeout" "$kdir" "$out" "$@" || rc=$?
		sleep 1; kill $tailer 2>/dev/null || true
		stage=$(vm_boot_stage "$out") why=$(vm_death_line "$out")
		[ ! -e "$out/vm-stalled" ] || why="$(cat "$out/vm-stalled")${why:+; console: $why}"
		[ "$rc" != 124 ] || why="killed at its time limit (${timeout} s)${why:+; $why}"
		echo "boot $attempt: stage $stage, vng status $rc${why:+, console: $why}" >> "$out/vm-boots.txt"
		if [ "$stage" = boot ] && [ "$attempt" -le "${VM_BOOT_RETRIES:-1}" ]; then
			cp "$out/vm-console.log" "$out/vm-console-boot$attempt.log"
			say "boot failure (not our code): the VM died before the guest command started${why:+ ($why)}; booting again (console kept in vm-console-boot$attempt.log)"
			continue
		fi
		break
	done
	case $stage in
	done) why="ok - test VM: the guest command ran to its end (boot $attempt)" ;;
	boot) why="not ok - test VM: boot failure, not our code: the VM died before the guest command started, on each of $attempt boots (${why:-no panic line; vng status $rc})" ;;
	guest) why="not ok - test VM: died after the guest command started, before any module was loaded (${why:-no panic line; vng status $rc}): not our modules (the kernel, or a harness script)" ;;
	modules) why="not ok - test VM: died after a module was loaded: a failure of our code or of the kernel under it (${why:-no panic line; vng status $rc}; see vm-console.log)" ;;
	esac
	[ "$attempt" -gt 1 ] && why="$why; booted $attempt times: $(grep -c 'stage boot' "$out/vm-boots.txt") boot failure(s) before our code ran were retried (see vm-boots.txt)"
	echo "$why" > "$out/vm-boot-verdict.txt"
	say "${why#* - }"
	exec {lock}>&-
	return $rc
}

# Runs `bash -c CMD` as root in the chroot ROOT, in a mount namespace of its
# own (nothing stays mounted after it): /dev, /proc and /sys, then each BIND
# ("SRC", "SRC=DST" or "SRC=DST=ro") bound in at DST (default SRC); a clean
# environment (Debian root's PATH, HOME=/root, LANG=C.UTF-8) plus the
# VAR=VALUE words of the array CHROOT_ENV. As root, or with sudo when SUDO
# is set. (The Debian kernel's trixie toolchain, the bookworm phase's
# clean Debian 12.)
chroot_run() { # ROOT CMD [BIND...]
	local root=$1 cmd=$2 env=("${CHROOT_ENV[@]+"${CHROOT_ENV[@]}"}")
	shift 2
	${SUDO:-} unshare -m bash -c '
		set -e; r=$1 cmd=$2 n=$3; shift 3
		env=("${@:1:n}"); shift "$n"
		mount --rbind /dev "$r/dev"; mount -t proc proc "$r/proc"; mount -t sysfs sys "$r/sys"
		for b in "$@"; do
			IFS="=" read -r src dst ro <<< "$b"
			dst=${dst:-$src}
			mkdir -p "$r$dst"
			if [ "$ro" = ro ]; then mount --bind -o ro "$src" "$r$dst"; else mount --bind "$src" "$r$dst"; fi
		done
		exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 "${env[@]}" bash -c "$cmd"' \
		_ "$root" "$cmd" "${#env[@]}" "${env[@]}" "$@"
}
