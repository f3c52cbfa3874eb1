// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest for mbochs, the VFIO mdev dma-buf display sample (a bochs-display
 * PCI device), run against either the C sample (MDEV_IMPL=c) or the Rust
 * module (MDEV_IMPL=rust).
 *
 * Every test runs twice: with the device opened through an iommufd cdev and
 * through the legacy group/container. Tests named defect_* expose defects of
 * the C sample (defect_N_* for defect N of
 * Documentation/mdev-rs/c-sample-defects.rst, defect_<what>_* for a C
 * deviation from the VFIO uapi that is not in the numbered list): they are
 * expected to fail on C and must pass on Rust; tools/testing/vm/tap-verdict.sh
 * applies that rule.
 *
 * A few defect tests would corrupt the C sample's memory (use-after-free,
 * page refcount underflow) and so splat the kernel, which fails the whole
 * run: on C they SKIP ("would corrupt the C module: ..."), which
 * tap-verdict.sh reports as not run, neither passed nor failed.
 *
 * The C sample answers the first QUERY_GFX_PLANE after a mode change with
 * ENOMEM (defect 3, tested by defect_3_first_query_returns_plane); the other
 * tests query through query_primary(), which on C only retries once after
 * that ENOMEM. The C sample's dma-bufs cannot be mmapped (defect 16), so all
 * pixel checks through a dma-buf mapping are defect_16_* tests.
 *
 * Environment: MBOCHS_TYPE (default mbochs-medium), MBOCHS_COUNT (the
 * module's count parameter: the pool of MB; default 256).
 */
#include <stddef.h>
#include <sys/wait.h>

#include <drm/drm_fourcc.h>

#include "mbochs_regs.h"
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
#define BAR2_INDEX VFIO_PCI_BAR2_REGION_INDEX
#define EDID_INDEX VFIO_PCI_NUM_REGIONS		/* 9 */
#define NUM_REGIONS (VFIO_PCI_NUM_REGIONS + 1)

/* EDID region: struct vfio_region_gfx_edid, blob at 0x800 */
#define EDID_REG(f) offsetof(struct vfio_region_gfx_edid, f)
#define EDID_BLOB 0x800
#define EDID_MAX 0x400
#define LINK_UP VFIO_DEVICE_GFX_LINK_STATE_UP
#define LINK_DOWN VFIO_DEVICE_GFX_LINK_STATE_DOWN

#define MB (1024 * 1024)

struct mbochs_type {
	const char *name;
	uint32_t mbytes, max_x, max_y;
};

static const struct mbochs_type types[] = {
	{ "mbochs-small", 4, 800, 600 },
	{ "mbochs-medium", 16, 1920, 1440 },
	{ "mbochs-large", 64, 0, 0 },
};

static const struct mbochs_type *type_under_test(void)
{
	const char *name = getenv("MBOCHS_TYPE") ?: "mbochs-medium";

	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return &types[1];
}

static long pool_mb(void)
{
	return getenv("MBOCHS_COUNT") ? atol(getenv("MBOCHS_COUNT")) : 256;
}

static long available(const struct mbochs_type *t)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path),
		 MDEV_CLASS "/mbochs/mdev_supported_types/%s/available_instances", t->name);
	return sysfs_read_long(path);
}

FIXTURE(mbochs) {
	char uuid[40];
	const struct mbochs_type *type;
	struct vfio_handle h;
	int fd;
	uint64_t memsize;
	off_t bar0, bar2, edid;
	bool removed;		/* the test removed the mdev itself */
};

FIXTURE_VARIANT(mbochs) {
	bool cdev;
};

FIXTURE_VARIANT_ADD(mbochs, iommufd_cdev) {
	.cdev = true,
};

FIXTURE_VARIANT_ADD(mbochs, group_container) {
	.cdev = false,
};

FIXTURE_SETUP(mbochs)
{
	struct vfio_region_info info;
	int ret;

	self->type = type_under_test();
	self->memsize = (uint64_t)self->type->mbytes * MB;
	self->removed = false;
	gen_uuid(self->uuid);
	ret = mdev_create("mbochs", self->type->name, self->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create %s: %s", self->type->name, strerror(-ret));
	ret = vfio_open(self->uuid, variant->cdev, &self->h);
	if (ret) {
		vfio_close(&self->h);
		mdev_remove(self->uuid);
	}
	ASSERT_EQ(0, ret) TH_LOG("vfio open: %s", strerror(-ret));
	self->fd = self->h.device;
	/* teardown does not run when setup fails: clean up here */
	ret = region_info(self->fd, BAR0_INDEX, &info);
	self->bar0 = info.offset;
	ret = ret ?: region_info(self->fd, BAR2_INDEX, &info);
	self->bar2 = info.offset;
	ret = ret ?: region_info(self->fd, EDID_INDEX, &info);
	self->edid = info.offset;
	if (ret) {
		vfio_close(&self->h);
		mdev_remove(self->uuid);
	}
	ASSERT_EQ(0, ret) TH_LOG("region info: %s", strerror(-ret));
}

/*
 * In the parent, after the test process exited: all its device and dma-buf
 * fds are closed by then, also when the test crashed.
 */
FIXTURE_TEARDOWN_PARENT(mbochs)
{
	if (!self->removed)
		EXPECT_EQ(0, mdev_remove(self->uuid)) TH_LOG("remove %s", self->uuid);
}

/* ---- helpers ---------------------------------------------------------------- */

static int dispi_wr(int fd, off_t bar2, unsigned int idx, uint16_t v)
{
	return wr(fd, &v, 2, bar2 + DISPI_BASE + idx * 2) == 2 ? 0 : -1;
}

static int dispi_rd(int fd, off_t bar2, unsigned int idx)
{
	uint16_t v;

	return rd(fd, &v, 2, bar2 + DISPI_BASE + idx * 2) == 2 ? v : -1;
}

struct mode {
	uint16_t xres, yres, bpp, virt_width, xoff, yoff, enable;
};

/* Programs a mode the way bochs-drm does: disable, registers, enable. */
static int set_mode(int fd, off_t bar2, const struct mode *m)
{
	int err = 0;

	err |= dispi_wr(fd, bar2, DISPI_ENABLE, 0);
	err |= dispi_wr(fd, bar2, DISPI_BPP, m->bpp);
	err |= dispi_wr(fd, bar2, DISPI_XRES, m->xres);
	err |= dispi_wr(fd, bar2, DISPI_YRES, m->yres);
	err |= dispi_wr(fd, bar2, DISPI_BANK, 0);
	err |= dispi_wr(fd, bar2, DISPI_VIRT_WIDTH, m->virt_width);
	err |= dispi_wr(fd, bar2, DISPI_VIRT_HEIGHT, m->yres);
	err |= dispi_wr(fd, bar2, DISPI_X_OFFSET, m->xoff);
	err |= dispi_wr(fd, bar2, DISPI_Y_OFFSET, m->yoff);
	err |= dispi_wr(fd, bar2, DISPI_ENABLE, m->enable);
	return err;
}

static struct mode mode_xy(uint16_t w, uint16_t h)
{
	struct mode m = { .xres = w, .yres = h, .bpp = 32, .virt_width = w,
			  .enable = DISPI_ENABLED | DISPI_LFB_ENABLED };
	return m;
}

/*
 * A mode within every type's EDID maximum (the Rust module enforces it) whose
 * framebuffer is the second half of VRAM: side/2 x side/2 pixels, lines of
 * side pixels, panned down by side/2 lines (side * side * 4 == memsize).
 */
static struct mode mode_second_half(uint64_t memsize)
{
	uint16_t side = 1024 << (memsize == 16 * MB ? 1 : memsize == 64 * MB ? 2 : 0);
	struct mode m = mode_xy(side / 2, side / 2);

	m.virt_width = side;
	m.yoff = side / 2;
	return m;
}

static int query(int fd, struct vfio_device_gfx_plane_info *p, uint32_t flags,
		 uint32_t plane_type)
{
	memset(p, 0xa5, sizeof(*p));
	p->argsz = sizeof(*p);
	p->flags = flags;
	p->drm_plane_type = plane_type;
	return ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, p) ? -errno : 0;
}

/*
 * QUERY the primary plane. The C sample fails the first query of a new mode
 * with ENOMEM (defect 3, tested on its own); on C only, retry that once.
 */
