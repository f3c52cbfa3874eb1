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


def read_png(data):
    """Width, height and RGB bytes of an 8-bit RGB or RGBA PNG (what QEMU's
    screendump writes with format png, as virsh screenshot asks it to)."""
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError(f"PNG depth {depth} colour type {ctype} interlace {interlace}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    if w is None:
        raise ValueError("PNG without IHDR")
    raw, stride = zlib.decompress(idat), w * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        out += line if bpp == 3 else b"".join(line[i:i + 3] for i in range(0, stride, 4))
        prev = line
    return w, h, bytes(out)


def read_image(path):
    """A screendump as (width, height, RGB): PPM, or PNG (virsh screenshot)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89PNG\r\n\x1a\n":
        with open(path, "rb") as f:
            return read_png(f.read())
    return read_ppm(path)


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
    w, h, rgb = read_image(shot)
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
