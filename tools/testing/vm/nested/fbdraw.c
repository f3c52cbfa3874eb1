// SPDX-License-Identifier: GPL-2.0
/*
 * Draws the test pattern (pattern.h) into a 32 bpp XRGB8888 framebuffer
 * device.
 *
 * usage: fbdraw [/dev/fbN]
 *        fbdraw --flush /dev/fbN
 *        fbdraw --hold /dev/fbN
 *        fbdraw --redraw /dev/fbN
 *
 * --flush is for DRM fbdev emulation with a shadow buffer (bochs): writes
 * to the mapping reach the device only when deferred I/O and the damage
 * worker get to them, asynchronously. After drawing, a pan to the current
 * offset commits the whole plane synchronously (a commit without damage
 * clips copies everything), so when fbdraw returns the device's memory
 * holds the whole pattern. A driver that draws straight into the device
 * (mdpy-fb) has nothing to flush: its EINVAL to the pan is not an error.
 *
 * --hold (for the Rust mdpy-fb) checks that a private writable mapping is
 * refused, maps the framebuffer shared and fills it (faulting in every
 * page), prints "fbdraw: holding", waits for a line on stdin (meanwhile the
 * test unbinds the device), then checks that the old mapping no longer
 * reaches the device (a write and a read raise SIGBUS) and that mmap() fails
 * with ENODEV, unmaps and closes.
 *
 * --redraw keeps redrawing the whole screen with the pattern's own pixels,
 * as fast as it can (row by row, from a copy of the pattern made once),
 * until SIGTERM: a guest that keeps changing all of its screen while it is
 * migrated (every page is what pre-copy must send again), while every
 * screendump still shows the pattern. On SIGTERM it finishes the row it is
 * writing and prints "fbdraw: redrew WxH N.NN times in S.S s".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

static sigjmp_buf probe_env;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(probe_env, 1);
}

/* Whether a write (or a read) of *p raises SIGBUS. */
static int raises_sigbus(volatile uint32_t *p, int write)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(probe_env, 1)) {
		sigaction(SIGBUS, &old, NULL);
		return 1;
	}
	if (write)
		*p = 0xa5a5a5a5;
	else
		(void)*p;
	sigaction(SIGBUS, &old, NULL);
	return 0;
}

/* --hold: see the top of the file. */
static int hold_across_unbind(const char *dev, int fd, uint8_t *fb, uint32_t len)
{
	volatile uint32_t *px = (volatile uint32_t *)fb;
	uint32_t n = len / 4;
	char line[16];
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p != MAP_FAILED || errno != EINVAL) {
		fprintf(stderr, "fbdraw: MAP_PRIVATE mmap of %s: want EINVAL\n", dev);
		return 1;
	}
	printf("fbdraw: MAP_PRIVATE refused\n");
	memset(fb, 0x5a, len);
	for (uint32_t i = 0; i < n; i += 1024) {
		if (px[i] != 0x5a5a5a5au) {
			fprintf(stderr, "fbdraw: %s reads back 0x%08x at %u\n", dev, px[i], i * 4);
			return 1;
		}
	}
	printf("fbdraw: holding %s\n", dev);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	/* The device is unbound now: the pages faulted in above must be gone. */
	if (!raises_sigbus(&px[0], 1) || !raises_sigbus(&px[n - 1], 0)) {
		fprintf(stderr, "fbdraw: the mapping of %s still reaches the device\n", dev);
		return 1;
	}
	printf("fbdraw: SIGBUS after unbind\n");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != ENODEV) {
		fprintf(stderr, "fbdraw: mmap of %s after unbind: want ENODEV\n", dev);
		return 1;
	}
	printf("fbdraw: mmap after unbind ENODEV\n");
	munmap(fb, len);
	close(fd);
	printf("fbdraw: released %s\n", dev);
	return 0;
}

static volatile sig_atomic_t redraw_stop;

static void on_sigterm(int sig)
{
	(void)sig;
	redraw_stop = 1;
}

/* --redraw: see the top of the file. */
static int redraw_until_sigterm(uint8_t *fb, uint32_t w, uint32_t h, uint32_t stride)
{
	struct sigaction sa = { .sa_handler = on_sigterm };
	uint64_t rows = 0;
	struct timespec t0, t1;
	uint32_t *pat;
	double secs;

	sigaction(SIGTERM, &sa, NULL);
	pat = malloc((size_t)w * h * 4);
	if (!pat) {
		perror("fbdraw: malloc");
		return 1;
	}
	pattern_draw((uint8_t *)pat, w, h, w * 4);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("fbdraw: redrawing the whole %ux%u screen\n", w, h);
	fflush(stdout);
	while (!redraw_stop) {
		memcpy(fb + (uint64_t)(rows % h) * stride, pat + (uint64_t)(rows % h) * w, (size_t)w * 4);
		rows++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("fbdraw: redrew %ux%u %.2f times in %.1f s\n", w, h, (double)rows / h, secs);
	return 0;
}

int main(int argc, char **argv)
{
	int redraw = argc > 2 && !strcmp(argv[1], "--redraw");
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
	if (hold)
		return hold_across_unbind(dev, fd, fb, fix.smem_len);
	if (redraw)
		return redraw_until_sigterm(fb, var.xres, var.yres, fix.line_length);
	pattern_draw(fb, var.xres, var.yres, fix.line_length);
	msync(fb, fix.smem_len, MS_SYNC);
	/*
	 * A driver without panning (mdpy-fb draws straight into the BAR)
	 * answers EINVAL: it has no shadow buffer to flush.
	 */
	if (flush && ioctl(fd, FBIOPAN_DISPLAY, &var) && errno != EINVAL) {
		perror("FBIOPAN_DISPLAY");
		return 1;
	}
	printf("fbdraw: %ux%u stride %u drawn on %s\n", var.xres, var.yres, fix.line_length, dev);
	return 0;
}