static int query_primary(int fd, struct vfio_device_gfx_plane_info *p)
{
	int ret = query(fd, p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY);

	if (ret == -ENOMEM && mdev_impl_is_c())
		ret = query(fd, p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY);
	return ret;
}

static uint32_t edid_rd(int fd, off_t edid, off_t reg);

static int get_dmabuf(int fd, uint32_t id)
{
	int ret = ioctl(fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);

	return ret < 0 ? -errno : ret;
}

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = seed >> 16;
	}
}

static uint32_t rnd(uint32_t *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return *seed >> 8;
}

/* Index of the first differing byte, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

static long meminfo_kb(const char *field)
{
	char buf[4096], *p;
	size_t n = strlen(field);

	if (sysfs_read("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, field, n) && p[n] == ':')
			return atol(p + n + 1);
	}
	return -1;
}

/* ---- device, region and irq info ---------------------------------------- */

TEST_F(mbochs, device_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_EQ(NUM_REGIONS, info.num_regions);
	EXPECT_EQ(VFIO_PCI_NUM_IRQS, info.num_irqs);
	info.argsz = offsetofend(struct vfio_device_info, num_irqs) - 1;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(mbochs, region_info_config)
{
	struct vfio_region_info info;

	ASSERT_EQ(0, region_info(self->fd, CONFIG_INDEX, &info));
	EXPECT_EQ(0, info.offset);
	EXPECT_GE(info.size, 0xff);
	EXPECT_LE(info.size, 0x100);
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, info.flags);
}

TEST_F(mbochs, region_info_bars)
{
	struct vfio_region_info info;

	ASSERT_EQ(0, region_info(self->fd, BAR0_INDEX, &info));
	EXPECT_EQ(0x3000, info.offset);
	EXPECT_EQ(self->memsize, info.size);
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		  VFIO_REGION_INFO_FLAG_MMAP, info.flags);
	EXPECT_EQ(0, info.cap_offset);
	ASSERT_EQ(0, region_info(self->fd, BAR2_INDEX, &info));
	EXPECT_EQ(0x1000, info.offset);
	EXPECT_EQ(0x1000, info.size);
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, info.flags);
}

TEST_F(mbochs, region_info_other_indices)
{
	struct vfio_region_info info;
	uint32_t bad[] = { NUM_REGIONS, 11, 15, 16, 17, 100, 0xffffffff };

	for (uint32_t i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		if (i == CONFIG_INDEX || i == BAR0_INDEX || i == BAR2_INDEX)
			continue;
		ASSERT_EQ(0, region_info(self->fd, i, &info)) TH_LOG("index %u", i);
		EXPECT_EQ(0, info.size) TH_LOG("index %u", i);
		EXPECT_EQ(0, info.flags) TH_LOG("index %u", i);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, region_info(self->fd, bad[i], &info)) TH_LOG("index %u", bad[i]);
	}
}

TEST_F(mbochs, region_info_edid_caps)
{
	struct {
		struct vfio_region_info info;
		struct vfio_region_info_cap_type cap;
		uint8_t slack[64];
	} buf;
	struct vfio_region_info_cap_type *cap;

	memset(&buf, 0xa5, sizeof(buf));
	buf.info.argsz = sizeof(buf);
	buf.info.index = EDID_INDEX;
	buf.info.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &buf));
	EXPECT_EQ(0x2000, buf.info.offset);
	EXPECT_EQ(0x1000, buf.info.size);
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		  VFIO_REGION_INFO_FLAG_CAPS, buf.info.flags);
	ASSERT_EQ(sizeof(buf.info), buf.info.cap_offset);
	cap = (void *)((uint8_t *)&buf + buf.info.cap_offset);
	EXPECT_EQ(VFIO_REGION_INFO_CAP_TYPE, cap->header.id);
	EXPECT_EQ(1, cap->header.version);
	EXPECT_EQ(0, cap->header.next);
	EXPECT_EQ(VFIO_REGION_TYPE_GFX, cap->type);
	EXPECT_EQ(VFIO_REGION_SUBTYPE_GFX_EDID, cap->subtype);
}

TEST_F(mbochs, region_info_edid_argsz)
{
	struct {
		struct vfio_region_info info;
		uint8_t caps[64];
	} buf;
	uint8_t zero[64];

	/* room for the info but not the caps: argsz grows, no caps written */
	memset(&buf, 0, sizeof(buf));
	buf.info.argsz = sizeof(buf.info);
	buf.info.index = EDID_INDEX;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &buf));
	EXPECT_EQ(sizeof(buf.info) + sizeof(struct vfio_region_info_cap_type), buf.info.argsz);
	EXPECT_TRUE(buf.info.flags & VFIO_REGION_INFO_FLAG_CAPS);
	EXPECT_EQ(0, buf.info.cap_offset);
	EXPECT_EQ(0x2000, buf.info.offset);
	memset(zero, 0, sizeof(zero));
	EXPECT_EQ(0, memcmp(zero, buf.caps, sizeof(buf.caps)));
	/* one byte short of the caps */
	memset(&buf, 0, sizeof(buf));
	buf.info.argsz = sizeof(buf.info) + sizeof(struct vfio_region_info_cap_type) - 1;
	buf.info.index = EDID_INDEX;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &buf));
	EXPECT_EQ(sizeof(buf.info) + sizeof(struct vfio_region_info_cap_type), buf.info.argsz);
	EXPECT_EQ(0, buf.info.cap_offset);
	EXPECT_EQ(0, memcmp(zero, buf.caps, sizeof(buf.caps)));
	/* below minsz */
	memset(&buf, 0, sizeof(buf));
	buf.info.argsz = offsetofend(struct vfio_region_info, offset) - 1;
	buf.info.index = EDID_INDEX;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &buf));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(mbochs, irq_info)
{
	struct vfio_irq_info info = { .argsz = sizeof(info) };

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

TEST_F(mbochs, set_irqs_and_unknown_ioctls)
{
	struct vfio_irq_set set = { .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_NONE |
				    VFIO_IRQ_SET_ACTION_TRIGGER };

	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_SET_IRQS, &set));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VFIO_TYPE, VFIO_BASE + 60), NULL));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_IOEVENTFD, NULL));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('x', 1), NULL));
	EXPECT_EQ(ENOTTY, errno);
}

/* ---- config space --------------------------------------------------------- */

TEST_F(mbochs, config_identity)
{
	uint8_t cfg[0x40];

	ASSERT_EQ(sizeof(cfg), rd(self->fd, cfg, sizeof(cfg), 0));
	EXPECT_EQ(0x1234, cfg[0] | cfg[1] << 8);		/* vendor */
	EXPECT_EQ(0x1111, cfg[2] | cfg[3] << 8);		/* device: bochs */
	EXPECT_EQ(0x0003, cfg[4] | cfg[5] << 8);		/* command: IO | MEM */
	EXPECT_EQ(0x01, cfg[8]);				/* revision */
	EXPECT_EQ(0x0380, cfg[0xa] | cfg[0xb] << 8);		/* class: display other */
	EXPECT_EQ(0x1af4, cfg[0x2c] | cfg[0x2d] << 8);	/* subsystem vendor */
	EXPECT_EQ(0x1100, cfg[0x2e] | cfg[0x2f] << 8);	/* subsystem */
	EXPECT_EQ(0x8, cfg[0x10] & 0xf);			/* BAR0: mem32, prefetchable */
	EXPECT_EQ(0x0, cfg[0x18] & 0xf);			/* BAR2: mem32 */
	EXPECT_EQ(0x11111234, rd32(self->fd, 0));
	EXPECT_EQ(0x1af4, rd32(self->fd, 0x2c) & 0xffff);
}

