// SPDX-License-Identifier: GPL-2.0
/*
 * Reads the guest's primary plane out of a running QEMU's mbochs device, as
 * a dma-buf, and writes it as a PPM (checked by screendump_check.py).
 *
 * QEMU holds the VFIO device open (and a VFIO device can be opened only once
 * through its group), so this client borrows QEMU's own device fd with
 * pidfd_getfd(2), the way a debugger would. Then it does what a display does:
 * VFIO_DEVICE_QUERY_GFX_PLANE (DMABUF, primary plane), VFIO_DEVICE_GET_GFX_DMABUF
 * for the plane's id, mmap of the dma-buf fd, DMA_BUF_IOCTL_SYNC around the
 * read. Pause QEMU (QMP "stop") first so the guest cannot draw meanwhile.
 *
 * Needs CAP_SYS_PTRACE over QEMU (run as root). The C sample fails here by
 * design: its dma-buf cannot be mmapped (defect 16), and a second
 * GET_GFX_DMABUF for an id QEMU already exported breaks its refcount
 * (defect 4), so the caller runs this against the Rust mbochs only.
 *
 * usage: mbochs-dmabuf-read QEMU_PID OUT.ppm [--query-only]
 * (--query-only: print the plane, export nothing; safe on the C sample)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DRM_PLANE_TYPE_PRIMARY 1
#define FOURCC(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | \
			    ((uint32_t)(d) << 24))
#define DRM_FORMAT_XRGB8888 FOURCC('X', 'R', '2', '4')

/* The fd number of the VFIO device in process @pid, or -1. */
static int find_vfio_device_fd(int pid)
{
	char dir[64], path[320], link[256];
	struct dirent *de;
	int found = -1;
	ssize_t n;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		/* group path: anon inode; iommufd path: the device's cdev */
		if (!strcmp(link, "anon_inode:[vfio-device]") ||
		    !strncmp(link, "/dev/vfio/devices/", 18)) {
			if (found >= 0) {
				fprintf(stderr, "more than one VFIO device in pid %d\n", pid);
				found = -1;
				break;
			}
			found = atoi(de->d_name);
		}
	}
	closedir(d);
	return found;
}

int main(int argc, char **argv)
{
	struct vfio_device_gfx_plane_info plane;
	struct dma_buf_sync sync;
	int pid, pidfd, remote, dev, buf;
	uint8_t *map, *rgb;
	FILE *out;

	if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "--query-only"))) {
		fprintf(stderr, "usage: %s QEMU_PID OUT.ppm [--query-only]\n", argv[0]);
		return 2;
	}
	pid = atoi(argv[1]);
	remote = find_vfio_device_fd(pid);
	if (remote < 0) {
		fprintf(stderr, "no VFIO device fd in pid %d\n", pid);
		return 1;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		perror("pidfd_open");
		return 1;
	}
	dev = syscall(SYS_pidfd_getfd, pidfd, remote, 0);
	if (dev < 0) {
		perror("pidfd_getfd");
		return 1;
	}

	memset(&plane, 0, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
	plane.drm_plane_type = DRM_PLANE_TYPE_PRIMARY;
	if (ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &plane)) {
		perror("VFIO_DEVICE_QUERY_GFX_PLANE");
		return 1;
	}
	printf("plane: %ux%u stride %u size %u format %.4s dmabuf id %u\n", plane.width,
	       plane.height, plane.stride, plane.size, (char *)&plane.drm_format, plane.dmabuf_id);
	if (!plane.width || !plane.height || plane.drm_format != DRM_FORMAT_XRGB8888 ||
	    plane.stride < plane.width * 4 || (uint64_t)plane.stride * plane.height > plane.size) {
		fprintf(stderr, "no usable XRGB8888 primary plane (guest mode not set?)\n");
		return 1;
	}
	if (argc == 4)
		return 0;

	buf = ioctl(dev, VFIO_DEVICE_GET_GFX_DMABUF, &plane.dmabuf_id);
	if (buf < 0) {
		perror("VFIO_DEVICE_GET_GFX_DMABUF");
		return 1;
	}
	map = mmap(NULL, plane.size, PROT_READ, MAP_SHARED, buf, 0);
	if (map == MAP_FAILED) {
		perror("mmap dma-buf");
		return 1;
	}
	sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
	if (ioctl(buf, DMA_BUF_IOCTL_SYNC, &sync)) {
		perror("DMA_BUF_IOCTL_SYNC start");
		return 1;
	}
	rgb = malloc((size_t)plane.width * plane.height * 3);
	if (!rgb)
		return 1;
	for (uint32_t y = 0; y < plane.height; y++) {
		const uint32_t *row = (const uint32_t *)(map + (size_t)y * plane.stride);

		for (uint32_t x = 0; x < plane.width; x++) {
			uint8_t *p = rgb + ((size_t)y * plane.width + x) * 3;

			p[0] = row[x] >> 16;
			p[1] = row[x] >> 8;
			p[2] = row[x];
		}
	}
	sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
	if (ioctl(buf, DMA_BUF_IOCTL_SYNC, &sync)) {
		perror("DMA_BUF_IOCTL_SYNC end");
		return 1;
	}
	munmap(map, plane.size);
	close(buf);
	close(dev);
	close(pidfd);

	out = fopen(argv[2], "wb");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	fprintf(out, "P6\n%u %u\n255\n", plane.width, plane.height);
	if (fwrite(rgb, 3, (size_t)plane.width * plane.height, out) !=
	    (size_t)plane.width * plane.height || fclose(out)) {
		perror(argv[2]);
		return 1;
	}
	free(rgb);
	return 0;
}
