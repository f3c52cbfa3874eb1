// SPDX-License-Identifier: GPL-2.0
/*
 * The host's side of the hostile-guest test (guest-hostile.sh): while a
 * nested guest writes random values into the config space and registers of
 * its mdpy and mbochs devices, keep asking the devices for their display
 * plane, as QEMU's display would, and check every answer stays within the
 * device's limits.
 *
 * QEMU holds the VFIO devices open; this borrows its device fds with
 * pidfd_getfd(2) (as mbochs-dmabuf-read does) and tells the devices apart by
 * their PCI ids, read through the config region. Then, every few ms until
 * STOPFILE exists:
 *
 *   mdpy    QUERY_GFX_PLANE (REGION) succeeds and is the type's fixed mode:
 *           XRGB8888, the width and height of the config space's vendor
 *           capability (read once at start, and again each round: the guest
 *           must not be able to change them), stride width * 4, its size
 *           (the framebuffer's, as in the C sample) at least stride * height
 *           and within its region, an alias of BAR0 (index 16, as in C);
 *   mbochs  QUERY_GFX_PLANE (DMABUF) succeeds; either no plane (the guest's
 *           mode is off or invalid: drm_format and size 0), or an XRGB8888
 *           plane with width and height >= 64, stride >= width * 4, size =
 *           stride * height <= the VRAM (BAR0); its dma-buf is exported
 *           (GET_GFX_DMABUF), is the plane's size in whole pages (lseek),
 *           and can be mapped and read at both ends. A plane that does not
 *           start at a page boundary (the guest's x/y offsets) cannot be a
 *           dma-buf: GET_GFX_DMABUF's EINVAL is counted, not failed.
 *
 * Each ioctl's time is measured; the longest is reported. After STOPFILE:
 * one more round, in which mbochs must show FINAL (WxH, which the guest
 * set last). Prints a summary line; exits 0 if nothing failed.
 *
 * --c-sample: for the C samples, which would take the host down through
 * this checker's own calls (a second GET_GFX_DMABUF of an id is defect 4 of
 * Documentation/mdev-rs/c-sample-defects.rst): query only, and count the
 * ENOMEM of a new mode's first query (defect 3) instead of failing it.
 *
 * usage: hostile-plane-check QEMU_PID STOPFILE FINAL_WxH [--c-sample]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DRM_PLANE_TYPE_PRIMARY 1
#define FOURCC(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | \
			    ((uint32_t)(d) << 24))
#define DRM_FORMAT_XRGB8888 FOURCC('X', 'R', '2', '4')
#define MAX_DEVS 4
#define MAX_FAILS 5	/* printed per device */

enum kind { MDPY, MBOCHS };

struct dev {
	int fd;
	enum kind kind;
	uint64_t config_off, bar0_size;
	uint64_t display_size;		/* mdpy: the plane's region, once known */
	int fails;
	uint32_t width, height;		/* mdpy: the mode in config space */
	unsigned long queries, planes, none, dmabufs, unaligned, enomem;
	uint32_t last_w, last_h, modes;
};

static int fails, c_sample;
static uint64_t max_ns;

/* Counts a failure of device @d; prints the first few of each device. */
#define fail(d, ...) do { \
	fails++; \
	if ((d)->fails++ < MAX_FAILS) { printf("FAIL: " __VA_ARGS__); putchar('\n'); fflush(stdout); } \
} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int timed_ioctl(int fd, unsigned long req, void *arg)
{
	uint64_t t = now_ns();
	int ret = ioctl(fd, req, arg);

	t = now_ns() - t;
	if (t > max_ns)
		max_ns = t;
	return ret;
}

static int region(int fd, uint32_t index, uint64_t *off, uint64_t *size)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -1;
	*off = info.offset;
	*size = info.size;
	return 0;
}

static uint32_t config32(struct dev *d, uint32_t off)
{
	uint32_t v = 0;

	if (pread(d->fd, &v, 4, d->config_off + off) != 4)
		fail(d, "config read at 0x%x: %s", off, strerror(errno));
	return v;
}