TEST_F(mbochs, config_bar_sizing)
{
	uint32_t mask0 = ~(uint32_t)(self->memsize - 1);

	ASSERT_EQ(0, wr32(self->fd, 0x10, 0xffffffff));
	EXPECT_EQ(mask0 | 0x8, rd32(self->fd, 0x10));
	ASSERT_EQ(0, wr32(self->fd, 0x10, 0xe0000000));
	EXPECT_EQ(0xe0000008, rd32(self->fd, 0x10));
	ASSERT_EQ(0, wr32(self->fd, 0x18, 0xffffffff));
	EXPECT_EQ(0xfffff000, rd32(self->fd, 0x18));
	ASSERT_EQ(0, wr32(self->fd, 0x18, 0xfebf0000));
	EXPECT_EQ(0xfebf0000, rd32(self->fd, 0x18));
	/* read-only registers stay put */
	ASSERT_EQ(0, wr32(self->fd, 0x0, 0x12345678));
	EXPECT_EQ(0x11111234, rd32(self->fd, 0));
	ASSERT_EQ(0, wr32(self->fd, 0x2c, 0));
	EXPECT_EQ(0x1af4, rd32(self->fd, 0x2c) & 0xffff);
	/* BAR1 does not exist */
	ASSERT_EQ(0, wr32(self->fd, 0x14, 0xffffffff));
	EXPECT_EQ(0, rd32(self->fd, 0x14));
}

/* C defect 9: a 16-bit BAR write stores 4 bytes read from a 2-byte variable. */
TEST_F(mbochs, defect_9_subdword_bar_write)
{
	check_subdword_bar0_write(_metadata, self->fd);
}

/* C defect 10: config space is 0xff bytes; a dword read at 0xfc overruns it. */
TEST_F(mbochs, defect_10_config_space_is_256_bytes)
{
	check_config_space_is_256_bytes(_metadata, self->fd);
}

TEST_F(mbochs, config_bad_accesses)
{
	uint8_t buf[8];

	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 0x100)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 0x800)));	/* hole */
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 4, 0x200)));
	EXPECT_EQ(0, rd(self->fd, buf, 0, 0));
	EXPECT_EQ(-EFAULT, rd(self->fd, (void *)8, 4, 0));
	EXPECT_EQ(-EFAULT, wr(self->fd, (void *)8, 4, 0x10));
}

/* ---- BAR2: bochs DISPI registers ------------------------------------------ */

TEST_F(mbochs, dispi_initial_registers)
{
	EXPECT_EQ(DISPI_ID5, dispi_rd(self->fd, self->bar2, DISPI_ID));
	EXPECT_EQ(self->memsize / 65536, dispi_rd(self->fd, self->bar2, DISPI_VIDEO_MEMORY_64K));
	EXPECT_EQ(0, dispi_rd(self->fd, self->bar2, DISPI_ENABLE));
	for (unsigned int i = DISPI_XRES; i <= DISPI_Y_OFFSET; i++) {
		EXPECT_EQ(0, dispi_rd(self->fd, self->bar2, i)) TH_LOG("register %u", i);
	}
}

TEST_F(mbochs, dispi_registers_read_back)
{
	struct mode m = { 800, 600, 32, 1024, 16, 8, DISPI_ENABLED | DISPI_LFB_ENABLED };

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	EXPECT_EQ(800, dispi_rd(self->fd, self->bar2, DISPI_XRES));
	EXPECT_EQ(600, dispi_rd(self->fd, self->bar2, DISPI_YRES));
	EXPECT_EQ(32, dispi_rd(self->fd, self->bar2, DISPI_BPP));
	EXPECT_EQ(1024, dispi_rd(self->fd, self->bar2, DISPI_VIRT_WIDTH));
	EXPECT_EQ(600, dispi_rd(self->fd, self->bar2, DISPI_VIRT_HEIGHT));
	EXPECT_EQ(16, dispi_rd(self->fd, self->bar2, DISPI_X_OFFSET));
	EXPECT_EQ(8, dispi_rd(self->fd, self->bar2, DISPI_Y_OFFSET));
	EXPECT_EQ(DISPI_ENABLED | DISPI_LFB_ENABLED, dispi_rd(self->fd, self->bar2, DISPI_ENABLE));
	EXPECT_EQ(DISPI_ID5, dispi_rd(self->fd, self->bar2, DISPI_ID));
}

TEST_F(mbochs, reset_restores_dispi)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(0, p.dmabuf_id);
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(DISPI_ID5, dispi_rd(self->fd, self->bar2, DISPI_ID));
	EXPECT_EQ(self->memsize / 65536, dispi_rd(self->fd, self->bar2, DISPI_VIDEO_MEMORY_64K));
	EXPECT_EQ(0, dispi_rd(self->fd, self->bar2, DISPI_ENABLE));
	EXPECT_EQ(0, dispi_rd(self->fd, self->bar2, DISPI_XRES));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.size);
	EXPECT_EQ(0, p.dmabuf_id);
}

TEST_F(mbochs, bar2_bad_accesses)
{
	EXPECT_EQ(-EFAULT, rd(self->fd, (void *)8, 2, self->bar2 + DISPI_BASE));
	EXPECT_EQ(-EFAULT, wr(self->fd, (void *)8, 2, self->bar2 + DISPI_BASE));
}

/*
 * An access crossing from one region into the next is not an access to
 * either; the C sample splits it and serves both halves.
 */
TEST_F(mbochs, defect_region_straddle)
{
	uint8_t buf[8];

	EXPECT_GT(0, rd(self->fd, buf, 8, self->bar2 + 0x1000 - 4));
	EXPECT_GT(0, wr(self->fd, buf, 8, self->bar2 + 0x1000 - 4));
	EXPECT_GT(0, rd(self->fd, buf, 8, self->edid + 0x1000 - 4));
}

/* ---- BAR0: VRAM ------------------------------------------------------------- */

/*
 * Away from the end of BAR0 read() and write() agree with each other on C
 * too (both are shifted by two pages: defect 2).
 */
TEST_F(mbochs, bar0_rw_roundtrip)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 7, 8, 64, 4095, 4096, 4097, 65536 };
	uint64_t offs[] = { 0, 1, 2, 3, 4, 6, 100, 4095, 4096, 12345, self->memsize / 2 };
	static uint8_t in[65536], out[65536];

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		for (size_t o = 0; o < ARRAY_SIZE(offs); o++) {
			size_t len = sizes[s];

			pattern(in, len, s * 100 + o);
			ASSERT_EQ(len, wr(self->fd, in, len, self->bar0 + offs[o]));
			memset(out, 0, len);
			ASSERT_EQ(len, rd(self->fd, out, len, self->bar0 + offs[o]));
			ASSERT_EQ(0, memcmp(in, out, len))
				TH_LOG("offset %#llx size %zu", (unsigned long long)offs[o], len);
		}
	}
}

TEST_F(mbochs, bar0_initially_zero)
{
	uint8_t *map;

	map = mmap(NULL, self->memsize, PROT_READ, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	for (uint64_t off = 0; off < self->memsize; off += 4096 * 7) {
		ASSERT_EQ(0, map[off]) TH_LOG("offset %#llx", (unsigned long long)off);
	}
	EXPECT_EQ(0, map[self->memsize - 1]);
	munmap(map, self->memsize);
}

TEST_F(mbochs, bar0_mmap_shared_between_mappings)
{
	uint32_t *a, *b;

	a = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, a);
	b = mmap(NULL, self->memsize, PROT_READ, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, b);
	a[0] = 0x11223344;
	a[self->memsize / 4 - 1] = 0x55667788;
	EXPECT_EQ(0x11223344, b[0]);
	EXPECT_EQ(0x55667788, b[self->memsize / 4 - 1]);
	munmap(a, self->memsize);
	munmap(b, self->memsize);
}

/*
 * C defect 2: read()/write() of BAR0 subtract the BAR2 offset instead of the
 * BAR0 one: they hit VRAM two pages further than mmap() does, and the last
 * two pages index past the page array. The end-of-BAR part runs on Rust only
 * (on C it reads a wild page pointer).
 */
