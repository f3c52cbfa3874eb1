// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal KMS client: sets each given mode in turn on the first connected
 * connector of a DRM device, each time on a new XRGB8888 dumb buffer with
 * the test pattern (pattern.h) drawn in it, and waits for the host after
 * each. Raw DRM ioctls, no libdrm (the nested initramfs has no libraries).
 *
 * usage: kmsdraw /dev/dri/cardN WxH...
 *
 * For each mode: CREATE_DUMB, ADDFB, MAP_DUMB, draw, SETCRTC. The pattern is
 * drawn before the mode is set: SETCRTC is a blocking commit, and bochs (a
 * shadow-plane driver) copies the damage, all of a new framebuffer, to VRAM
 * and programs the DISPI registers in it. So when "NESTED-WAIT kms-WxH" is
 * printed, the device's VRAM holds the whole pattern in mode WxH. Then
 * kmsdraw reads a line from stdin (the host's go-ahead) and sets the next
 * mode. The mode must be in the connector's list (EDID or the driver's
 * defaults).
 *
 * DRM fbdev emulation cannot change the resolution (FBIOPUT_VSCREENINFO
 * keeps the mode it was given), hence this client.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/drm_mode.h>

#include "pattern.h"

#define PTR(p) ((uint64_t)(uintptr_t)(p))

static int drm_ioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do
		ret = ioctl(fd, req, arg);
	while (ret && (errno == EINTR || errno == EAGAIN));
	return ret;
}

static void die(const char *what)
{
	fprintf(stderr, "kmsdraw: %s: %s\n", what, strerror(errno));
	printf("NESTED-FAIL kmsdraw: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct output {
	uint32_t connector, crtc;
	struct drm_mode_modeinfo *modes;
	uint32_t nmodes;
};

/* The first connected connector, its modes and a CRTC that can drive it. */
static void find_output(int fd, struct output *out)
{
	struct drm_mode_card_res res = { 0 };
	uint32_t *conns, *crtcs, *encs;

	if (drm_ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res))
		die("GETRESOURCES");
	conns = calloc(res.count_connectors + 1, sizeof(*conns));
	crtcs = calloc(res.count_crtcs + 1, sizeof(*crtcs));
	encs = calloc(res.count_encoders + 1, sizeof(*encs));
	if (!conns || !crtcs || !encs)
		die("calloc");
	res.connector_id_ptr = PTR(conns);
	res.crtc_id_ptr = PTR(crtcs);
	res.encoder_id_ptr = PTR(encs);
	res.fb_id_ptr = 0;
	res.count_fbs = 0;
	if (drm_ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res))
		die("GETRESOURCES");

	for (uint32_t i = 0; i < res.count_connectors; i++) {
		struct drm_mode_get_connector c = { .connector_id = conns[i] };
		struct drm_mode_get_encoder e = { 0 };

		/* count_modes 0: the kernel probes the connector first */
		if (drm_ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c))
			die("GETCONNECTOR");
		if (c.connection != 1 || !c.count_modes)
			continue;
		out->modes = calloc(c.count_modes, sizeof(*out->modes));
		if (!out->modes)
			die("calloc");
		c.modes_ptr = PTR(out->modes);
		c.count_props = 0;
		c.count_encoders = 0;
		if (drm_ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c))
			die("GETCONNECTOR");
		out->connector = conns[i];
		out->nmodes = c.count_modes;
		out->crtc = crtcs[0];
		e.encoder_id = c.encoder_id ? c.encoder_id : encs[0];
		if (!drm_ioctl(fd, DRM_IOCTL_MODE_GETENCODER, &e)) {
			if (e.crtc_id) {
				out->crtc = e.crtc_id;
			} else {
				for (uint32_t k = 0; k < res.count_crtcs; k++) {
					if (e.possible_crtcs & (1u << k)) {
						out->crtc = crtcs[k];
						break;
					}
				}
			}
		}
		free(conns);
		free(crtcs);
		free(encs);
		return;
	}
	errno = ENODEV;
	die("no connected connector");
}

/* Sets mode w x h on a new dumb buffer with the pattern in it. */
static void show(int fd, const struct output *out, uint32_t w, uint32_t h)
{
	struct drm_mode_modeinfo *mode = NULL;
	struct drm_mode_create_dumb create = { .width = w, .height = h, .bpp = 32 };
	struct drm_mode_fb_cmd fb = { .width = w, .height = h, .bpp = 32, .depth = 24 };
	struct drm_mode_map_dumb map = { 0 };
	struct drm_mode_crtc crtc = { 0 };
	uint32_t conn = out->connector;
	uint8_t *buf;

	for (uint32_t i = 0; i < out->nmodes && !mode; i++)
		if (out->modes[i].hdisplay == w && out->modes[i].vdisplay == h)
			mode = &out->modes[i];
	if (!mode) {
		fprintf(stderr, "kmsdraw: %ux%u is not among the connector's modes:", w, h);
		for (uint32_t i = 0; i < out->nmodes; i++)
			fprintf(stderr, " %s", out->modes[i].name);
		fprintf(stderr, "\n");
		errno = EINVAL;
		die("mode not offered");
	}
	if (drm_ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &create))
		die("CREATE_DUMB");
	fb.pitch = create.pitch;
	fb.handle = create.handle;
	if (drm_ioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb))
		die("ADDFB");
	map.handle = create.handle;
	if (drm_ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map))
		die("MAP_DUMB");
	buf = mmap(NULL, create.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, map.offset);
	if (buf == MAP_FAILED)
		die("mmap");
	pattern_draw(buf, w, h, create.pitch);
	munmap(buf, create.size);

	crtc.crtc_id = out->crtc;
	crtc.fb_id = fb.fb_id;
	crtc.set_connectors_ptr = PTR(&conn);
	crtc.count_connectors = 1;
	crtc.mode = *mode;
	crtc.mode_valid = 1;
	if (drm_ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &crtc))
		die("SETCRTC");
	printf("NESTED-KMS %ux%u mode %s fb %u pitch %u crtc %u connector %u\n", w, h, mode->name,
	       fb.fb_id, create.pitch, out->crtc, out->connector);
}

int main(int argc, char **argv)
{
	struct output out = { 0 };
	char line[64];
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3) {
		fprintf(stderr, "usage: %s /dev/dri/cardN WxH...\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die(argv[1]);
	find_output(fd, &out);
	for (int i = 2; i < argc; i++) {
		unsigned int w, h;

		if (sscanf(argv[i], "%ux%u", &w, &h) != 2 || w < 2 || h < 2) {
			errno = EINVAL;
			die(argv[i]);
		}
		show(fd, &out, w, h);
		printf("NESTED-WAIT kms-%ux%u\n", w, h);
		if (!fgets(line, sizeof(line), stdin))
			die("waiting for the host");
	}
	return 0;
}
