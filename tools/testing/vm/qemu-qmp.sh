# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# QMP, and live migration between two QEMUs in the test VM: sourced by
# guest-run.sh (its end-to-end phases migrate nested guests) and
# tools/testing/bench/bench-vm.sh.
#
# Both sides get the return path, so that a destination refusing the stream
# (our drivers refuse another type's with a dev_err line) fails the
# migration on the source, which then keeps running. A guest under nested
# TCG dirties memory faster than QEMU measures the socket's bandwidth, so
# QEMU is told the socket's (avail-switchover-bandwidth) and allowed a
# downtime of 2 s; the downtime QEMU reports is what the test records.

# One QMP command on SOCKET: prints the reply, fails on an error reply.
# Retries the connection while QEMU starts; gives up after 60 s in all.
qmp() { # SOCKET JSON
	timeout 60 python3 - "$1" "$2" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.3)
f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
f.readline()  # greeting
cmd({"execute": "qmp_capabilities"})
r = cmd(json.loads(sys.argv[2]))
print(json.dumps(r))
sys.exit(1 if "error" in r else 0)
PY
}

NESTED_MIG_CAPS='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"return-path","state":true}]}}'

# Migrates the QEMU on SRC_SOCK to the QEMU on DST_SOCK, started with
# -incoming URI. Prints query-migrate's last answer on the source; succeeds
# only if the migration completed.
# The switchover threshold is avail-switchover-bandwidth x downtime-limit:
# by default 2 GB, so that a migration under nested TCG switches over at the
# first chance; NESTED_MIG_PARAMS overrides it (a JSON object).
NESTED_MIG_PARAMS_DEFAULT='{"avail-switchover-bandwidth":1073741824,"downtime-limit":2000}'
nested_migrate() { # SRC_SOCK DST_SOCK URI TIMEOUT
	local t=0 st
	qmp "$2" "$NESTED_MIG_CAPS" > /dev/null && qmp "$1" "$NESTED_MIG_CAPS" > /dev/null &&
		qmp "$1" '{"execute":"migrate-set-parameters","arguments":'"${NESTED_MIG_PARAMS:-$NESTED_MIG_PARAMS_DEFAULT}"'}' > /dev/null ||
		{ echo "QMP: setting the migration's capabilities and parameters failed"; return 1; }
	qmp "$1" '{"execute":"migrate","arguments":{"uri":"'"$3"'"}}' > /dev/null ||
		{ echo "QMP: migrate refused"; return 1; }
	while [ $t -lt "$4" ]; do
		st=$(qmp "$1" '{"execute":"query-migrate"}')
		case $st in
		*'"status": "completed"'*) echo "$st"; return 0 ;;
		*'"status": "failed"'*|*'"status": "cancelled"'*) echo "$st"; return 1 ;;
		esac
		sleep 2; t=$((t + 2))
	done
	echo "not finished after $4 s: $st"
	return 1
}

# "downtime N ms, vfio N bytes, total N ms" out of a completed query-migrate.
nested_migrate_summary() { # QUERY_MIGRATE_JSON
	python3 -c 'import json, sys
r = json.loads(sys.argv[1])["return"]
print("downtime %s ms, device state %s bytes, total %s ms" % (r.get("downtime"), r.get("vfio", {}).get("transferred"), r.get("total-time")))' "$1" 2>/dev/null ||
		echo "(unreadable: $1)"
}

# The bytes a source QEMU read from its VFIO devices between two of its
# vfio_save_* trace events in the last migration it made, from its log of
# them (-trace 'enable=vfio_save_*' -D LOG): per device, the data_size of
# the vfio_save_block events between its last START and the END after it.
# Prints the sum over the devices; fails if no device got from START to END.
qemu_save_bytes() { # LOG START END
	python3 -c 'import re, sys
start, end = sys.argv[2], sys.argv[3]
last, cur = {}, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"vfio_save_(\w+)\s+\((\S+)\)(?:\s+data_size (-?\d+))?", line)
    if not m:
        continue
    ev, dev, n = m.groups()
    if ev == start:
        cur[dev] = 0
    elif ev == "block" and dev in cur and n:
        cur[dev] += max(int(n), 0)
    elif ev == end and dev in cur:
        last[dev] = cur.pop(dev)
if not last:
    sys.exit(1)
print(sum(last.values()))' "$1" "$2" "$3" 2>/dev/null
}