TEST_F(mbochs, defect_2_bar0_rw_matches_mmap)
{
	uint64_t offs[] = { 0, 4, 4096, 8192, 100000, self->memsize / 2 };
	uint32_t *map, v, r;

	map = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, self->bar0);
	ASSERT_NE(MAP_FAILED, map);
	for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
		v = 0xa5000000 | i;
		ASSERT_EQ(4, wr(self->fd, &v, 4, self->bar0 + offs[i]));
		ASSERT_EQ(v, map[offs[i] / 4]) TH_LOG("offset %#llx", (unsigned long long)offs[i]);
		map[offs[i] / 4] = ~v;
		ASSERT_EQ(4, rd(self->fd, &r, 4, self->bar0 + offs[i]));
		ASSERT_EQ(~v, r) TH_LOG("offset %#llx", (unsigned long long)offs[i]);
	}
	/*
	 * The end of BAR0 is not tried on C (it reads a wild page pointer).
	 * Getting here on C, the part above passed: defect 2 did not show,
	 * and the test passes, which tap-verdict.sh reports as a failure.
	 */
	if (mdev_impl_is_c())
		return;
	/* the last pages of the BAR, and accesses running past its end */
	for (uint64_t off = self->memsize - 8192; off < self->memsize; off += 4092) {
		v = 0x5a000000 | off;
		ASSERT_EQ(4, wr(self->fd, &v, 4, self->bar0 + off));
		EXPECT_EQ(v, map[off / 4]);
	}
	v = 0x77;
	ASSERT_EQ(1, wr(self->fd, &v, 1, self->bar0 + self->memsize - 1));
	EXPECT_EQ(0x77, ((uint8_t *)map)[self->memsize - 1]);
	map[self->memsize / 4 - 1] = 0x01020304;
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, &r, 8, self->bar0 + self->memsize - 4)));
	v = 0xffffffff;
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, &v, 8, self->bar0 + self->memsize - 4)));
	EXPECT_EQ(0x01020304, map[self->memsize / 4 - 1]);
	munmap(map, self->memsize);
}

TEST_F(mbochs, bar0_bad_accesses)
{
	uint8_t buf[16];
	off_t end = self->bar0 + self->memsize;

	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, end)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 8, end)));
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 4, end)));
	EXPECT_TRUE(bad_offset_errno(rd(self->fd, buf, 4, 1ll << 40)));
	EXPECT_TRUE(bad_offset_errno(wr(self->fd, buf, 4, 1ll << 62)));
	EXPECT_EQ(-EFAULT, rd(self->fd, (void *)8, 4, self->bar0));
	EXPECT_EQ(-EFAULT, wr(self->fd, (void *)8, 4, self->bar0));
}

TEST_F(mbochs, mmap_bad)
{
	long page = getpagesize();

	for (off_t off = 0; off < self->bar0; off += page) {
		EXPECT_EQ(MAP_FAILED, mmap(NULL, page, PROT_READ, MAP_SHARED, self->fd, off))
			TH_LOG("offset %#llx", (unsigned long long)off);
		EXPECT_EQ(EINVAL, errno);
	}
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

/* ---- QUERY_GFX_PLANE ---------------------------------------------------------- */

TEST_F(mbochs, query_gfx_plane_probe)
{
	struct vfio_device_gfx_plane_info p;

	EXPECT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF,
			   PLANE_PRIMARY));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE |
					       VFIO_GFX_PLANE_TYPE_REGION, PLANE_PRIMARY));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_PROBE, PLANE_PRIMARY));
}

TEST_F(mbochs, query_gfx_plane_bad)
{
	struct vfio_device_gfx_plane_info p;

	EXPECT_EQ(-EINVAL, query(self->fd, &p, 0, PLANE_PRIMARY));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_REGION, PLANE_PRIMARY));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_REGION |
					       VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY));
	EXPECT_EQ(-EINVAL, query(self->fd, &p, 1u << 8 | VFIO_GFX_PLANE_TYPE_DMABUF,
				 PLANE_PRIMARY));
	memset(&p, 0, sizeof(p));
	p.argsz = offsetofend(struct vfio_device_gfx_plane_info, region_index) - 1;
	p.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
	p.drm_plane_type = PLANE_PRIMARY;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p));
	EXPECT_EQ(EINVAL, errno);
	p.argsz = 0;
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

static void expect_no_plane(struct __test_metadata *_metadata,
			    const struct vfio_device_gfx_plane_info *p)
{
	EXPECT_EQ(0, p->drm_format);
	EXPECT_EQ(0, p->width);
	EXPECT_EQ(0, p->height);
	EXPECT_EQ(0, p->stride);
	EXPECT_EQ(0, p->size);
	EXPECT_EQ(0, p->dmabuf_id);
}

TEST_F(mbochs, query_disabled)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	/* after create */
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
	/* a valid mode without ENABLE */
	m.enable = 0;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
	/* LFB alone is not enough */
	m.enable = DISPI_LFB_ENABLED;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
}

TEST_F(mbochs, query_enabled)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	uint32_t id;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(DRM_FORMAT_XRGB8888, p.drm_format);
	EXPECT_EQ(0, p.drm_format_mod);
	EXPECT_EQ(640, p.width);
	EXPECT_EQ(480, p.height);
	EXPECT_EQ(640 * 4, p.stride);
	EXPECT_EQ(640 * 4 * 480, p.size);
	EXPECT_EQ(0, p.x_pos);
	EXPECT_EQ(0, p.y_pos);
	EXPECT_NE(0, p.dmabuf_id);
	id = p.dmabuf_id;
	/* the same mode again: the same dma-buf */
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(id, p.dmabuf_id);
	/* disable: no plane; enable again: the same dma-buf */
	ASSERT_EQ(0, dispi_wr(self->fd, self->bar2, DISPI_ENABLE, 0));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
	ASSERT_EQ(0, dispi_wr(self->fd, self->bar2, DISPI_ENABLE, m.enable));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(id, p.dmabuf_id);
	/* another mode: another dma-buf */
	m = mode_xy(800, 600);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(800, p.width);
	EXPECT_EQ(600, p.height);
	EXPECT_EQ(800 * 4, p.stride);
	EXPECT_EQ(800 * 4 * 600, p.size);
	EXPECT_NE(0, p.dmabuf_id);
	EXPECT_NE(id, p.dmabuf_id);
}

/* C defect 3: the dma-buf made for a new mode is dropped; the query fails. */
TEST_F(mbochs, defect_3_first_query_returns_plane)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY))
		TH_LOG("first query after a mode set: %s", strerror(errno));
	EXPECT_EQ(DRM_FORMAT_XRGB8888, p.drm_format);
	EXPECT_EQ(320, p.width);
	EXPECT_EQ(240, p.height);
	EXPECT_NE(0, p.dmabuf_id);
	m = mode_xy(321, 240);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY))
		TH_LOG("first query after a second mode set: %s", strerror(errno));
	EXPECT_EQ(321, p.width);
}

/*
 * The uapi: "x_hot/y_hot is set to 0xFFFFFFFF if no hotspot information
 * available"; the C sample sets 0 (not in the numbered list).
 */
TEST_F(mbochs, defect_hotspot_x_hot_y_hot)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(0, p.dmabuf_id);
	EXPECT_EQ(0xffffffff, p.x_hot);
	EXPECT_EQ(0xffffffff, p.y_hot);
}

TEST_F(mbochs, query_bpp)
{
	static const uint16_t bpps[] = { 0, 4, 8, 15, 16, 24, 31, 33, 64, 0xffff };
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	for (size_t i = 0; i < ARRAY_SIZE(bpps); i++) {
		m.bpp = bpps[i];
		ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
		ASSERT_EQ(0, query_primary(self->fd, &p)) TH_LOG("bpp %u", bpps[i]);
		EXPECT_EQ(0, p.size) TH_LOG("bpp %u", bpps[i]);
		EXPECT_EQ(0, p.dmabuf_id) TH_LOG("bpp %u", bpps[i]);
	}
}

TEST_F(mbochs, query_too_small)
{
	static const uint16_t sizes[][2] = { { 0, 0 }, { 63, 480 }, { 640, 63 }, { 63, 63 },
					     { 1, 1 }, { 0, 480 }, { 640, 0 } };
	struct vfio_device_gfx_plane_info p;
	struct mode m;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		m = mode_xy(sizes[i][0], sizes[i][1]);
		ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
		ASSERT_EQ(0, query_primary(self->fd, &p)) TH_LOG("%ux%u", m.xres, m.yres);
		EXPECT_EQ(0, p.size) TH_LOG("%ux%u", m.xres, m.yres);
		EXPECT_EQ(0, p.dmabuf_id) TH_LOG("%ux%u", m.xres, m.yres);
	}
	m = mode_xy(64, 64);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(64, p.width);
	EXPECT_EQ(64, p.height);
	EXPECT_EQ(64 * 64 * 4, p.size);
	EXPECT_NE(0, p.dmabuf_id);
}

