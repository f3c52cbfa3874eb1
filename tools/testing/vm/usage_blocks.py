#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the shell blocks of Documentation/mdev-rs/usage.rst into a script.

usage: usage_blocks.py USAGE_RST WHERE    (WHERE: host or vm)

Every ``.. code-block:: sh`` of the page is one block, run in page order
by one bash (so a block sees the variables of those before it). The
``.. usage-test:`` comments just before a block say how the test runs it:
  host             the block runs on the host (before the VM), not in it
  sub "OLD" "NEW"  replace OLD by NEW in the block (host-specific values)
  then CMD         after the block, the test's own check CMD (a function of
                   guest-usage.sh)
  before CMD       before the block, the test's own setup CMD (what a user's
                   host has already and the test VM has not: a daemon)
Prints a bash script that calls usage_begin N TITLE FIRST_LINE before each
block of WHERE and usage_end after its checks (both defined by the caller);
the blocks of the other place are listed as usage_elsewhere N TITLE.
"""
import re
import shlex
import sys

def blocks(path):
    lines = open(path).read().split("\n")
    title, directives, out, i = "", [], [], 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.fullmatch(r"[=\-~]{3,}", lines[i + 1]) and line.strip():
            title = line.strip()
        m = re.match(r"\.\. usage-test: (.*)$", line)
        if m:
            directives.append(shlex.split(m.group(1)))
        elif line.strip() == ".. code-block:: sh":
            i += 1
            body = []
            while i < len(lines) and (lines[i].strip() == "" or lines[i].startswith("   ")):
                body.append(lines[i][3:])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            while body and not body[0].strip():
                body.pop(0)
            out.append((title, directives, "\n".join(body)))
            directives = []
            continue
        i += 1
    return out

def main():
    path, where = sys.argv[1], sys.argv[2]
    print("# generated from %s by usage_blocks.py: the blocks for the %s" % (path, where))
    all_blocks = blocks(path)
    if not all_blocks:
        sys.exit("no shell block in " + path)
    print("USAGE_TOTAL=%d" % len(all_blocks))
    for n, (title, directives, body) in enumerate(all_blocks, 1):
        host = any(d == ["host"] for d in directives)
        if host != (where == "host"):
            print("usage_elsewhere %d %s" % (n, shlex.quote(title)))
            continue
        checks, setup = [], []
        for d in directives:
            if d[0] == "sub":
                if len(d) != 3 or d[1] not in body:
                    sys.exit("block %d (%s): substitution %r does not apply" % (n, title, d))
                body = body.replace(d[1], d[2])
            elif d[0] == "then":
                checks.append(" ".join(d[1:]))
            elif d[0] == "before":
                setup.append(" ".join(d[1:]))
            elif d != ["host"]:
                sys.exit("block %d: unknown directive %r" % (n, d))
        first = body.split("\n")[0]
        print("usage_begin %d %s %s" % (n, shlex.quote(title), shlex.quote(first)))
        for c in setup:
            print(c)
        print(body)
        for c in checks:
            print(c)
        print("usage_end")

main()
