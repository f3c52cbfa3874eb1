// SPDX-License-Identifier: GPL-2.0
/*
 * Draws the test pattern (pattern.h) into a 32 bpp XRGB8888 framebuffer
 * device.
 *
 * usage: fbdraw [/dev/fbN]
 *        fbdraw --flush /dev/fbN
 *        fbdraw --hold /dev/fbN
 *
 * --flush is for DRM fbdev emulation with a shadow buffer (bochs): writes
 * to the mapping reach the device only when deferred I/O and the damage
 * worker get to them, asynchronously. After drawing, a pan to the current
 * offset commits the whole plane synchronously (a commit without damage
 * clips copies everything), so when fbdraw returns the device's memory
 * holds the whole pattern.
 *
 * --hold maps the framebuffer, prints "fbdraw: holding", waits for a line on
 * stdin (meanwhile the test unbinds the device), then writes through the
 * still-live mapping, unmaps and closes: the driver must keep the memory
 * valid until then.
 */
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

int main(int argc, char **argv)
{
	int hold = argc > 2 && !strcmp(argv[1], "--hold");
	int flush = argc > 2 && !strcmp(argv[1], "--flush");
	const char *dev = argc > 1 ? argv[argc - 1] : "/dev/fb0";
	struct fb_var_screeninfo var;
	struct fb_fix_screeninfo fix;
	uint8_t *fb;
	int fd;

	fd = open(dev, O_RDWR);
	if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, &var) || ioctl(fd, FBIOGET_FSCREENINFO, &fix)) {
		perror(dev);
		return 1;
	}
	if (var.bits_per_pixel != 32) {
		fprintf(stderr, "%s: %u bpp, want 32\n", dev, var.bits_per_pixel);
		return 1;
	}
	fb = mmap(NULL, fix.smem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fb == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (hold) {
		char line[16];

		printf("fbdraw: holding %s\n", dev);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		memset(fb, 0x5a, fix.smem_len);
		munmap(fb, fix.smem_len);
		close(fd);
		printf("fbdraw: released %s\n", dev);
		return 0;
	}
	pattern_draw(fb, var.xres, var.yres, fix.line_length);
	msync(fb, fix.smem_len, MS_SYNC);
	if (flush && ioctl(fd, FBIOPAN_DISPLAY, &var)) {
		perror("FBIOPAN_DISPLAY");
		return 1;
	}
	printf("fbdraw: %ux%u stride %u drawn on %s\n", var.xres, var.yres, fix.line_length, dev);
	return 0;
}
