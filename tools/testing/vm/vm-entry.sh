#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The first thing every test VM runs (vm_run in env.sh): leaves the markers
# vm_boot_stage reads, and runs the guest command.
#  - OUT/vm-guest-started: the guest command is about to start;
#  - OUT/vm-modules-loaded: the first insmod/modprobe (through wrappers put
#    first on PATH) is about to load a module;
#  - OUT/vm-guest-done: the guest command ended (its status).
# Each is a file in OUT (9p: on the host before this goes on, so a crash
# after it cannot erase it, and a crash of our code is never taken for a
# boot failure) and a line in the kernel log.
# usage: vm-entry.sh OUT CMD...
out=$1
shift
mark() { # FILE TEXT
	echo "mdev-rs: $2" > /dev/kmsg 2>/dev/null
	echo "$2" > "$out/$1" && sync "$out/$1" 2>/dev/null
}
wrap=$(mktemp -d /tmp/mdev-rs-wrap.XXXXXX)
for tool in insmod modprobe; do
	real=$(command -v "$tool") || continue
	cat > "$wrap/$tool" <<WRAP
#!/bin/bash
[ -e "$out/vm-modules-loaded" ] || {
	echo "mdev-rs: first module load: $tool \$*" > /dev/kmsg 2>/dev/null
	echo "$tool \$*" > "$out/vm-modules-loaded" && sync "$out/vm-modules-loaded" 2>/dev/null
}
exec "$real" "\$@"
WRAP
	chmod +x "$wrap/$tool"
done
export PATH="$wrap:$PATH"
echo "[vm +${SECONDS}s] guest started: $(uname -r), $(nproc) CPUs" | tee -a "$out/vm-progress.log"
mark vm-guest-started "guest command started: $*"
"$@"
rc=$?
mark vm-guest-done "$rc"
exit $rc
