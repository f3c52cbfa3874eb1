/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test pattern the nested guests draw (fbdraw.c, kmsdraw.c). The very
 * same formula lives in ../screendump_check.py, which checks a screendump
 * against it pixel for pixel.
 */
#ifndef NESTED_PATTERN_H
#define NESTED_PATTERN_H

#include <stdint.h>

static const uint32_t pattern_bars[8] = {
	0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
};

/* Top half: eight colour bars. Bottom half: a red/green ramp with a blue XOR texture. */
static inline uint32_t pattern_pixel(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	if (y < h / 2)
		return pattern_bars[x * 8 / w];
	return ((x * 255 / (w - 1)) << 16) | ((y * 255 / (h - 1)) << 8) | ((x ^ y) & 0xff);
}

/* Draws the pattern into a w x h XRGB8888 buffer with @stride bytes a row. */
static inline void pattern_draw(uint8_t *buf, uint32_t w, uint32_t h, uint32_t stride)
{
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)(buf + (uint64_t)y * stride);

		for (uint32_t x = 0; x < w; x++)
			row[x] = pattern_pixel(x, y, w, h);
	}
}

#endif
