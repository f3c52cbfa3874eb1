// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest for mdpy, the VFIO mdev region-display sample, run against
 * either the C sample (MDEV_IMPL=c) or the Rust module (MDEV_IMPL=rust).
 *
 * Every test runs twice: with the device opened through an iommufd cdev and
 * through the legacy group/container. Tests named defect_N_* expose defect N
 * of the C sample (see Documentation/mdev-rs/c-sample-defects.rst): they are
 * expected to fail on C and must pass on Rust; tools/testing/vm/tap-verdict.sh
 * applies that rule. Environment: MDPY_TYPE (default mdpy-xga), MDPY_COUNT
 * (the module's count parameter, default 4).
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/wait.h>

#include "mdev_lib.h"
#include "kselftest_harness.h"

/*
 * Each test's time limit (the harness's default is 30 s). Measured in
 * check-full on every type (out/test/times-*.txt, 2026-12-07): at most
 * 5.4 s a test, but pool_accounting (14 s, its own limit below) and the
 * pre-copy tests that set theirs. 60 s is ten times the slowest: room for a
 * machine twice as slow with a second VM beside it. A test killed at its
 * limit leaves its mdevs to the next test's mdev_create() (mdev_lib.h).
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 60
#include "module_param_checks.h"
#include "pci_config_checks.h"

#define CONFIG_INDEX VFIO_PCI_CONFIG_REGION_INDEX
#define BAR0_INDEX VFIO_PCI_BAR0_REGION_INDEX
#define DISPLAY_INDEX 16
#define XRGB8888 0x34325258 /* 'XR24' */

struct mdpy_type {
	const char *name;
	uint32_t width, height;
};

static const struct mdpy_type types[] = {
	{ "mdpy-vga", 640, 480 },
	{ "mdpy-xga", 1024, 768 },
	{ "mdpy-hd", 1920, 1080 },
};

static const struct mdpy_type *type_under_test(void)
{
	const char *name = getenv("MDPY_TYPE") ?: "mdpy-xga";

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return &types[1];
}

static uint64_t pow2_roundup(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

FIXTURE(mdpy) {
	char uuid[40];
	const struct mdpy_type *type;
	struct vfio_handle h;
	int fd;
	uint64_t memsize;
	off_t bar0;
};

FIXTURE_VARIANT(mdpy) {
	bool cdev;
};

FIXTURE_VARIANT_ADD(mdpy, iommufd_cdev) {
	.cdev = true,
};

FIXTURE_VARIANT_ADD(mdpy, group_container) {
	.cdev = false,
};

FIXTURE_SETUP(mdpy)
{
	struct vfio_region_info info;
	int ret;

	self->type = type_under_test();
	self->memsize = pow2_roundup((uint64_t)self->type->width * self->type->height * 4);
	gen_uuid(self->uuid);
	ret = mdev_create("mdpy", self->type->name, self->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create %s: %s", self->type->name, strerror(-ret));
	ret = vfio_open(self->uuid, variant->cdev, &self->h);
	ASSERT_EQ(0, ret) TH_LOG("vfio open: %s", strerror(-ret));
	self->fd = self->h.device;
	ASSERT_EQ(0, region_info(self->fd, BAR0_INDEX, &info));
	self->bar0 = info.offset;
}

FIXTURE_TEARDOWN(mdpy)
{
	vfio_close(&self->h);
	EXPECT_EQ(0, mdev_remove(self->uuid));
}

/* ---- device, region and irq info ---------------------------------------- */

TEST_F(mdpy, device_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_EQ(VFIO_PCI_NUM_REGIONS, info.num_regions);
	EXPECT_EQ(VFIO_PCI_NUM_IRQS, info.num_irqs);
}

TEST_F(mdpy, device_info_short_argsz)
{
	struct vfio_device_info info = { .argsz = 8 };

	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(mdpy, region_info_config)
{
	struct vfio_region_info info;

	ASSERT_EQ(0, region_info(self->fd, CONFIG_INDEX, &info));
	EXPECT_EQ(0, info.offset);
	EXPECT_GE(info.size, 0xff);
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, info.flags);
}

TEST_F(mdpy, region_info_bar0_and_display)
{
	struct vfio_region_info bar0, disp;
	uint32_t rwm = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		       VFIO_REGION_INFO_FLAG_MMAP;

	ASSERT_EQ(0, region_info(self->fd, BAR0_INDEX, &bar0));
	EXPECT_EQ(getpagesize(), bar0.offset);
	EXPECT_EQ(self->memsize, bar0.size);
	EXPECT_EQ(rwm, bar0.flags);
	ASSERT_EQ(0, region_info(self->fd, DISPLAY_INDEX, &disp));
	EXPECT_EQ(bar0.offset, disp.offset);
	EXPECT_EQ(bar0.size, disp.size);
	EXPECT_EQ(bar0.flags, disp.flags);
}

TEST_F(mdpy, region_info_other_indices)
{
	struct vfio_region_info info;
	uint32_t bad[] = { 9, 10, 15, 17, 100, 0xffffffff };

	for (uint32_t i = 1; i < VFIO_PCI_NUM_REGIONS; i++) {
		if (i == CONFIG_INDEX)
			continue;
		ASSERT_EQ(0, region_info(self->fd, i, &info)) TH_LOG("index %u", i);
		EXPECT_EQ(0, info.size) TH_LOG("index %u", i);
		EXPECT_EQ(0, info.flags) TH_LOG("index %u", i);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, region_info(self->fd, bad[i], &info)) TH_LOG("index %u", bad[i]);
	}
}

TEST_F(mdpy, region_info_short_argsz)
{
	struct vfio_region_info info = { .argsz = 8, .index = BAR0_INDEX };

	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(mdpy, irq_info)
{
	struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
	struct vfio_irq_info info = { .argsz = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_INFO, &dinfo));
	for (uint32_t i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
		info.index = i;
		info.count = 42;
		ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &info)) TH_LOG("irq %u", i);
		EXPECT_EQ(0, info.count);
	}
	info.index = VFIO_PCI_NUM_IRQS;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	info.index = 0;
	info.argsz = 8;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
}