/* Borrows every VFIO device fd of @pid; returns how many. */
static int borrow(int pid, struct dev *devs)
{
	char dir[64], path[320], link[256];
	struct dirent *de;
	int pidfd, n = 0;
	ssize_t len;
	DIR *dp;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	dp = opendir(dir);
	if (pidfd < 0 || !dp) {
		perror("pidfd_open / opendir");
		return 0;
	}
	while ((de = readdir(dp)) && n < MAX_DEVS) {
		struct dev *d = &devs[n];
		uint64_t size;
		uint32_t id;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (strcmp(link, "anon_inode:[vfio-device]") && strncmp(link, "/dev/vfio/devices/", 18))
			continue;
		memset(d, 0, sizeof(*d));
		d->fd = syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (d->fd < 0 || region(d->fd, VFIO_PCI_CONFIG_REGION_INDEX, &d->config_off, &size) ||
		    region(d->fd, VFIO_PCI_BAR0_REGION_INDEX, &size, &d->bar0_size)) {
			perror("borrowing a device fd");
			continue;
		}
		id = config32(d, 0);
		if (id == 0x000f1b36) {
			d->kind = MDPY;
			d->width = config32(d, 0x48);
			d->height = config32(d, 0x4c);
		} else if (id == 0x11111234) {
			d->kind = MBOCHS;
		} else {
			fail(d, "device fd %s: PCI id 0x%08x is neither mdpy nor mbochs", de->d_name, id);
			continue;
		}
		n++;
	}
	closedir(dp);
	close(pidfd);
	return n;
}

static void check_mdpy(struct dev *d)
{
	struct vfio_device_gfx_plane_info p = {
		.argsz = sizeof(p), .flags = VFIO_GFX_PLANE_TYPE_REGION,
		.drm_plane_type = DRM_PLANE_TYPE_PRIMARY,
	};

	uint64_t off;

	d->queries++;
	if (timed_ioctl(d->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p)) {
		fail(d, "mdpy QUERY_GFX_PLANE: %s", strerror(errno));
		return;
	}
	/* The plane's region (index 16, as in the C sample): an alias of BAR0. */
	if (!d->display_size && region(d->fd, p.region_index, &off, &d->display_size))
		fail(d, "mdpy: GET_REGION_INFO of the plane's region %u: %s", p.region_index,
		     strerror(errno));
	if (p.drm_format != DRM_FORMAT_XRGB8888 || p.width != d->width || p.height != d->height ||
	    p.stride != d->width * 4 || p.size < (uint64_t)p.stride * p.height ||
	    p.size > d->display_size || d->display_size != d->bar0_size)
		fail(d, "mdpy plane %ux%u stride %u size %u format 0x%x region %u (%llu bytes), want %ux%u XRGB8888 within a region of BAR0's size (%llu bytes)",
		     p.width, p.height, p.stride, p.size, p.drm_format, p.region_index,
		     (unsigned long long)d->display_size, d->width, d->height,
		     (unsigned long long)d->bar0_size);
	else
		d->planes++;
	if (config32(d, 0x48) != d->width || config32(d, 0x4c) != d->height)
		fail(d, "mdpy: the mode in config space changed to %ux%u", config32(d, 0x48),
		     config32(d, 0x4c));
}

