#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that a QEMU screendump (PPM) shows TEXT written by fbcon.

usage: fbcon_check.py SHOT.ppm OUT.png FONTDIR TEXT

The guest cleared its framebuffer console and wrote TEXT at the top left.
The expected pixels are rendered here from the kernel's own console fonts
(FONTDIR = lib/fonts of the guest kernel's source; fbcon picks 8x16 or
8x8): light grey (VGA colour 7, 0xaaaaaa) glyph pixels on black, and black
after the text. Exits 0 only if every pixel of the text's line matches
one of the fonts.
"""
import re
import sys

from screendump_check import read_ppm, write_png

FG, BG = b"\xaa\xaa\xaa", b"\x00\x00\x00"


def load_font(path, height):
    """The glyph bytes of a lib/fonts/font_8xN.c, 256 glyphs of `height` rows."""
    with open(path) as f:
        src = f.read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    body = src[src.index("FONTDATAMAX, 0 }"):]
    data = [int(v, 16) for v in re.findall(r"0x([0-9a-fA-F]{2})", body)]
    if len(data) < 256 * height:
        raise ValueError(f"{path}: {len(data)} bytes, want {256 * height}")
    return data


def expected_line(text, font, height, w):
    """Rows of the text line: glyphs, then black up to the screen width."""
    rows = []
    for r in range(height):
        row = bytearray()
        for ch in text:
            bits = font[ord(ch) * height + r]
            for b in range(8):
                row += FG if bits & (0x80 >> b) else BG
        row += BG * (w - 8 * len(text))
        rows.append(bytes(row))
    return rows


def main():
    shot, png, fontdir, text = sys.argv[1:5]
    w, h, rgb = read_ppm(shot)
    write_png(png, w, h, rgb)
    best = None
    for height in (16, 8):
        font = load_font(f"{fontdir}/font_8x{height}.c", height)
        want = expected_line(text, font, height, w)
        bad = sum(1 for r in range(height) for x in range(w)
                  if rgb[(r * w + x) * 3:(r * w + x) * 3 + 3] != want[r][x * 3:x * 3 + 3])
        if bad == 0:
            print(f"screendump {w}x{h}: '{text}' rendered by fbcon in font 8x{height}, "
                  f"all {w * height} pixels of the line match")
            return 0
        if best is None or bad < best[1]:
            best = (height, bad)
    print(f"screendump {w}x{h}: the text line does not match '{text}': "
          f"best font 8x{best[0]} with {best[1]} differing pixels")
    return 1


if __name__ == "__main__":
    sys.exit(main())