/* C defect 11: GET_IRQ_INFO only works after GET_INFO was called. */
TEST_F(mdpy, defect_11_irq_info_without_get_info)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_INTX_IRQ_INDEX };

	EXPECT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &info)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, info.count);
}

TEST_F(mdpy, set_irqs_and_unknown_ioctls)
{
	struct vfio_irq_set set = { .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_NONE |
				    VFIO_IRQ_SET_ACTION_TRIGGER };
	uint32_t id[4] = { sizeof(id), 0, 1, 0 };

	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_SET_IRQS, &set));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_GFX_DMABUF, id));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VFIO_TYPE, VFIO_BASE + 60), NULL));
	EXPECT_EQ(ENOTTY, errno);
}

/* ---- config space ------------------------------------------------------- */

TEST_F(mdpy, config_identity)
{
	uint8_t cfg[0x50];
	uint32_t v;

	ASSERT_EQ(sizeof(cfg), rd(self->fd, cfg, sizeof(cfg), 0));
	EXPECT_EQ(0x1b36, cfg[0] | cfg[1] << 8);		/* vendor */
	EXPECT_EQ(0x000f, cfg[2] | cfg[3] << 8);		/* device */
	EXPECT_EQ(0x0003, cfg[4] | cfg[5] << 8);		/* command: IO | MEM */
	EXPECT_EQ(0x0010, cfg[6] | cfg[7] << 8);		/* status: cap list */
	EXPECT_EQ(0x01, cfg[8]);				/* revision */
	EXPECT_EQ(0x0380, cfg[0xa] | cfg[0xb] << 8);		/* class: display other */
	EXPECT_EQ(0x1af4, cfg[0x2c] | cfg[0x2d] << 8);	/* subsystem vendor */
	EXPECT_EQ(0x1100, cfg[0x2e] | cfg[0x2f] << 8);	/* subsystem */
	EXPECT_EQ(0x40, cfg[0x34]);				/* capabilities */
	EXPECT_EQ(0x09, cfg[0x40]);				/* vendor specific */
	EXPECT_EQ(0x00, cfg[0x41]);				/* last one */
	EXPECT_EQ(0x10, cfg[0x42]);				/* length */
	memcpy(&v, &cfg[0x44], 4);
	EXPECT_EQ(XRGB8888, v);
	memcpy(&v, &cfg[0x48], 4);
	EXPECT_EQ(self->type->width, v);
	memcpy(&v, &cfg[0x4c], 4);
	EXPECT_EQ(self->type->height, v);
	/* the same through dword, word and byte reads */
	EXPECT_EQ(0x000f1b36, rd32(self->fd, 0));
	EXPECT_EQ(self->type->width, rd32(self->fd, 0x48));
}