/* Returns the plane's size as WxH in @w, @h (0 if none). */
static void check_mbochs(struct dev *d, uint32_t *w, uint32_t *h)
{
	struct vfio_device_gfx_plane_info p = {
		.argsz = sizeof(p), .flags = VFIO_GFX_PLANE_TYPE_DMABUF,
		.drm_plane_type = DRM_PLANE_TYPE_PRIMARY,
	};
	uint64_t page = sysconf(_SC_PAGESIZE);
	volatile uint8_t *map;
	uint32_t id;
	off_t size;
	int buf;

	*w = *h = 0;
	d->queries++;
	if (timed_ioctl(d->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p)) {
		if (c_sample && errno == ENOMEM)
			d->enomem++;
		else
			fail(d, "mbochs QUERY_GFX_PLANE: %s", strerror(errno));
		return;
	}
	if (p.drm_format == 0 && p.size == 0) {
		d->none++;
		return;
	}
	if (p.drm_format != DRM_FORMAT_XRGB8888 || p.width < 64 || p.height < 64 ||
	    p.stride < p.width * 4 || p.size != (uint64_t)p.stride * p.height ||
	    p.size > d->bar0_size) {
		fail(d, "mbochs plane %ux%u stride %u size %u format 0x%x: outside the limits (VRAM %llu bytes)",
		     p.width, p.height, p.stride, p.size, p.drm_format,
		     (unsigned long long)d->bar0_size);
		return;
	}
	d->planes++;
	if (p.width != d->last_w || p.height != d->last_h)
		d->modes++;
	d->last_w = *w = p.width;
	d->last_h = *h = p.height;
	if (c_sample)
		return;
	id = p.dmabuf_id;
	buf = timed_ioctl(d->fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);
	if (buf < 0 && errno == EINVAL) {
		/* A plane that does not start at a page boundary (the guest's
		 * x/y offset) cannot be a dma-buf: EINVAL, as in the C sample. */
		d->unaligned++;
		return;
	}
	if (buf < 0) {
		fail(d, "mbochs GET_GFX_DMABUF of plane %u (%ux%u): %s", id, p.width, p.height,
		     strerror(errno));
		return;
	}
	/* Whole pages (Documentation/mdev-rs/mbochs.rst), so all of it can be mapped. */
	size = lseek(buf, 0, SEEK_END);
	if (size != (off_t)((p.size + page - 1) / page * page))
		fail(d, "mbochs dma-buf of %ux%u: %lld bytes, plane says %u (want it in whole pages)",
		     p.width, p.height, (long long)size, p.size);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, buf, 0);
	if (map == MAP_FAILED) {
		fail(d, "mbochs dma-buf of %ux%u: mmap: %s", p.width, p.height, strerror(errno));
	} else {
		(void)map[0];
		(void)map[p.size - 1];
		munmap((void *)map, p.size);
		d->dmabufs++;
	}
	close(buf);
}

int main(int argc, char **argv)
{
	struct dev devs[MAX_DEVS];
	unsigned int final_w, final_h;
	unsigned long rounds = 0;
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	int n, i, k, stop = 0, tries;
	uint32_t w, h;

	c_sample = argc == 5 && !strcmp(argv[4], "--c-sample");
	if ((argc != 4 && !c_sample) || sscanf(argv[3], "%ux%u", &final_w, &final_h) != 2) {
		fprintf(stderr, "usage: %s QEMU_PID STOPFILE FINAL_WxH [--c-sample]\n", argv[0]);
		return 2;
	}
	n = borrow(atoi(argv[1]), devs);
	for (i = 0, k = 0; i < n; i++)
		k |= 1 << devs[i].kind;
	if (k != (1 << MDPY | 1 << MBOCHS)) {
		printf("FAIL: QEMU (pid %s) does not hold an mdpy and an mbochs device (%d found)\n",
		       argv[1], n);
		return 1;
	}
	while (!stop) {
		stop = access(argv[2], F_OK) == 0;
		for (i = 0; i < n; i++) {
			if (devs[i].kind == MDPY)
				check_mdpy(&devs[i]);
			else
				check_mbochs(&devs[i], &w, &h);
		}
		rounds++;
		nanosleep(&pause, NULL);
	}
	/* The guest set FINAL last: the device must show it (QEMU may lag a moment). */
	for (i = 0; i < n; i++) {
		if (devs[i].kind != MBOCHS)
			continue;
		for (tries = 0; tries < 50; tries++) {
			check_mbochs(&devs[i], &w, &h);
			if (w == final_w && h == final_h)
				break;
			nanosleep(&pause, NULL);
		}
		if (w != final_w || h != final_h)
			fail(&devs[i], "mbochs: after the guest set %ux%u, the plane is %ux%u", final_w, final_h, w, h);
	}
	for (i = 0; i < n; i++) {
		struct dev *d = &devs[i];

		if (d->kind == MDPY)
			printf("mdpy %ux%u: %lu queries, %lu the mode; ", d->width, d->height, d->queries,
			       d->planes);
		else
			printf("mbochs: %lu queries: %lu planes (%u mode changes seen, %lu dma-bufs exported and read, %lu not at a page boundary: EINVAL), %lu no plane%s; ",
			       d->queries, d->planes, d->modes, d->dmabufs, d->unaligned, d->none,
			       c_sample ? " (C sample: no dma-buf export)" : "");
		if (d->kind == MBOCHS && c_sample)
			printf("%lu ENOMEM (defect 3); ", d->enomem);
	}
	printf("%lu rounds, longest ioctl %.1f ms, %d failures\n", rounds, max_ns / 1e6, fails);
	return fails ? 1 : 0;
}