TEST_F(mbochs, query_too_big_for_vram)
{
	struct vfio_device_gfx_plane_info p;
	struct mode fits = mode_second_half(self->memsize), m = fits;

	/* ends exactly at the end of VRAM */
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(self->memsize / 2, p.size);
	EXPECT_EQ(m.virt_width * 4, p.stride);
	EXPECT_NE(0, p.dmabuf_id);
	/* one line more */
	m.yres++;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.size);
	EXPECT_EQ(0, p.dmabuf_id);
	/* a wider virtual line */
	m = fits;
	m.virt_width++;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
	/* panned down by one line more, or right by one pixel */
	m = fits;
	m.yoff++;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
	m = fits;
	m.xoff = 1;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
	/* maximal register values */
	m = mode_xy(0xffff, 0xffff);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
	m = mode_xy(640, 480);
	m.xoff = m.yoff = 0xffff;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
}

TEST_F(mbochs, query_virtual_width_and_offsets)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	uint32_t ids[3];

	/* stride from the virtual width */
	m.virt_width = 1024;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(640, p.width);
	EXPECT_EQ(480, p.height);
	EXPECT_EQ(4096, p.stride);
	EXPECT_EQ(4096 * 480, p.size);
	ids[0] = p.dmabuf_id;
	EXPECT_NE(0, ids[0]);
	/* a virtual width below xres is ignored */
	m.virt_width = 100;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(640 * 4, p.stride);
	/* offsets: same geometry, another dma-buf */
	m.virt_width = 1024;
	m.xoff = 1024;	/* 4 KiB */
	m.yoff = 2;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(640, p.width);
	EXPECT_EQ(480, p.height);
	EXPECT_EQ(4096, p.stride);
	EXPECT_EQ(4096 * 480, p.size);
	EXPECT_EQ(0, p.x_pos);
	EXPECT_EQ(0, p.y_pos);
	ids[1] = p.dmabuf_id;
	EXPECT_NE(0, ids[1]);
	EXPECT_NE(ids[0], ids[1]);
	m.yoff = 3;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ids[2] = p.dmabuf_id;
	EXPECT_NE(0, ids[2]);
	EXPECT_NE(ids[1], ids[2]);
	EXPECT_NE(ids[0], ids[2]);
	/* back to the first: its dma-buf again */
	m.xoff = m.yoff = 0;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(ids[0], p.dmabuf_id);
}

TEST_F(mbochs, query_other_planes)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(0, p.dmabuf_id);
	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_CURSOR));
	expect_no_plane(_metadata, &p);
	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_OVERLAY));
	expect_no_plane(_metadata, &p);
	ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, 77));
	expect_no_plane(_metadata, &p);
}

/* ---- GET_GFX_DMABUF ------------------------------------------------------------ */

TEST_F(mbochs, get_dmabuf_bad)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);

	EXPECT_EQ(-ENOENT, get_dmabuf(self->fd, 0));
	EXPECT_EQ(-ENOENT, get_dmabuf(self->fd, 1));
	EXPECT_EQ(-ENOENT, get_dmabuf(self->fd, 0xffffffff));
	EXPECT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_GET_GFX_DMABUF, NULL));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(0, p.dmabuf_id);
	EXPECT_EQ(-ENOENT, get_dmabuf(self->fd, p.dmabuf_id + 1));
	EXPECT_EQ(-ENOENT, get_dmabuf(self->fd, p.dmabuf_id + 1000));
}

TEST_F(mbochs, get_dmabuf_fd)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	struct stat st;
	int fd;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(0, p.dmabuf_id);
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd) TH_LOG("GET_GFX_DMABUF: %s", strerror(-fd));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(p.size, st.st_size);
	EXPECT_EQ(p.size, lseek(fd, 0, SEEK_END));
	EXPECT_EQ(0, lseek(fd, 0, SEEK_SET));
	/* it is a dma-buf */
	char link[64], path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	EXPECT_EQ(0, strncmp(link, "/dmabuf:", 8)) TH_LOG("%s", link);
	EXPECT_EQ(0, close(fd));
}

/* C defect 17: the dma-buf fd is not close-on-exec. */
TEST_F(mbochs, defect_17_dmabuf_fd_cloexec)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	int fd, flags;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd) TH_LOG("GET_GFX_DMABUF: %s", strerror(-fd));
	flags = fcntl(fd, F_GETFD);
	EXPECT_TRUE(flags & FD_CLOEXEC);
	close(fd);
}

/* Writes a pattern of plane p into VRAM through read()/write() of BAR0. */
static int fill_by_write(int fd, off_t bar0, uint64_t off, uint8_t *buf, size_t len,
			 uint32_t seed)
{
	pattern(buf, len, seed);
	return wr(fd, buf, len, bar0 + off) == (ssize_t)len ? 0 : -1;
}

/* C defect 16: a dma-buf cannot be mmapped (exported O_RDONLY). */
TEST_F(mbochs, defect_16_dmabuf_mmap)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	uint8_t *map;
	int fd;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	EXPECT_EQ(0, map[0]);
	EXPECT_EQ(0, map[p.size - 1]);
	munmap(map, p.size);
	/* bad mappings */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, p.size + 4096, PROT_READ, MAP_SHARED, fd, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, p.size));
	close(fd);
}

/* Pixels written with write() to BAR0 show up in the dma-buf (C: 16 and 2). */
TEST_F(mbochs, defect_16_dmabuf_pixels_written_by_write)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	static uint8_t want[640 * 480 * 4];
	uint8_t *map;
	long diff;
	int fd;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_EQ(sizeof(want), p.size);
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	/* written after the dma-buf was mapped */
	ASSERT_EQ(0, fill_by_write(self->fd, self->bar0, 0, want, sizeof(want), 1));
	diff = first_diff(want, map, sizeof(want));
	EXPECT_EQ(-1, diff) TH_LOG("first difference at byte %ld", diff);
	munmap(map, p.size);
	close(fd);
}

/* Pixels written through a mapping of BAR0 show up in the dma-buf (C: 16). */
TEST_F(mbochs, defect_16_dmabuf_pixels_written_by_mmap)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	static uint8_t want[640 * 480 * 4];
	uint8_t *vram, *map;
	long diff;
	int fd;

	vram = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		    self->bar0);
	ASSERT_NE(MAP_FAILED, vram);
	/* written before the mode exists */
	pattern(want, sizeof(want), 2);
	memcpy(vram, want, sizeof(want));
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	diff = first_diff(want, map, sizeof(want));
	EXPECT_EQ(-1, diff) TH_LOG("first difference at byte %ld", diff);
	/* and while both are mapped */
	pattern(want, sizeof(want), 3);
	memcpy(vram, want, sizeof(want));
	diff = first_diff(want, map, sizeof(want));
	EXPECT_EQ(-1, diff) TH_LOG("first difference at byte %ld", diff);
	munmap(map, p.size);
	munmap(vram, self->memsize);
	close(fd);
}

/* Panning: the dma-buf of a panned mode starts at the offset (C: 16). */
TEST_F(mbochs, defect_16_dmabuf_pan)
{
	struct vfio_device_gfx_plane_info p;
	/* 800 wide: within every type's EDID maximum; lines of 1024 pixels. */
	struct mode m = mode_xy(800, 256);
	uint32_t *vram, *map;
	uint32_t id0;
	int fd;

	m.virt_width = 1024;

	vram = mmap(NULL, self->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		    self->bar0);
	ASSERT_NE(MAP_FAILED, vram);
	/* every line holds its number */
	for (uint32_t y = 0; y < 512; y++)
		for (uint32_t x = 0; x < 1024; x++)
			vram[y * 1024 + x] = y << 16 | x;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	id0 = p.dmabuf_id;
	m.yoff = 100;
	m.xoff = 0;
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_NE(id0, p.dmabuf_id);
	EXPECT_EQ(800, p.width);
	EXPECT_EQ(256, p.height);
	EXPECT_EQ(4096, p.stride);
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	EXPECT_EQ(100u << 16, map[0]);
	EXPECT_EQ(101u << 16 | 5, map[1024 + 5]);
	EXPECT_EQ(355u << 16 | 1023, map[255 * 1024 + 1023]);
	munmap(map, p.size);
	close(fd);
	munmap(vram, self->memsize);
}

/*
 * C defect 4: a second GET_GFX_DMABUF for the same id installs another fd
 * without a reference; closing both underflows the refcount.
 */
