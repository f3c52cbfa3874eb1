#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare a screendump (PPM) with the test pattern of nested/pattern.h.

usage: screendump_check.py SHOT.ppm OUT.png [WxH]
Writes the screendump as PNG (for people to look at) and exits 0 only if
every pixel equals the pattern (and, given WxH, the screendump has that size:
the pattern of a stale mode would match itself).
"""
import struct
import sys
import zlib

BARS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000]


def pixel(x, y, w, h):
    """The pattern: same formula as pattern_pixel() in nested/pattern.h."""
    if y < h // 2:
        return BARS[x * 8 // w]
    return ((x * 255 // (w - 1)) << 16) | ((y * 255 // (h - 1)) << 8) | ((x ^ y) & 0xff)


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not an 8-bit P6 PPM")
    w, h = int(fields[1]), int(fields[2])
    return w, h, data[pos + 1:pos + 1 + w * h * 3]


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def main():
    shot, png = sys.argv[1], sys.argv[2]
    w, h, rgb = read_ppm(shot)
    write_png(png, w, h, rgb)
    if len(sys.argv) > 3 and sys.argv[3] != f"{w}x{h}":
        print(f"screendump {w}x{h}: want {sys.argv[3]}")
        return 1
    want = bytearray(w * h * 3)
    for y in range(h):
        for x in range(w):
            v = pixel(x, y, w, h)
            i = (y * w + x) * 3
            want[i:i + 3] = bytes(((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff))
    if rgb == bytes(want):
        print(f"screendump {w}x{h}: all {w * h} pixels match the pattern")
        return 0
    bad = [i // 3 for i in range(0, len(want), 3) if rgb[i:i + 3] != want[i:i + 3]]
    first = bad[0] if bad else 0
    rows = sorted({i // w for i in bad}) or [0]
    print(f"screendump {w}x{h}: {len(bad)} of {w * h} pixels differ, in {len(rows)} rows "
          f"({rows[0]}..{rows[-1]}); first at ({first % w},{first // w}): "
          f"got {rgb[first * 3:first * 3 + 3].hex()} "
          f"want {bytes(want[first * 3:first * 3 + 3]).hex()}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