TEST_F(mdpy, config_bar0_sizing)
{
	uint32_t mask = ~(uint32_t)(self->memsize - 1);
	uint32_t addr = 0xe0000000;

	EXPECT_EQ(0x8, rd32(self->fd, 0x10) & 0xf);		/* mem32, prefetchable */
	ASSERT_EQ(0, wr32(self->fd, 0x10, 0xffffffff));
	EXPECT_EQ(mask | 0x8, rd32(self->fd, 0x10));
	ASSERT_EQ(0, wr32(self->fd, 0x10, addr));
	EXPECT_EQ(addr | 0x8, rd32(self->fd, 0x10));
	/* read-only registers stay put */
	ASSERT_EQ(0, wr32(self->fd, 0x0, 0x12345678));
	EXPECT_EQ(0x000f1b36, rd32(self->fd, 0));
	ASSERT_EQ(0, wr32(self->fd, 0x48, 7));
	EXPECT_EQ(self->type->width, rd32(self->fd, 0x48));
	/* unimplemented BARs read as zero, also after sizing */
	ASSERT_EQ(0, wr32(self->fd, 0x14, 0xffffffff));
	EXPECT_EQ(0, rd32(self->fd, 0x14));
}

/* C defect 9: a 16-bit BAR write stores 4 bytes read from a 2-byte variable. */
TEST_F(mdpy, defect_9_subdword_bar_write)
{
	check_subdword_bar0_write(_metadata, self->fd);
}

/* C defect 10: config space is 0xff bytes; a dword read at 0xfc overruns it. */
TEST_F(mdpy, defect_10_config_space_is_256_bytes)
{
	check_config_space_is_256_bytes(_metadata, self->fd);
}

TEST_F(mdpy, config_bad_accesses)
{
	uint8_t buf[8];

	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 8, 0x100)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 0x200)));
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 4, 0x200)));
	EXPECT_EQ(0, rd(self->fd, buf, 0, 0));
	EXPECT_EQ(-EFAULT, rd(self->fd, (void *)8, 4, 0));
	EXPECT_EQ(-EFAULT, wr(self->fd, (void *)8, 4, 0x10));
}

/* ---- BAR0 ---------------------------------------------------------------- */

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = seed >> 16;
	}
}

/* BAR0 at offset 0, single accesses: these work even on the C sample. */
TEST_F(mdpy, bar0_rw_offset_zero)
{
	static const size_t sizes[] = { 1, 2, 4 };
	uint8_t in[4], out[4];

	for (size_t i = 0; i < 3; i++) {
		size_t len = sizes[i];

		pattern(in, len, len);
		ASSERT_EQ(len, wr(self->fd, in, len, self->bar0));
		memset(out, 0, sizeof(out));
		ASSERT_EQ(len, rd(self->fd, out, len, self->bar0));
		EXPECT_EQ(0, memcmp(in, out, len)) TH_LOG("len %zu", len);
	}
}