TEST_F(mbochs, defect_4_two_fds_for_one_dmabuf)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	static uint8_t want[320 * 240 * 4];
	uint8_t *map;
	int fd1, fd2;

	if (mdev_impl_is_c())
		SKIP(return, "would corrupt the C module: use-after-free (defect 4)");
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_EQ(0, fill_by_write(self->fd, self->bar0, 0, want, sizeof(want), 4));
	fd1 = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd1);
	fd2 = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd2);
	EXPECT_NE(fd1, fd2);
	EXPECT_EQ(0, close(fd1));
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd2, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	EXPECT_EQ(0, close(fd2));
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	munmap(map, p.size);
	/* and a third one after both were closed */
	fd1 = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd1);
	EXPECT_EQ(0, close(fd1));
}

/*
 * C defect 5: closing an exported dma-buf puts its pages but leaves it listed;
 * exporting it again and closing puts them a second time.
 */
TEST_F(mbochs, defect_5_reexport_after_close)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	static uint8_t want[320 * 240 * 4];
	uint8_t *map;
	uint32_t id;
	int fd;

	if (mdev_impl_is_c())
		SKIP(return, "would corrupt the C module: page refcount underflow (defect 5)");
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	id = p.dmabuf_id;
	for (int i = 0; i < 3; i++) {
		fd = get_dmabuf(self->fd, id);
		ASSERT_LE(0, fd) TH_LOG("round %d", i);
		EXPECT_EQ(0, close(fd));
		ASSERT_EQ(0, query_primary(self->fd, &p));
		ASSERT_EQ(id, p.dmabuf_id);
	}
	ASSERT_EQ(0, fill_by_write(self->fd, self->bar0, 0, want, sizeof(want), 5));
	fd = get_dmabuf(self->fd, id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	munmap(map, p.size);
	close(fd);
}

/*
 * C defect 6: closing the device frees dma-bufs that were never exported
 * without putting their pages: each open/query/close cycle leaks the mode's
 * pages. Measured as MemFree before and after.
 */
TEST_F(mbochs, defect_6_close_frees_unexported_dmabuf_pages)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_second_half(self->memsize);
	/* C leaks memsize / 2 per cycle: 64 MB in all */
	int cycles = self->type->mbytes >= 128 ? 1 : 128 / self->type->mbytes;
	long before = -1, after;

	for (int i = 0; i <= cycles; i++) {
		if (i == 1)	/* the first cycle warms up */
			before = meminfo_kb("MemFree");
		ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
		query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY);
		ASSERT_EQ(0, query(self->fd, &p, VFIO_GFX_PLANE_TYPE_DMABUF, PLANE_PRIMARY));
		ASSERT_EQ(self->memsize / 2, p.size);
		vfio_close(&self->h);
		ASSERT_EQ(0, vfio_open(self->uuid, variant->cdev, &self->h));
		self->fd = self->h.device;
	}
	after = meminfo_kb("MemFree");
	ASSERT_LT(0, before);
	EXPECT_GT(16 * 1024, before - after)
		TH_LOG("MemFree went down by %ld kB over %d cycles of %u MB", before - after,
		       cycles, self->type->mbytes / 2);
}

/*
 * Thousands of mode changes (a guest panning or resizing) must not grow the
 * device's memory without bound: the C sample keeps a dma-buf, with its page
 * array and page references, for every mode it ever saw until the device is
 * closed; Rust keeps at most 16. Every mode here is a distinct full-screen
 * pan position (then a narrower width), each queried like QEMU does.
 */
TEST_F(mbochs, defect_dmabuf_cache_bounded_over_2000_modes)
{
	const uint32_t w = self->type->max_x ?: 1920;
	const uint32_t h = self->type->max_y ? (self->type->max_y < 1080 ? self->type->max_y : 1080) : 1080;
	const uint32_t pans = (self->memsize - (uint64_t)w * h * 4) / (w * 4) + 1;
	struct vfio_device_gfx_plane_info p;
	long before = -1, after;
	uint32_t first_id = 0;

	for (int i = 0; i < 2000; i++) {
		struct mode m = mode_xy(w - 8 * (i / pans), h);

		ASSERT_LT(i / pans, w / 16) TH_LOG("VRAM too small for 2000 distinct modes");
		m.yoff = i % pans;
		if (i == 20)	/* the first modes warm up */
			before = meminfo_kb("MemFree");
		ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
		ASSERT_EQ(0, query_primary(self->fd, &p)) TH_LOG("mode %d", i);
		ASSERT_EQ(m.xres, p.width) TH_LOG("mode %d", i);
		ASSERT_NE(0, p.dmabuf_id);
		if (!first_id)
			first_id = p.dmabuf_id;
	}
	after = meminfo_kb("MemFree");
	ASSERT_LT(0, before);
	/*
	 * VRAM pages come into being at first touch: after the warm-up the
	 * later pan positions still reach the rest of VRAM (on mbochs-medium
	 * up to 16 MB - 1920x1080x4, about 7.7 MB), which counts here too.
	 * Rust's 16 cached dma-bufs hold ~16 kB of page array each; C's 2000,
	 * with their page references, ~32 MB. (Touching all of VRAM first
	 * would take that share out, but on the C sample it dereferences page
	 * arrays an earlier defect's use-after-free has scribbled over: an
	 * Oops.)
	 */
	EXPECT_GT(12 * 1024, before - after)
		TH_LOG("MemFree went down by %ld kB over 2000 modes of %ux%u with the device open",
		       before - after, w, h);
	/* the device still works, and pixels still flow */
	{
		struct mode m = mode_xy(320, 240);
		int fd;

		ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
		ASSERT_EQ(0, query_primary(self->fd, &p));
		fd = get_dmabuf(self->fd, p.dmabuf_id);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0, close(fd));
	}
}

/*
 * The type's EDID maximum (max_xres x max_yres, advertised in the EDID
 * region) bounds the modes the device shows; the C sample advertises it but
 * shows any mode that fits VRAM.
 */
TEST_F(mbochs, defect_edid_max_resolution_enforced)
{
	const uint32_t max_x = self->type->max_x, max_y = self->type->max_y;
	struct vfio_device_gfx_plane_info p;
	struct mode m;

	if (!max_x)
		SKIP(return, "%s has no EDID maximum", self->type->name);
	EXPECT_EQ(max_x, edid_rd(self->fd, self->edid, EDID_REG(max_xres)));
	EXPECT_EQ(max_y, edid_rd(self->fd, self->edid, EDID_REG(max_yres)));
	/* the maximum itself is shown */
	m = mode_xy(max_x, max_y);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(max_x, p.width);
	EXPECT_EQ(max_y, p.height);
	/* wider or taller is not, though it fits VRAM */
	m = mode_xy(max_x + 8, 240);
	ASSERT_LE((uint64_t)m.xres * m.yres * 4, self->memsize);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
	m = mode_xy(320, max_y + 8);
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	expect_no_plane(_metadata, &p);
}

/* A dma-buf outlives the device fd it came from (C: 16 for the pixels). */
TEST_F(mbochs, dmabuf_fd_outlives_device_close)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(320, 240);
	struct stat st;
	int fd;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	vfio_close(&self->h);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(p.size, st.st_size);
	EXPECT_EQ(0, close(fd));
	/* the device opens again, with its reset state */
	ASSERT_EQ(0, vfio_open(self->uuid, variant->cdev, &self->h));
	self->fd = self->h.device;
	EXPECT_EQ(DISPI_ID5, dispi_rd(self->fd, self->bar2, DISPI_ID));
}

TEST_F(mbochs, defect_16_dmabuf_pixels_outlive_device_close)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	static uint8_t want[640 * 480 * 4];
	uint8_t *map;
	int fd;

	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_EQ(0, fill_by_write(self->fd, self->bar0, 0, want, sizeof(want), 6));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	vfio_close(&self->h);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	close(fd);
	/* the mapping keeps the pages */
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	munmap(map, p.size);
}

/*
 * C defect 7: a dma-buf holds no reference on the device; removing the mdev
 * while a dma-buf fd is open is a use-after-free in its release.
 */