# Stop-copy: from vfio_save_complete_precopy_start to vfio_save_complete_precopy.
qemu_stop_copy_bytes() { # LOG
	qemu_save_bytes "$1" complete_precopy_start complete_precopy
}

# The status of the QEMU on SOCK ("running", "paused", "postmigrate"...).
nested_qemu_status() { # SOCK
	qmp "$1" '{"execute":"query-status"}' 2>/dev/null | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p'
}

# A migration the destination must refuse, and its result line: not ok if it
# completed, or if the source no longer runs. Succeeds if it failed (the
# caller then checks the source's screen). usage: nested_migrate_refused
# NAME WHAT SRC_SOCK DST_SOCK URI
nested_migrate_refused() {
	local st status
	if st=$(nested_migrate "$3" "$4" "$5" 300); then
		result "not ok - $1: migration to $2 completed: $(nested_migrate_summary "$st")"
		return 1
	fi
	log "  refused: $(echo "$st" | grep -o '"error-desc": "[^"]*"')"
	status=$(nested_qemu_status "$3")
	if [ "$status" = running ]; then
		result "ok - $1: migration to $2 fails ($(echo "$st" | grep -o '"status": "[a-z]*"')), the source keeps running"
	else
		result "not ok - $1: after the refused migration the source is '$status', not running: $st"
	fi
}

# A live migration that must complete, and its result line: the destination
# must then run. Keeps query-migrate's answer in JSON_OUT. Fails if the
# migration did. usage: nested_migrate_live NAME SRC_SOCK DST_SOCK URI JSON_OUT
nested_migrate_live() {
	local st status
	if ! st=$(nested_migrate "$2" "$3" "$4" 600); then
		result "not ok - $1: live migration failed: $st"
		return 1
	fi
	echo "$st" > "$5"
	log "  migrated: $(nested_migrate_summary "$st")"
	status=$(nested_qemu_status "$3")
	if [ "$status" = running ]; then
		result "ok - $1: live migration of the running guest completed ($(nested_migrate_summary "$st")), the destination runs"
	else
		result "not ok - $1: migration completed, but the destination is '$status'"
	fi
}

# Watches the migration about to start (or under way) on the QEMU of SOCK
# until it has sent more than WANT bytes of device state (query-migrate's
# vfio "transferred"): query-migrate twice a second, from one process, on a
# connection of its own each time (the monitor serves one client at a time:
# nested_migrate gets its turn), each answer appended to PROGRESS_LOG as
# "+SECONDS STATUS vfio BYTES ram BYTES". The status of an earlier migration
# does not count until this one has started. Prints, and succeeds with:
# "reached SECONDS BYTES" (SECONDS since it was seen started); fails with
# "short SECONDS BYTES" after LIMIT seconds, or "ended STATUS SECONDS BYTES"
# if it ended first.
nested_migrate_watch_vfio() { # SOCK WANT LIMIT PROGRESS_LOG
	timeout $(($3 + 120)) python3 - "$@" <<'PY'
import json, socket, sys, time
path, want, limit, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def query():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    try:
        s.connect(path)
        f = s.makefile("rw")
        f.readline()  # greeting
        for c in ({"execute": "qmp_capabilities"}, {"execute": "query-migrate"}):
            f.write(json.dumps(c) + "\n"); f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    break
        return r.get("return", {})
    finally:
        s.close()
t0 = time.monotonic()
started = None
with open(log, "a") as out:
    while True:
        t = time.monotonic()
        try:
            r = query()
        except (OSError, ValueError):
            r = {}
        st = r.get("status", "?")
        vfio = r.get("vfio", {}).get("transferred", 0)
        out.write("+%.1fs %s vfio %d ram %d\n" % (t - t0, st, vfio, r.get("ram", {}).get("transferred", 0)))
        out.flush()
        if started is None and st in ("setup", "active", "device", "pre-switchover", "wait-unplug"):
            started = t
        since = t - (started or t0)
        if started is not None and st in ("completed", "failed", "cancelled"):
            print("ended %s %.0f %d" % (st, since, vfio)); sys.exit(1)
        if started is not None and vfio > want:
            print("reached %.0f %d" % (since, vfio)); sys.exit(0)
        if t - t0 >= limit:
            print("short %.0f %d" % (since, vfio)); sys.exit(1)
        time.sleep(0.5)
PY
}

# Pre-copy: from vfio_save_setup to vfio_save_complete_precopy_start (a
# migration that reached stop-copy).
qemu_precopy_bytes() { # LOG
	qemu_save_bytes "$1" setup complete_precopy_start
}