/* C defect 1: BAR0 accesses ignore their offset and all hit byte 0. */
TEST_F(mdpy, defect_1_bar0_rw_offsets_and_sizes)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 8, 16, 63, 4096, 4097, 65536 };
	uint64_t offs[] = { 1, 2, 3, 4, 6, 100, 4095, 4096, 12345, self->memsize / 2,
			    self->memsize - 65536 - 1 };
	static uint8_t in[65536], out[65536];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			size_t len = sizes[s];

			pattern(in, len, s * 100 + o);
			ASSERT_EQ(len, wr(self->fd, in, len, self->bar0 + offs[o]));
			memset(out, 0, len);
			ASSERT_EQ(len, rd(self->fd, out, len, self->bar0 + offs[o]));
			ASSERT_EQ(0, memcmp(in, out, len))
				TH_LOG("offset %#llx size %zu", (unsigned long long)offs[o], len);
		}
	}
	/* the last byte of the BAR */
	in[0] = 0x5a;
	ASSERT_EQ(1, wr(self->fd, in, 1, self->bar0 + self->memsize - 1));
	ASSERT_EQ(1, rd(self->fd, out, 1, self->bar0 + self->memsize - 1));
	EXPECT_EQ(0x5a, out[0]);
}

TEST_F(mdpy, bar0_initial_gradient)
{
	uint32_t h = self->type->height, stride = self->type->width * 4;
	uint32_t rows[] = { 0, 1, h / 2, h - 1 };
	uint8_t *map;

	map = mmap(NULL, self->memsize, PROT_READ, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	for (size_t i = 0; i < 4; i++) {
		uint8_t want = rows[i] * 255 / h;

		EXPECT_EQ(want, map[rows[i] * stride]) TH_LOG("row %u", rows[i]);
		EXPECT_EQ(want, map[rows[i] * stride + stride - 1]) TH_LOG("row %u", rows[i]);
	}
	munmap(map, self->memsize);
}

TEST_F(mdpy, bar0_bad_accesses)
{
	uint8_t buf[16];
	off_t end = self->bar0 + self->memsize;

	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, end)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 8, end - 4)));
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 8, end - 4)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 0x800)));	/* hole */
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 1ll << 40)));
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 4, (1ll << 62))));
	EXPECT_EQ(-EFAULT, rd(self->fd, (void *)8, 4, self->bar0));
	EXPECT_EQ(-EFAULT, wr(self->fd, (void *)8, 4, self->bar0));
}

/* ---- mmap ------------------------------------------------------------------- */

TEST_F(mdpy, mmap_coherent_at_offset_zero)
{
	uint32_t v = 0x11223344, r = 0;
	uint32_t *map;

	map = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(4, wr(self->fd, &v, 4, self->bar0));
	EXPECT_EQ(v, map[0]);
	map[0] = 0xcafef00d;
	ASSERT_EQ(4, rd(self->fd, &r, 4, self->bar0));
	EXPECT_EQ(0xcafef00d, r);
	munmap(map, self->memsize);
}

/* C defect 1 again: read()/write() at an offset miss what the mapping shows. */
TEST_F(mdpy, defect_1_mmap_coherent_everywhere)
{
	uint64_t offs[] = { 4, 4096, 100000, self->memsize - 4 };
	uint32_t *map, v, r;

	map = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	for (size_t i = 0; i < 4; i++) {
		v = 0xa5000000 | i;
		ASSERT_EQ(4, wr(self->fd, &v, 4, self->bar0 + offs[i]));
		EXPECT_EQ(v, map[offs[i] / 4]) TH_LOG("offset %#llx", (unsigned long long)offs[i]);
		map[offs[i] / 4] = ~v;
		ASSERT_EQ(4, rd(self->fd, &r, 4, self->bar0 + offs[i]));
		EXPECT_EQ(~v, r) TH_LOG("offset %#llx", (unsigned long long)offs[i]);
	}
	munmap(map, self->memsize);
}

TEST_F(mdpy, mmap_one_page)
{
	long page = getpagesize();
	uint8_t *map;

	/* one page, the first of the BAR */
	map = mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	munmap(map, page);
}