TEST_F(mbochs, defect_7_dmabuf_outlives_mdev_removal)
{
	struct vfio_device_gfx_plane_info p;
	struct mode m = mode_xy(640, 480);
	static uint8_t want[640 * 480 * 4];
	long full = pool_mb() / self->type->mbytes;
	uint8_t *map;
	int fd;

	if (mdev_impl_is_c())
		SKIP(return, "would corrupt the C module: use-after-free (defect 7)");
	ASSERT_EQ(0, set_mode(self->fd, self->bar2, &m));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	ASSERT_EQ(0, fill_by_write(self->fd, self->bar0, 0, want, sizeof(want), 7));
	fd = get_dmabuf(self->fd, p.dmabuf_id);
	ASSERT_LE(0, fd);
	map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap dma-buf: %s", strerror(errno));
	vfio_close(&self->h);
	ASSERT_EQ(0, mdev_remove(self->uuid));
	self->removed = true;
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(0, memcmp(want, map, sizeof(want)));
	munmap(map, p.size);
	/* everything released: the whole pool is back */
	for (int i = 0; i < 50 && available(self->type) != full; i++)
		usleep(20000);
	EXPECT_EQ(full, available(self->type));
}

/* ---- hostile DISPI programming -------------------------------------------- */

TEST_F(mbochs, hostile_dispi)
{
	struct vfio_device_gfx_plane_info p;
	uint32_t seed = 0x6d626f63, exported[256];
	int nexported = 0, planes = 0, fds = 0;

	for (int iter = 0; iter < 96; iter++) {
		uint16_t r[DISPI_COUNT];
		uint64_t stride, off;
		int fd, ret;

		for (int i = 0; i < DISPI_COUNT; i++)
			r[i] = rnd(&seed);
		if (iter % 3 != 0) {	/* mostly plausible modes */
			r[DISPI_ENABLE] |= DISPI_ENABLED;
			r[DISPI_BPP] = 32;
			r[DISPI_XRES] %= iter % 3 == 1 ? 700 : 2200;
			r[DISPI_YRES] %= iter % 3 == 1 ? 500 : 2200;
			r[DISPI_VIRT_WIDTH] %= iter % 2 ? 1 : 2400;
			r[DISPI_X_OFFSET] %= iter % 4 ? 1 : 2048;
			r[DISPI_Y_OFFSET] %= iter % 5 ? 1 : 1024;
		}
		for (int i = 0; i < DISPI_COUNT; i++)
			ASSERT_EQ(0, dispi_wr(self->fd, self->bar2, i, r[i]));
		ret = query_primary(self->fd, &p);
		ASSERT_EQ(0, ret) TH_LOG("iteration %d: %s", iter, strerror(-ret));
		if (!p.dmabuf_id) {
			EXPECT_EQ(0, p.size);
			continue;
		}
		planes++;
		stride = p.stride;
		off = (uint64_t)r[DISPI_X_OFFSET] * 4 + r[DISPI_Y_OFFSET] * stride;
		EXPECT_EQ(DRM_FORMAT_XRGB8888, p.drm_format);
		EXPECT_EQ(r[DISPI_XRES], p.width) TH_LOG("iteration %d", iter);
		EXPECT_EQ(r[DISPI_YRES], p.height) TH_LOG("iteration %d", iter);
		EXPECT_LE(p.width * 4ull, stride);
		EXPECT_EQ(stride * p.height, p.size);
		ASSERT_GE(self->memsize, off + p.size)
			TH_LOG("iteration %d: offset %#llx size %#x", iter,
			       (unsigned long long)off, p.size);
		/* C: never export an id twice (defect 5) */
		bool seen = false;

		for (int i = 0; i < nexported; i++)
			seen |= exported[i] == p.dmabuf_id;
		if (seen || nexported == ARRAY_SIZE(exported))
			continue;
		exported[nexported++] = p.dmabuf_id;
		fd = get_dmabuf(self->fd, p.dmabuf_id);
		if (fd < 0) {
			/* a framebuffer not starting on a page cannot be exported */
			EXPECT_EQ(-EINVAL, fd) TH_LOG("iteration %d", iter);
			continue;
		}
		fds++;
		if (!mdev_impl_is_c()) {	/* C: no dma-buf mmap (defect 16) */
			volatile uint8_t *map = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
			uint32_t sum = 0;

			ASSERT_NE(MAP_FAILED, map) TH_LOG("iteration %d", iter);
			for (uint64_t o = 0; o < p.size; o += 4096)
				sum += map[o];
			sum += map[p.size - 1];
			munmap((void *)map, p.size);
		}
		close(fd);
	}
	TH_LOG("%d planes, %d dma-bufs exported", planes, fds);
	EXPECT_LT(10, planes);
	EXPECT_LT(3, fds);
	/* the device still works */
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(DISPI_ID5, dispi_rd(self->fd, self->bar2, DISPI_ID));
	ASSERT_EQ(0, query_primary(self->fd, &p));
	EXPECT_EQ(0, p.dmabuf_id);
}

/* ---- EDID region ---------------------------------------------------------------- */

static uint32_t edid_rd(int fd, off_t edid, off_t reg)
{
	return rd32(fd, edid + reg);
}

TEST_F(mbochs, edid_registers)
{
	EXPECT_EQ(EDID_BLOB, edid_rd(self->fd, self->edid, EDID_REG(edid_offset)));
	EXPECT_EQ(EDID_MAX, edid_rd(self->fd, self->edid, EDID_REG(edid_max_size)));
	EXPECT_EQ(0, edid_rd(self->fd, self->edid, EDID_REG(edid_size)));
	EXPECT_EQ(self->type->max_x, edid_rd(self->fd, self->edid, EDID_REG(max_xres)));
	EXPECT_EQ(self->type->max_y, edid_rd(self->fd, self->edid, EDID_REG(max_yres)));
}

TEST_F(mbochs, edid_readonly_registers)
{
	static const off_t ro[] = { EDID_REG(edid_offset), EDID_REG(edid_max_size),
				    EDID_REG(max_xres), EDID_REG(max_yres) };
	uint32_t before[ARRAY_SIZE(ro)], v = 0x1234;

	for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
		before[i] = edid_rd(self->fd, self->edid, ro[i]);
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
		ssize_t ret = wr(self->fd, &v, 4, self->edid + ro[i]);

		/* ignored or refused, never stored */
		EXPECT_TRUE(ret == 4 || ret == -EINVAL || ret == -EPERM || ret == -EACCES)
			TH_LOG("write to register %#llx: %zd", (unsigned long long)ro[i], ret);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
		EXPECT_EQ(before[i], edid_rd(self->fd, self->edid, ro[i]));
}

TEST_F(mbochs, edid_protocol)
{
	uint8_t blob[EDID_MAX], out[EDID_MAX], zero[EDID_MAX] = { 0 };
	uint32_t size = 256;

	pattern(blob, sizeof(blob), 8);
	blob[0] = 0xff;	/* never all zero */
	/* (1) link down, (2) blob and size, (3) link up */
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(link_state), LINK_DOWN));
	EXPECT_EQ(LINK_DOWN, edid_rd(self->fd, self->edid, EDID_REG(link_state)));
	ASSERT_EQ(sizeof(blob), wr(self->fd, blob, sizeof(blob), self->edid + EDID_BLOB));
	ASSERT_EQ(sizeof(out), rd(self->fd, out, sizeof(out), self->edid + EDID_BLOB));
	EXPECT_EQ(0, memcmp(blob, out, sizeof(out)));
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(edid_size), size));
	EXPECT_EQ(size, edid_rd(self->fd, self->edid, EDID_REG(edid_size)));
	/* link down: the BAR2 mirror is blank */
	ASSERT_EQ(size, rd(self->fd, out, size, self->bar2));
	EXPECT_EQ(0, memcmp(zero, out, size));
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(link_state), LINK_UP));
	EXPECT_EQ(LINK_UP, edid_rd(self->fd, self->edid, EDID_REG(link_state)));
	/* link up: the mirror shows the blob up to edid_size, zeros after */
	ASSERT_EQ(size, rd(self->fd, out, size, self->bar2));
	EXPECT_EQ(0, memcmp(blob, out, size));
	ASSERT_EQ(EDID_MAX - size, rd(self->fd, out, EDID_MAX - size, self->bar2 + size));
	EXPECT_EQ(0, memcmp(zero, out, EDID_MAX - size));
	/* a larger blob */
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(link_state), LINK_DOWN));
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(edid_size), EDID_MAX));
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(link_state), LINK_UP));
	ASSERT_EQ(EDID_MAX, rd(self->fd, out, EDID_MAX, self->bar2));
	EXPECT_EQ(0, memcmp(blob, out, EDID_MAX));
	/* link down again */
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(link_state), LINK_DOWN));
	ASSERT_EQ(EDID_MAX, rd(self->fd, out, EDID_MAX, self->bar2));
	EXPECT_EQ(0, memcmp(zero, out, EDID_MAX));
}

