#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Prints the lines of FILE that match REGEX as FILE grows, until killed.

usage: follow-log.py FILE REGEX

The test VM's progress on the host (vm_run in env.sh): the guest appends
its progress lines to a file in the shared directory; this polls it and
flushes every line. A file that shrinks (truncated and rewritten) is read
again from its start; one not there yet is waited for.
"""
import os
import re
import sys
import time


def main():
    path, pattern = sys.argv[1], re.compile(sys.argv[2].encode())
    off, rest = 0, b""
    while True:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        if size < off:
            off, rest = 0, b""
        if size > off:
            with open(path, "rb") as f:
                f.seek(off)
                data = f.read(size - off)
            off += len(data)
            *lines, rest = (rest + data).split(b"\n")
            for line in lines:
                if pattern.search(line):
                    sys.stdout.buffer.write(line + b"\n")
                    sys.stdout.flush()
        time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