TEST_F(mdpy, mmap_bad)
{
	long page = getpagesize();

	EXPECT_EQ(MAP_FAILED, mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->memsize + page, PROT_READ, MAP_SHARED, self->fd,
				   self->bar0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page, PROT_READ, MAP_PRIVATE, self->fd, self->bar0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd,
				   self->bar0 + self->memsize));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, 1ll << 40));
	EXPECT_EQ(EINVAL, errno);
}

/* ---- display ------------------------------------------------------------------- */

static int query(int fd, struct vfio_device_gfx_plane_info *p, uint32_t flags)
{
	memset(p, 0, sizeof(*p));
	p->argsz = sizeof(*p);
	p->flags = flags;
	return ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, p) ? -errno : 0;
}

TEST_F(mdpy, query_gfx_plane_probe)
{
	struct vfio_device_gfx_plane_info p;

	EXPECT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE |
					       VFIO_GFX_PLANE_TYPE_DMABUF));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE));
}

TEST_F(mdpy, query_gfx_plane)
{
	struct vfio_device_gfx_plane_info p;

	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_REGION));
	EXPECT_EQ(XRGB8888, p.drm_format);
	EXPECT_EQ(0, p.drm_format_mod);
	EXPECT_EQ(self->type->width, p.width);
	EXPECT_EQ(self->type->height, p.height);
	EXPECT_EQ(self->type->width * 4, p.stride);
	EXPECT_EQ(self->memsize, p.size);
	EXPECT_EQ(DISPLAY_INDEX, p.region_index);
	EXPECT_EQ(0, p.x_pos);
	EXPECT_EQ(0, p.y_pos);
}

/*
 * The uapi: "x_hot/y_hot is set to 0xFFFFFFFF if no hotspot information is
 * available". mdpy has no cursor; the C sample says 0, a valid hotspot.
 */
TEST_F(mdpy, defect_hotspot_x_hot_y_hot)
{
	struct vfio_device_gfx_plane_info p;

	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_REGION));
	EXPECT_EQ(0xffffffff, p.x_hot);
	EXPECT_EQ(0xffffffff, p.y_hot);
}

TEST_F(mdpy, query_gfx_plane_bad)
{
	struct vfio_device_gfx_plane_info p;

	EXPECT_EQ(-EINVAL, query(self->fd, &p, 0));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_REGION |
					       VFIO_GFX_PLANE_TYPE_DMABUF));
	memset(&p, 0, sizeof(p));
	p.argsz = offsetof(struct vfio_device_gfx_plane_info, region_index) + 3;
	p.flags = VFIO_GFX_PLANE_TYPE_REGION;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

/* ---- reset ----------------------------------------------------------------------- */

TEST_F(mdpy, reset_restores_gradient)
{
	uint32_t h = self->type->height, stride = self->type->width * 4;
	uint8_t *map;

	map = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	memset(map, 0x77, stride);
	memset(map + (size_t)(h - 1) * stride, 0x77, stride);
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(0, map[0]);
	EXPECT_EQ(0, map[stride - 1]);
	EXPECT_EQ((h - 1) * 255 / h, map[(size_t)(h - 1) * stride]);
	EXPECT_EQ((h - 1) * 255 / h, map[(size_t)h * stride - 1]);
	munmap(map, self->memsize);
}

/* ---- sysfs ----------------------------------------------------------------------- */