/* edid_size beyond edid_max_size is refused (C: stored as is). */
TEST_F(mbochs, defect_edid_size_over_max)
{
	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(edid_size), 128));
	EXPECT_EQ(-EINVAL, wr32(self->fd, self->edid + EDID_REG(edid_size), EDID_MAX + 1));
	EXPECT_EQ(-EINVAL, wr32(self->fd, self->edid + EDID_REG(edid_size), 0xffffffff));
	EXPECT_EQ(128, edid_rd(self->fd, self->edid, EDID_REG(edid_size)));
}

/* EDID region accesses that are not served (see below). */
static const struct { off_t off; size_t len; } edid_bad[] = {
	{ EDID_REG(edid_size), 1 }, { EDID_REG(edid_size), 2 },
	{ EDID_REG(edid_size) + 2, 2 }, { EDID_REG(link_state) + 1, 1 },
	{ EDID_REG(edid_offset) + 1, 4 }, { EDID_REG(link_state) + 2, 4 },
	{ 0x18, 4 }, { 0x100, 4 }, { 0x7fc, 4 },
	{ EDID_BLOB + EDID_MAX, 4 }, { EDID_BLOB + EDID_MAX - 2, 4 },
	{ 0xffc, 4 },
};

/*
 * C defect 8: the accesses the C sample ignores in the EDID region return
 * uninitialised kernel stack. Whether they fail or succeed, a read must not
 * return anything but zeros, and nothing changes. (On 7.3 the C sample's
 * stack happens to hold zeros there, so this passes on C as well.)
 */
TEST_F(mbochs, edid_ignored_reads_are_zero)
{
	uint8_t buf[8];
	unsigned long nonzero = 0;

	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(edid_size), 0x40));
	for (int round = 0; round < 8; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(edid_bad); i++) {
			ssize_t ret;

			memset(buf, 0, sizeof(buf));
			ret = rd(self->fd, buf, edid_bad[i].len, self->edid + edid_bad[i].off);
			for (size_t j = 0; ret > 0 && j < edid_bad[i].len; j++)
				nonzero += buf[j] != 0;
			/* something else on the stack in between */
			rd32(self->fd, self->bar2 + DISPI_BASE);
			dispi_rd(self->fd, self->bar2, DISPI_ID);
		}
	}
	EXPECT_EQ(0, nonzero) TH_LOG("%lu bytes of garbage read", nonzero);
	EXPECT_EQ(0x40, edid_rd(self->fd, self->edid, EDID_REG(edid_size)));
	EXPECT_EQ(EDID_BLOB, edid_rd(self->fd, self->edid, EDID_REG(edid_offset)));
}

/*
 * Accesses to the EDID registers other than aligned dwords, and accesses
 * beyond the registers or the blob, fail (C: they "succeed" and do nothing;
 * not in the numbered list).
 */
TEST_F(mbochs, defect_edid_bad_accesses_fail)
{
	uint8_t buf[8];
	uint32_t v = 0x10;

	ASSERT_EQ(0, wr32(self->fd, self->edid + EDID_REG(edid_size), 0x40));
	for (size_t i = 0; i < ARRAY_SIZE(edid_bad); i++) {
		ssize_t ret;

		ret = rd(self->fd, buf, edid_bad[i].len, self->edid + edid_bad[i].off);
		EXPECT_GT(0, ret) TH_LOG("read %zu at %#llx: %zd", edid_bad[i].len,
					 (unsigned long long)edid_bad[i].off, ret);
		ret = wr(self->fd, &v, edid_bad[i].len, self->edid + edid_bad[i].off);
		EXPECT_GT(0, ret) TH_LOG("write %zu at %#llx: %zd", edid_bad[i].len,
					 (unsigned long long)edid_bad[i].off, ret);
	}
	EXPECT_EQ(0x40, edid_rd(self->fd, self->edid, EDID_REG(edid_size)));
}

/* ---- pool accounting and sysfs ------------------------------------------------ */

/* 14 s measured on every type: fills the pool one mdev at a time. */
TEST_F_TIMEOUT(mbochs, pool_accounting, 90)
{
	long pool = pool_mb(), used = self->type->mbytes;
	char extra[64][40];
	int n, ret;

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		EXPECT_EQ((pool - used) / types[i].mbytes, available(&types[i]))
			TH_LOG("%s", types[i].name);
	}
	for (n = 0; used + self->type->mbytes <= pool; n++) {
		ASSERT_GT(ARRAY_SIZE(extra), n);
		gen_uuid(extra[n]);
		ret = mdev_create("mbochs", self->type->name, extra[n]);
		ASSERT_EQ(0, ret) TH_LOG("mdev %d: %s", n, strerror(-ret));
		used += self->type->mbytes;
		for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
			EXPECT_EQ((pool - used) / types[i].mbytes, available(&types[i]))
				TH_LOG("%s after %d more", types[i].name, n + 1);
		}
	}
	EXPECT_EQ(0, available(self->type));
	gen_uuid(extra[n]);
	EXPECT_EQ(-ENOSPC, mdev_create("mbochs", self->type->name, extra[n]));
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		if (types[i].mbytes > pool - used) {
			EXPECT_EQ(-ENOSPC, mdev_create("mbochs", types[i].name, extra[n]))
				TH_LOG("%s", types[i].name);
		}
	}
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(0, mdev_remove(extra[i]));
		used -= self->type->mbytes;
		EXPECT_EQ((pool - used) / self->type->mbytes, available(self->type));
	}
	EXPECT_EQ((pool - self->type->mbytes) / self->type->mbytes, available(self->type));
}

TEST_F(mbochs, sysfs_types)
{
	char path[PATH_MAX], buf[256], want[64];

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		snprintf(path, sizeof(path), MDEV_CLASS "/mbochs/mdev_supported_types/%s/name",
			 types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf))) TH_LOG("%s", path);
		snprintf(want, sizeof(want), "%s\n", types[i].name);
		EXPECT_STREQ(want, buf);
		snprintf(path, sizeof(path),
			 MDEV_CLASS "/mbochs/mdev_supported_types/%s/description", types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
		snprintf(want, sizeof(want), "virtual display, %u MB video memory\n",
			 types[i].mbytes);
		EXPECT_STREQ(want, buf);
		snprintf(path, sizeof(path),
			 MDEV_CLASS "/mbochs/mdev_supported_types/%s/device_api", types[i].name);
		ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
		EXPECT_STREQ("vfio-pci\n", buf);
	}
	ASSERT_NE(NULL, realpath(MDEV_CLASS "/mbochs", path));
	EXPECT_STREQ("/sys/devices/virtual/mbochs/mbochs", path);
	ASSERT_NE(NULL, realpath("/sys/class/mbochs/mbochs", path));
	EXPECT_STREQ("/sys/devices/virtual/mbochs/mbochs", path);
}

TEST_F(mbochs, sysfs_device)
{
	char path[PATH_MAX], buf[256], want[64];

	snprintf(path, sizeof(path), MDEV_BUS "/%s/vendor/memory", self->uuid);
	ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%u MB\n", self->type->mbytes);
	EXPECT_STREQ(want, buf);
	snprintf(path, sizeof(path), MDEV_BUS "/%s/mdev_type/name", self->uuid);
	ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%s\n", self->type->name);
	EXPECT_STREQ(want, buf);
}

TEST_F(mbochs, sysfs_module_param_count)
{
	check_module_param(_metadata, "mbochs", "count", pool_mb());
}

TEST_F(mbochs, sysfs_create_bad)
{
	EXPECT_NE(0, mdev_create("mbochs", "mbochs-small", "not-a-uuid"));
	EXPECT_EQ(-EEXIST, mdev_create("mbochs", "mbochs-small", self->uuid));
}

TEST_HARNESS_MAIN