TEST_F(mdpy, sysfs_types)
{
	char path[PATH_MAX], buf[256], want[64];

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(path, sizeof(path), MDEV_CLASS "/mdpy/mdev_supported_types/%s/name",
			 types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf))) TH_LOG("%s", path);
		snprintf(want, sizeof(want), "%s\n", types[i].name);
		EXPECT_STREQ(want, buf);
		snprintf(path, sizeof(path),
			 MDEV_CLASS "/mdpy/mdev_supported_types/%s/description", types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
		snprintf(want, sizeof(want), "virtual display, %ux%u framebuffer\n",
			 types[i].width, types[i].height);
		EXPECT_STREQ(want, buf);
		snprintf(path, sizeof(path),
			 MDEV_CLASS "/mdpy/mdev_supported_types/%s/device_api", types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
		EXPECT_STREQ("vfio-pci\n", buf);
	}
	/* the parent: device "mdpy" of class "mdpy" */
	ASSERT_NE(NULL, realpath(MDEV_CLASS "/mdpy", path));
	EXPECT_STREQ("/sys/devices/virtual/mdpy/mdpy", path);
	ASSERT_NE(NULL, realpath("/sys/class/mdpy/mdpy", path));
	EXPECT_STREQ("/sys/devices/virtual/mdpy/mdpy", path);
}

TEST_F(mdpy, sysfs_device)
{
	char path[PATH_MAX], buf[256], want[64];

	snprintf(path, sizeof(path), MDEV_BUS "/%s/vendor/resolution", self->uuid);
	ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%ux%u\n", self->type->width, self->type->height);
	EXPECT_STREQ(want, buf);
	snprintf(path, sizeof(path), MDEV_BUS "/%s/mdev_type/name", self->uuid);
	ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%s\n", self->type->name);
	EXPECT_STREQ(want, buf);
}

/* The module's count parameter the run loaded it with (env MDPY_COUNT). */
static long mdpy_count(void)
{
	return getenv("MDPY_COUNT") ? atol(getenv("MDPY_COUNT")) : 4;
}

TEST_F(mdpy, sysfs_count_limit)
{
	long count = mdpy_count();
	char path[PATH_MAX], extra[16][40];
	long avail;
	int n = 0, ret;

	snprintf(path, sizeof(path), MDEV_CLASS "/mdpy/mdev_supported_types/mdpy-vga/available_instances");
	ASSERT_LE(count, 16);
	/* the fixture's mdev is one */
	EXPECT_EQ(count - 1, sysfs_read_long(path));
	for (n = 0; n < count - 1; n++) {
		gen_uuid(extra[n]);
		ret = mdev_create("mdpy", types[n % 3].name, extra[n]);
		ASSERT_EQ(0, ret) TH_LOG("mdev %d: %s", n, strerror(-ret));
	}
	EXPECT_EQ(0, sysfs_read_long(path));
	gen_uuid(extra[n]);
	EXPECT_EQ(-EUSERS, mdev_create("mdpy", "mdpy-vga", extra[n]));
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(0, mdev_remove(extra[i]));
	}
	avail = sysfs_read_long(path);
	EXPECT_EQ(count - 1, avail);
}

TEST_F(mdpy, sysfs_module_param_count)
{
	check_module_param(_metadata, "mdpy", "count", mdpy_count());
}

TEST_F(mdpy, sysfs_create_bad)
{
	EXPECT_NE(0, mdev_create("mdpy", "mdpy-vga", "not-a-uuid"));
	EXPECT_EQ(-EEXIST, mdev_create("mdpy", "mdpy-vga", self->uuid));
}

/*
 * Concurrent reset and BAR writes: nothing crashes, the device stays usable.
 * Each reset repaints the framebuffer; 200 of mdpy-hd's 8 MB take longer
 * than the harness's default 30 s under TCG.
 */
TEST_F_TIMEOUT(mdpy, reset_concurrent_with_access, 180)
{
	uint8_t buf[4096];
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (int i = 0; i < 200; i++)
			if (ioctl(self->fd, VFIO_DEVICE_RESET))
				_exit(1);
		_exit(0);
	}
	for (int i = 0; i < 200; i++) {
		memset(buf, i, sizeof(buf));
		ASSERT_EQ(sizeof(buf), wr(self->fd, buf, sizeof(buf), self->bar0));
		ASSERT_EQ(sizeof(buf), rd(self->fd, buf, sizeof(buf), self->bar0));
	}
	int status;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_HARNESS_MAIN
