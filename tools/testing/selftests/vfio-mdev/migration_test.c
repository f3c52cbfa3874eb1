// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest for VFIO live migration (migration v2) of the mdev display
 * drivers, mdpy and mbochs: the state machine, the data fd, a save on one
 * mdev restored into another of the same type, and refused streams.
 *
 * Environment: MIG_DRIVER (mdpy or mbochs, default mdpy), MIG_TYPE (default
 * mdpy-xga / mbochs-medium), MDEV_IMPL (c or rust). The C samples have no
 * migration: on them every test SKIPs with that reason after checking that
 * VFIO_DEVICE_FEATURE_MIGRATION is indeed ENOTTY (tap-verdict.sh reports a
 * SKIP as "not run", never as passed). On Rust a device without migration
 * fails every test.
 *
 * The stream format and the errno of each refusal are documented in
 * Documentation/mdev-rs/migration.rst.
 */
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "mdev_lib.h"
#include "mig_lib.h"
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
#include "mbochs_regs.h"

#define CONFIG_INDEX VFIO_PCI_CONFIG_REGION_INDEX
#define BAR0_INDEX VFIO_PCI_BAR0_REGION_INDEX
#define BAR2_INDEX VFIO_PCI_BAR2_REGION_INDEX
#define EDID_INDEX VFIO_PCI_NUM_REGIONS
#define EDID_REG(f) offsetof(struct vfio_region_gfx_edid, f)
#define EDID_BLOB 0x800
#define MB (1024 * 1024)
#define PAGE 4096

/* The stream (Documentation/mdev-rs/migration.rst) */
#define HDR_LEN 80
#define SEC_LEN 16
#define SEC_END 0
#define SEC_CONFIG 1
#define SEC_PAGE 2	/* format 1.x: one page */
#define SEC_RUN 3	/* format 2.x: a run of pages, key the first */
#define RUN_PAGES 256	/* the most pages per run a source sends (runs never cross a multiple) */
#define MAJOR 2		/* the format version written */
#define SEC_MDPY_MODE 0x100
#define SEC_DISPI 0x100
#define SEC_EDID 0x101
#define SEC_OPTIONAL 1

#define ALL_MIG_FLAGS (VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY)

static const char *const state_names[] = {
	"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P",
	"PRE_COPY", "PRE_COPY_P2P",
};

static bool is_mbochs(void)
{
	const char *d = getenv("MIG_DRIVER");

	return d && !strcmp(d, "mbochs");
}

static const char *type_name(void)
{
	return getenv("MIG_TYPE") ?: is_mbochs() ? "mbochs-medium" : "mdpy-xga";
}

static int precopy_info(int dfd, struct vfio_precopy_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, info) ? -errno : 0;
}

static int reset(int fd)
{
	return ioctl(fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t le16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }

struct section {
	size_t at;		/* offset of its header in the stream */
	uint16_t id, flags;
	uint32_t len;
	uint64_t key;
};

/* The n-th section (the end marker included); false past the end. */
static bool section_at(const struct buf *s, int n, struct section *out)
{
	size_t at = le32(s->p + 12);

	for (int i = 0; at + SEC_LEN <= s->len; i++) {
		out->at = at;
		out->id = le16(s->p + at);
		out->flags = le16(s->p + at + 2);
		out->len = le32(s->p + at + 4);
		out->key = le64(s->p + at + 8);
		if (i == n)
			return true;
		if (out->id == SEC_END)
			return false;
		at += SEC_LEN + out->len;
	}
	return false;
}

/* The last section with this id (and key); false if none. */
static bool find_section(const struct buf *s, uint16_t id, uint64_t key, struct section *out)
{
	struct section sec;
	bool found = false;

	for (int i = 0; section_at(s, i, &sec); i++)
		if (sec.id == id && sec.key == key) {
			*out = sec;
			found = true;
		}
	return found;
}

static int count_sections(const struct buf *s, uint16_t id)
{
	struct section sec;
	int n = 0;

	for (int i = 0; section_at(s, i, &sec); i++)
		n += sec.id == id;
	return n;
}

/* Pages held by the page and run sections of s. */
static long count_pages(const struct buf *s)
{
	struct section sec;
	long n = 0;

	for (int i = 0; section_at(s, i, &sec); i++)
		n += sec.id == SEC_PAGE ? 1 : sec.id == SEC_RUN ? sec.len / PAGE : 0;
	return n;
}

/* The first run section of s; false if none. */
static bool first_run(const struct buf *s, struct section *out)
{
	for (int i = 0; section_at(s, i, out); i++)
		if (out->id == SEC_RUN)
			return true;
	return false;
}

/* The runs a source sends for a memory of `pages` pages that all go. */
static size_t full_runs(size_t pages)
{
	return (pages + RUN_PAGES - 1) / RUN_PAGES;
}

/*
 * The format 1.0 copy of a 2.x stream s (as an older source writes it):
 * major 1, each run of pages as page sections, one per page.
 */
static struct buf to_v1(const struct buf *s)
{
	struct buf out = {};
	struct section sec;
	uint8_t h[SEC_LEN];

	buf_put(&out, s->p, le32(s->p + 12));
	put16(out.p + 8, 1);
	for (int i = 0; section_at(s, i, &sec); i++) {
		if (sec.id != SEC_RUN) {
			buf_put(&out, s->p + sec.at, SEC_LEN + sec.len);
			continue;
		}
		for (uint32_t o = 0; o < sec.len; o += PAGE) {
			memset(h, 0, sizeof(h));
			put16(h, SEC_PAGE);
			put32(h + 4, PAGE);
			put64(h + 8, sec.key + o / PAGE);
			buf_put(&out, h, SEC_LEN);
			buf_put(&out, s->p + sec.at + SEC_LEN + o, PAGE);
		}
	}
	return out;
}

/* A copy of s with `len` bytes at `at` replaced by `ins` (ins_len bytes). */
static struct buf splice(const struct buf *s, size_t at, size_t len, const void *ins,
			 size_t ins_len)
{
	struct buf out = {};

	buf_put(&out, s->p, at);
	if (ins_len)
		buf_put(&out, ins, ins_len);
	buf_put(&out, s->p + at + len, s->len - at - len);
	return out;
}

/* ---- /dev/kmsg: the dev_err of a refusal -------------------------------------- */

static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Whether a record since kmsg_open() contains `what`. */
static bool kmsg_has(int fd, const char *what)
{
	char rec[2048];
	bool found = false;
	ssize_t n;

	if (fd < 0)
		return false;
	while ((n = read(fd, rec, sizeof(rec) - 1)) != 0) {
		if (n < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[n] = 0;
		if (strstr(rec, what))
			found = true;
	}
	return found;
}

/* How many records since the last read of fd contain `what`. */
static int kmsg_count(int fd, const char *what)
{
	char rec[2048];
	int count = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, rec, sizeof(rec) - 1)) != 0) {
		if (n < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[n] = 0;
		count += !!strstr(rec, what);
	}
	return count;
}

/* ---- the fixture: two mdevs of one type ------------------------------------------ */

struct dev {
	char uuid[40];
	struct vfio_handle h;
	int fd;
	off_t config, bar0, bar2, edid;
	uint64_t memsize;
	bool created;
};

FIXTURE(mig) {
	struct dev src, dst;
};

FIXTURE_VARIANT(mig) {
	bool cdev;
};

FIXTURE_VARIANT_ADD(mig, iommufd_cdev) {
	.cdev = true,
};

FIXTURE_VARIANT_ADD(mig, group_container) {
	.cdev = false,
};

static int dev_open(struct dev *d, bool cdev)
{
	struct vfio_region_info info;
	int ret;

	ret = vfio_open(d->uuid, cdev, &d->h);
	if (ret)
		return ret;
	d->fd = d->h.device;
	ret = region_info(d->fd, CONFIG_INDEX, &info);
	d->config = info.offset;
	ret = ret ?: region_info(d->fd, BAR0_INDEX, &info);
	d->bar0 = info.offset;
	d->memsize = info.size;
	if (is_mbochs()) {
		ret = ret ?: region_info(d->fd, BAR2_INDEX, &info);
		d->bar2 = info.offset;
		ret = ret ?: region_info(d->fd, EDID_INDEX, &info);
		d->edid = info.offset;
	}
	return ret;
}

static int dev_create(struct dev *d, const char *type, bool cdev)
{
	int ret;

	gen_uuid(d->uuid);
	ret = mdev_create(is_mbochs() ? "mbochs" : "mdpy", type, d->uuid);
	if (ret)
		return ret;
	d->created = true;
	return dev_open(d, cdev);
}

static void dev_destroy(struct dev *d)
{
	vfio_close(&d->h);
	if (d->created)
		mdev_remove(d->uuid);
	d->created = false;
}

/*
 * A fresh mdev of the type in place of d. The driver may take a moment to
 * get the old one's share of its pool back: ENOSPC is retried for 3 s.
 */
static int dev_recreate(struct dev *d, bool cdev)
{
	const struct timespec pause = { .tv_nsec = 100 * 1000 * 1000 };
	int ret;

	dev_destroy(d);
	for (int tries = 0;; tries++) {
		ret = dev_create(d, type_name(), cdev);
		if (ret != -ENOSPC || tries == 30)
			return ret;
		nanosleep(&pause, NULL);
	}
}

FIXTURE_SETUP(mig)
{
	uint64_t flags = 0;
	int ret;

	ret = dev_create(&self->src, type_name(), variant->cdev);
	ret = ret ?: dev_create(&self->dst, type_name(), variant->cdev);
	if (ret) {
		dev_destroy(&self->src);
		dev_destroy(&self->dst);
	}
	ASSERT_EQ(0, ret) TH_LOG("create and open two %s: %s", type_name(), strerror(-ret));
	ret = mig_flags(self->src.fd, &flags);
	if (ret == -ENOTTY && mdev_impl_is_c()) {
		dev_destroy(&self->src);
		dev_destroy(&self->dst);
		SKIP(return, "the C sample has no migration (VFIO_DEVICE_FEATURE_MIGRATION: ENOTTY)");
	}
	if (ret) {
		dev_destroy(&self->src);
		dev_destroy(&self->dst);
	}
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(mig)
{
	dev_destroy(&self->src);
	dev_destroy(&self->dst);
}

/* ---- device state helpers --------------------------------------------------------- */

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = seed >> 16;
	}
}

static int dispi_wr(struct dev *d, unsigned int idx, uint16_t v)
{
	return wr(d->fd, &v, 2, d->bar2 + DISPI_BASE + idx * 2) == 2 ? 0 : -1;
}

/*
 * Puts state in src worth migrating: config space writes, framebuffer
 * contents and, for mbochs, a mode, an EDID and the link up.
 */
static int make_state(struct dev *d, uint32_t seed)
{
	uint32_t bar = 0xe0000000, cmd = 0x0006;
	size_t len = is_mbochs() ? 64 * PAGE : d->memsize;
	uint8_t *fb = malloc(len);
	int err = 0;

	if (!fb)
		return -ENOMEM;
	pattern(fb, len, seed);
	/* mbochs: the first 64 pages and one far out; mdpy: all of it */
	if (wr(d->fd, fb, len, d->bar0) != (ssize_t)len)
		err = -EIO;
	if (is_mbochs() && wr(d->fd, fb, PAGE, d->bar0 + d->memsize - 3 * PAGE) != PAGE)
		err = -EIO;
	free(fb);
	err = err ?: wr32(d->fd, d->config + 0x10, bar);
	err = err ?: wr(d->fd, &cmd, 2, d->config + 0x04) == 2 ? 0 : -EIO;
	if (is_mbochs() && !err) {
		uint8_t edid[128];
		uint32_t v;

		err |= dispi_wr(d, DISPI_ENABLE, 0);
		err |= dispi_wr(d, DISPI_BPP, 32);
		err |= dispi_wr(d, DISPI_XRES, 128);
		err |= dispi_wr(d, DISPI_YRES, 96);
		err |= dispi_wr(d, DISPI_VIRT_WIDTH, 128);
		/* 8 lines of 512 bytes: the plane starts at a page, as a dma-buf must */
		err |= dispi_wr(d, DISPI_Y_OFFSET, 8);
		err |= dispi_wr(d, DISPI_ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
		pattern(edid, sizeof(edid), seed + 1);
		if (wr(d->fd, edid, sizeof(edid), d->edid + EDID_BLOB) != sizeof(edid))
			err = -EIO;
		v = sizeof(edid);
		err = err ?: wr32(d->fd, d->edid + EDID_REG(edid_size), v);
		v = VFIO_DEVICE_GFX_LINK_STATE_UP;
		err = err ?: wr32(d->fd, d->edid + EDID_REG(link_state), v);
	}
	return err;
}

/* Everything user space can read of a device's state. */
struct snapshot {
	uint8_t config[256];
	uint8_t *fb;
	uint8_t bar2[0x600];
	uint8_t edid[0x1000];
	struct vfio_device_gfx_plane_info plane;
	int plane_ret;
};

static int snapshot(struct dev *d, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->fb = malloc(d->memsize);
	if (!s->fb)
		return -ENOMEM;
	if (rd(d->fd, s->config, 256, d->config) != 256)
		return -EIO;
	if (rd(d->fd, s->fb, d->memsize, d->bar0) != (ssize_t)d->memsize)
		return -EIO;
	memset(&s->plane, 0, sizeof(s->plane));
	s->plane.argsz = sizeof(s->plane);
	s->plane.flags = is_mbochs() ? VFIO_GFX_PLANE_TYPE_DMABUF : VFIO_GFX_PLANE_TYPE_REGION;
	s->plane.drm_plane_type = PLANE_PRIMARY;
	s->plane_ret = ioctl(d->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &s->plane) ? -errno : 0;
	if (is_mbochs()) {
		/* 16-bit DISPI reads, 32-bit EDID register reads, the blob */
		for (off_t o = 0x500; o < 0x516; o += 2)
			if (rd(d->fd, s->bar2 + o, 2, d->bar2 + o) != 2)
				return -EIO;
		if (rd(d->fd, s->bar2, 0x400, d->bar2) != 0x400)
			return -EIO;
		for (off_t o = 0; o < (off_t)sizeof(struct vfio_region_gfx_edid); o += 4)
			if (rd(d->fd, s->edid + o, 4, d->edid + o) != 4)
				return -EIO;
		if (rd(d->fd, s->edid + EDID_BLOB, 0x400, d->edid + EDID_BLOB) != 0x400)
			return -EIO;
	}
	return 0;
}

static void snapshot_free(struct snapshot *s)
{
	free(s->fb);
	s->fb = NULL;
}

static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/* The bytes of the dma-buf of the primary plane (mbochs). */
static uint8_t *dmabuf_bytes(struct dev *d, struct vfio_device_gfx_plane_info *p)
{
	uint32_t id = p->dmabuf_id;
	int fd = ioctl(d->fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);
	uint8_t *out = NULL, *map;

	if (fd < 0) {
		fprintf(stderr, "# GET_GFX_DMABUF %u: %s\n", id, strerror(errno));
		return NULL;
	}
	map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		fprintf(stderr, "# mmap dma-buf of %u bytes: %s\n", p->size, strerror(errno));
	if (map != MAP_FAILED) {
		out = malloc(p->size);
		if (out)
			memcpy(out, map, p->size);
		munmap(map, p->size);
	}
	close(fd);
	return out;
}

/* ---- save and restore ---------------------------------------------------------------- */

/* A stop-copy save: STOP, STOP_COPY, read to EOF, STOP. */
static int save_stopcopy(struct dev *d, struct buf *out)
{
	int dfd, end, ret;

	ret = set_state(d->fd, STOP);
	if (ret != -1)
		return ret < 0 ? ret : -EBADF;
	dfd = set_state(d->fd, STOP_COPY);
	if (dfd < 0)
		return dfd;
	ret = read_all(dfd, out, &end);
	if (!ret && end)
		ret = -end;
	close(dfd);
	if (!ret) {
		ret = set_state(d->fd, STOP);
		ret = ret == -1 ? 0 : ret < 0 ? ret : -EBADF;
	}
	return ret;
}

/* Loads a stream: STOP, RESUMING, write, STOP. Returns 0 or -errno of the step. */
static int load(struct dev *d, const struct buf *s)
{
	int dfd, ret;

	ret = set_state(d->fd, RESUMING);
	if (ret < 0)
		return ret;
	dfd = ret;
	ret = write_all(dfd, s->p, s->len);
	close(dfd);
	if (ret)
		return ret;
	ret = set_state(d->fd, STOP);
	return ret == -1 ? 0 : ret < 0 ? ret : -EBADF;
}

/* ---- the feature ------------------------------------------------------------------------ */

TEST_F(mig, features)
{
	uint64_t flags;
	long size;

	ASSERT_EQ(0, mig_flags(self->src.fd, &flags));
	EXPECT_EQ(ALL_MIG_FLAGS, flags);
	EXPECT_EQ(RUNNING, get_state(self->src.fd));
	size = data_size(self->src.fd);
	EXPECT_LT(HDR_LEN + SEC_LEN + 256, size);
	/* PROBE: the migration features are there */
	EXPECT_EQ(0, feature(self->src.fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
			     VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0));
	EXPECT_EQ(0, feature(self->src.fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
			     VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0));
}

/* DMA logging: accepted, and nothing is ever dirty (the device does no DMA). */
TEST_F(mig, dma_logging_reports_nothing_dirty)
{
	struct vfio_device_feature_dma_logging_range range = { .iova = 0, .length = 1 << 20 };
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = PAGE, .num_ranges = 1, .ranges = (uintptr_t)&range,
	};
	uint64_t bitmap[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = 0, .length = 256 * PAGE, .page_size = PAGE, .bitmap = (uintptr_t)bitmap,
	};
	int fd = self->src.fd;

	EXPECT_EQ(-EINVAL, feature(fd, VFIO_DEVICE_FEATURE_GET |
				   VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep, sizeof(rep)));
	ASSERT_EQ(0, feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			     &ctl, sizeof(ctl)));
	EXPECT_EQ(-EBUSY, feature(fd, VFIO_DEVICE_FEATURE_SET |
				  VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl, sizeof(ctl)));
	memset(bitmap, 0, sizeof(bitmap));
	EXPECT_EQ(0, feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
			     &rep, sizeof(rep)));
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(0, bitmap[i]);
	EXPECT_EQ(0, feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
			     NULL, 0));
	EXPECT_EQ(0, feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			     &ctl, sizeof(ctl)));
}

/* ---- the state machine -------------------------------------------------------------------- */

static bool saving(int s)
{
	return s == PRE_COPY || s == PRE_COPY_P2P || s == STOP_COPY;
}

/* Reaches `s` from RUNNING (after a reset); the data fd, if any, or -1. */
static int reach(int fd, int s)
{
	int ret = reset(fd);

	if (ret)
		return ret;
	return s == RUNNING ? -1 : set_state(fd, s);
}

/*
 * Every (from, to) pair of the seven states: the request succeeds and lands
 * in `to`, with a data fd iff it starts a session; except STOP_COPY ->
 * PRE_COPY(_P2P) (not permitted by the uapi) and leaving RESUMING with no
 * data (the stream is incomplete): both fail and leave the state as it was.
 */
TEST_F(mig, every_arc)
{
	int fd = self->src.fd;

	for (int from = STOP; from < NSTATES; from++) {
		for (int to = STOP; to < NSTATES; to++) {
			int ffd = reach(fd, from), tfd, want_err = 0;
			bool want_fd;

			ASSERT_TRUE(ffd >= 0 || ffd == -1) TH_LOG("reach %s: %s", state_names[from],
								    strerror(-ffd));
			ASSERT_EQ(from, get_state(fd));
			if (from == STOP_COPY && (to == PRE_COPY || to == PRE_COPY_P2P))
				want_err = -EINVAL;
			else if (from == RESUMING && to != RESUMING)
				want_err = -ENODATA;
			want_fd = !want_err && from != to &&
				  ((saving(to) && !saving(from)) || to == RESUMING);
			tfd = set_state(fd, to);
			if (want_err) {
				EXPECT_EQ(want_err, tfd) TH_LOG("%s -> %s", state_names[from],
								state_names[to]);
				EXPECT_EQ(from, get_state(fd)) TH_LOG("%s -> %s failed",
								      state_names[from], state_names[to]);
			} else {
				EXPECT_EQ(want_fd, tfd >= 0) TH_LOG("%s -> %s: %d", state_names[from],
								    state_names[to], tfd);
				EXPECT_EQ(to, get_state(fd)) TH_LOG("%s -> %s", state_names[from],
								    state_names[to]);
			}
			if (tfd >= 0)
				close(tfd);
			if (ffd >= 0)
				close(ffd);
		}
	}
	EXPECT_EQ(0, reset(fd));
	EXPECT_EQ(RUNNING, get_state(fd));
}

TEST_F(mig, invalid_states)
{
	int fd = self->src.fd;

	EXPECT_EQ(-EINVAL, set_state(fd, ERROR));
	EXPECT_EQ(-EINVAL, set_state(fd, NSTATES));
	EXPECT_EQ(-EINVAL, set_state(fd, 1000));
	EXPECT_EQ(-EINVAL, set_state(fd, ~0u));
	EXPECT_EQ(RUNNING, get_state(fd));
}

/* A reset ends every session: the state is RUNNING, the fds are dead. */
TEST_F(mig, reset_ends_sessions)
{
	int fd = self->src.fd, dfd;
	uint8_t b[16];

	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(0, reset(fd));
	EXPECT_EQ(RUNNING, get_state(fd));
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	close(dfd);

	EXPECT_EQ(-1, set_state(fd, STOP));
	dfd = set_state(fd, RESUMING);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(0, reset(fd));
	EXPECT_EQ(RUNNING, get_state(fd));
	EXPECT_EQ(-1, write(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	close(dfd);
}

/* Closing the device ends the session; a reopened device is RUNNING. */
TEST_F(mig, close_ends_sessions)
{
	struct vfio_precopy_info info;
	uint8_t b[16];
	int dfd;

	ASSERT_EQ(-1, set_state(self->src.fd, STOP));
	dfd = set_state(self->src.fd, STOP_COPY);
	ASSERT_LE(0, dfd);
	vfio_close(&self->src.h);
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-EINVAL, precopy_info(dfd, &info));
	ASSERT_EQ(0, dev_open(&self->src, variant->cdev));
	EXPECT_EQ(RUNNING, get_state(self->src.fd));
	/* the mdev goes while the data fd is still open: nothing breaks */
	vfio_close(&self->src.h);
	EXPECT_EQ(0, mdev_remove(self->src.uuid));
	self->src.created = false;
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	close(dfd);
}

/* ---- the data fd -------------------------------------------------------------------------- */

TEST_F(mig, precopy_data_fd)
{
	int fd = self->src.fd, dfd, end;
	struct vfio_precopy_info info;
	struct buf all = {};
	uint8_t b[100];
	uint64_t initial;

	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	/* a stream: no pread, no write */
	EXPECT_EQ(-1, pread(dfd, b, sizeof(b), 0));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, write(dfd, b, sizeof(b)));
	EXPECT_EQ(EBADF, errno);
	/* PRECOPY_INFO: all the initial data, nothing dirty */
	ASSERT_EQ(0, precopy_info(dfd, &info));
	initial = info.initial_bytes;
	EXPECT_LT(HDR_LEN + SEC_LEN + 256, initial);
	EXPECT_EQ(0, info.dirty_bytes);
	EXPECT_EQ(100, read(dfd, b, sizeof(b)));
	EXPECT_EQ(0, memcmp(b, "MDEVRSMG", 8));
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(initial - 100, info.initial_bytes);
	/* argsz and cmd checks */
	info.argsz = offsetof(struct vfio_precopy_info, dirty_bytes);
	EXPECT_EQ(-1, ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO + 1, &info));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* the rest, then the temporary end: ENOMSG, also again */
	buf_put(&all, b, 100);
	ASSERT_EQ(0, read_all(dfd, &all, &end));
	EXPECT_EQ(ENOMSG, end);
	EXPECT_EQ(initial, all.len);
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENOMSG, errno);
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ(0, info.dirty_bytes);
	/* PRE_COPY_P2P: the same session */
	EXPECT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	/* STOP_COPY: the final data, then EOF for good; no PRECOPY_INFO */
	EXPECT_EQ(-1, set_state(fd, STOP_COPY));
	EXPECT_EQ(-1, ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, read_all(dfd, &all, &end));
	EXPECT_EQ(0, end);
	EXPECT_LT(initial, all.len);
	EXPECT_EQ(0, read(dfd, b, sizeof(b)));
	EXPECT_EQ(0, read(dfd, b, sizeof(b)));
	/* leaving STOP_COPY ends the session */
	EXPECT_EQ(-1, set_state(fd, STOP));
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	close(dfd);
	buf_free(&all);
}

/* Leaving PRE_COPY for RUNNING ends the session. */
TEST_F(mig, precopy_abort)
{
	int fd = self->src.fd, dfd;
	struct vfio_precopy_info info;
	uint8_t b[16];

	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	EXPECT_EQ(-1, read(dfd, b, sizeof(b)));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-1, ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	close(dfd);
}

/* STOP_COPY straight from STOP: EOF, never ENOMSG; the size was announced. */
TEST_F(mig, stopcopy_data_fd)
{
	long size = data_size(self->src.fd);
	struct buf s = {};
	int dfd, end;
	uint8_t b[16];

	ASSERT_EQ(0, make_state(&self->src, 1));
	size = data_size(self->src.fd);
	ASSERT_EQ(-1, set_state(self->src.fd, STOP));
	dfd = set_state(self->src.fd, STOP_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(0, end);
	EXPECT_EQ(0, read(dfd, b, sizeof(b)));
	EXPECT_EQ(size, (long)s.len);
	/* the header */
	EXPECT_EQ(0, memcmp(s.p, "MDEVRSMG", 8));
	EXPECT_EQ(MAJOR, le16(s.p + 8));
	EXPECT_EQ(0, le16(s.p + 10));
	EXPECT_EQ(HDR_LEN, le32(s.p + 12));
	EXPECT_STREQ(is_mbochs() ? "mbochs" : "mdpy", (char *)s.p + 16);
	EXPECT_STREQ(type_name(), (char *)s.p + 32);
	EXPECT_EQ(self->src.memsize, le64(s.p + 64));
	EXPECT_EQ(PAGE, le32(s.p + 72));
	/* the sections: config space once, ends with the end marker */
	EXPECT_EQ(1, count_sections(&s, SEC_CONFIG));
	EXPECT_EQ(0, le16(s.p + s.len - SEC_LEN));
	/* mdpy: every page; mbochs: only the 65 written */
	EXPECT_EQ(is_mbochs() ? 65 : (long)(self->src.memsize / PAGE), count_pages(&s));
	/* in runs: mbochs' first 64 pages and the one far out; mdpy's by RUN_PAGES */
	EXPECT_EQ(0, count_sections(&s, SEC_PAGE));
	EXPECT_EQ(is_mbochs() ? 2 : (int)full_runs(self->src.memsize / PAGE),
		  count_sections(&s, SEC_RUN));
	close(dfd);
	buf_free(&s);
}

/* ---- save and restore ---------------------------------------------------------------------- */

static void expect_same_device(struct __test_metadata *_metadata, struct dev *a, struct dev *b)
{
	struct snapshot sa, sb;

	ASSERT_EQ(0, snapshot(a, &sa));
	ASSERT_EQ(0, snapshot(b, &sb));
	EXPECT_EQ(-1, first_diff(sa.config, sb.config, 256));
	EXPECT_EQ(-1, first_diff(sa.fb, sb.fb, a->memsize));
	EXPECT_EQ(sa.plane_ret, sb.plane_ret);
	EXPECT_EQ(sa.plane.drm_format, sb.plane.drm_format);
	EXPECT_EQ(sa.plane.width, sb.plane.width);
	EXPECT_EQ(sa.plane.height, sb.plane.height);
	EXPECT_EQ(sa.plane.stride, sb.plane.stride);
	EXPECT_EQ(sa.plane.size, sb.plane.size);
	if (is_mbochs()) {
		uint8_t *da, *db;

		EXPECT_EQ(-1, first_diff(sa.bar2, sb.bar2, sizeof(sa.bar2)));
		EXPECT_EQ(-1, first_diff(sa.edid, sb.edid, sizeof(sa.edid)));
		ASSERT_EQ(0, sa.plane_ret) TH_LOG("the mode set is a plane");
		EXPECT_EQ(128, sa.plane.width);
		da = dmabuf_bytes(a, &sa.plane);
		db = dmabuf_bytes(b, &sb.plane);
		ASSERT_NE(NULL, da);
		ASSERT_NE(NULL, db);
		EXPECT_EQ(-1, first_diff(da, db, sa.plane.size));
		free(da);
		free(db);
	} else {
		EXPECT_EQ(sa.plane.region_index, sb.plane.region_index);
	}
	snapshot_free(&sa);
	snapshot_free(&sb);
}

/* STOP_COPY on src, RESUMING on dst: dst is src. */
TEST_F(mig, roundtrip_stopcopy)
{
	struct buf s = {};

	ASSERT_EQ(0, make_state(&self->src, 7));
	ASSERT_EQ(0, save_stopcopy(&self->src, &s));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &s));
	EXPECT_EQ(STOP, get_state(self->dst.fd));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&s);
}

/*
 * PRE_COPY while the device changes: the data read during pre-copy is
 * stale for one page and a register, stop-copy sends the state again; the
 * destination gets the final state.
 */
TEST_F(mig, roundtrip_precopy_with_changes)
{
	int fd = self->src.fd, dfd, end;
	struct buf s = {};
	uint8_t page[PAGE];

	ASSERT_EQ(0, make_state(&self->src, 3));
	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(ENOMSG, end);
	/* the guest keeps running */
	pattern(page, sizeof(page), 99);
	ASSERT_EQ(PAGE, wr(fd, page, PAGE, self->src.bar0 + 5 * PAGE));
	if (is_mbochs())
		ASSERT_EQ(0, dispi_wr(&self->src, DISPI_Y_OFFSET, 16));
	ASSERT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	ASSERT_EQ(-1, set_state(fd, STOP_COPY));
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(0, end);
	close(dfd);
	ASSERT_EQ(-1, set_state(fd, STOP));
	/* config space twice: once per copy of the state */
	EXPECT_EQ(2, count_sections(&s, SEC_CONFIG));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &s));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&s);
}

/*
 * What the destination held before is gone: a page written there takes the
 * source's bytes (mdpy sends every page), or reads as zeros when the source
 * never touched it (mbochs sends only the pages that exist).
 */
TEST_F(mig, restore_replaces_destination_pages)
{
	uint8_t page[PAGE], want[PAGE] = {};
	struct buf s = {};

	ASSERT_EQ(0, make_state(&self->src, 5));
	pattern(page, sizeof(page), 11);
	ASSERT_EQ(PAGE, wr(self->dst.fd, page, PAGE, self->dst.bar0 + 100 * PAGE));
	ASSERT_EQ(0, save_stopcopy(&self->src, &s));
	if (!is_mbochs())
		ASSERT_EQ(PAGE, rd(self->src.fd, want, PAGE, self->src.bar0 + 100 * PAGE));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &s));
	ASSERT_EQ(PAGE, rd(self->dst.fd, page, PAGE, self->dst.bar0 + 100 * PAGE));
	EXPECT_EQ(-1, first_diff(page, want, PAGE));
	buf_free(&s);
}

/*
 * A mapping of the destination's BAR0 made before the restore sees the
 * restored memory, byte for byte: both Rust drivers swap their whole
 * memory (mbochs' VRAM, mdpy's framebuffer) at RESUMING -> STOP and must
 * remove the old pages from every mapping (the next access maps the new
 * ones).
 * A page the mapping had written reads as the source's bytes (or zeros).
 */
TEST_F(mig, restore_seen_through_mapping)
{
	size_t len = self->dst.memsize;
	uint8_t *map, *want, page[PAGE];
	struct buf s = {};

	ASSERT_EQ(0, make_state(&self->src, 9));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->dst.fd, self->dst.bar0);
	ASSERT_NE(MAP_FAILED, map);
	/* pages the destination had, through the mapping, before the restore */
	pattern(page, sizeof(page), 13);
	for (size_t o = 0; o < len; o += len / 8)
		memcpy(map + o, page, PAGE);
	ASSERT_EQ(0, save_stopcopy(&self->src, &s));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &s));
	want = malloc(len);
	ASSERT_NE(NULL, want);
	ASSERT_EQ((ssize_t)len, rd(self->src.fd, want, len, self->src.bar0));
	EXPECT_EQ(-1, first_diff(map, want, len)) TH_LOG("the old mapping after the restore");
	/* and the mapping still works: a write shows in read() */
	map[PAGE + 1] ^= 0xff;
	ASSERT_EQ(PAGE, rd(self->dst.fd, page, PAGE, self->dst.bar0 + PAGE));
	EXPECT_EQ((uint8_t)(want[PAGE + 1] ^ 0xff), page[1]);
	free(want);
	munmap(map, len);
	buf_free(&s);
}

/* ---- reset beside an arc ---------------------------------------------------------------- */

#define RACE_ROUNDS 20

struct stopper {
	int fd, spin, ret;
	pthread_barrier_t *go;
};

/* Busy-waits a little: shifts one side of a race by a few microseconds. */
static void spin(int n)
{
	for (int i = 0; i < n; i++)
		__asm__ __volatile__("" ::: "memory");
}

static void *stopper_run(void *arg)
{
	struct stopper *s = arg;

	pthread_barrier_wait(s->go);
	spin(s->spin);
	s->ret = set_state(s->fd, STOP);
	return NULL;
}

/*
 * VFIO_DEVICE_RESET takes the state lock: beside RESUMING -> STOP of a
 * complete, good stream it goes either before (RUNNING -> STOP then) or
 * after (the stream loads, then the reset): both calls succeed, the device
 * ends in STOP or RUNNING, never ERROR, and the session is over. Then the
 * device still loads the stream.
 */
TEST_F_TIMEOUT(mig, reset_races_resuming_stop, 120)
{
	int fd = self->dst.fd, ended[NSTATES] = {};
	pthread_barrier_t go;
	struct buf good = {};

	ASSERT_EQ(0, make_state(&self->src, 71));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	ASSERT_EQ(0, pthread_barrier_init(&go, NULL, 2));
	for (int i = 0; i < RACE_ROUNDS; i++) {
		/* one side or the other a few microseconds late, or neither */
		struct stopper s = { .fd = fd, .spin = i % 2 ? 0 : i % 5 * 2000, .go = &go };
		pthread_t thread;
		int dfd, ret, state;

		ASSERT_EQ(0, reset(fd));
		ASSERT_EQ(-1, set_state(fd, STOP));
		dfd = set_state(fd, RESUMING);
		ASSERT_LE(0, dfd);
		ASSERT_EQ(0, write_all(dfd, good.p, good.len)) TH_LOG("round %d", i);
		ASSERT_EQ(0, pthread_create(&thread, NULL, stopper_run, &s));
		pthread_barrier_wait(&go);
		spin(i % 2 ? i % 5 * 2000 : 0);
		ret = reset(fd);
		pthread_join(thread, NULL);
		state = get_state(fd);
		EXPECT_EQ(0, ret) TH_LOG("round %d: reset: %s", i, strerror(-ret));
		EXPECT_EQ(-1, s.ret) TH_LOG("round %d: RESUMING -> STOP: %s", i, strerror(-s.ret));
		EXPECT_TRUE(state == RUNNING || state == STOP)
			TH_LOG("round %d: ended in %s", i, state >= 0 && state < NSTATES ?
			       state_names[state] : strerror(-state));
		errno = 0;
		EXPECT_EQ(-1, write(dfd, good.p, 1));
		EXPECT_EQ(ENODEV, errno) TH_LOG("round %d: the data fd after both", i);
		close(dfd);
		if (state >= 0 && state < NSTATES)
			ended[state]++;
	}
	pthread_barrier_destroy(&go);
	TH_LOG("%d rounds: %d ended RUNNING (the load first), %d STOP (the reset first)",
	       RACE_ROUNDS, ended[RUNNING], ended[STOP]);
	ASSERT_EQ(0, reset(fd));
	ASSERT_EQ(RUNNING, get_state(fd));
	ASSERT_EQ(-1, set_state(fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &good));
	EXPECT_EQ(STOP, get_state(fd));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&good);
}

/* ---- refused streams ----------------------------------------------------------------------- */

/* Where a refusal comes: a stream is checked as it is written. */
enum refused_at {
	AT_WRITE,	/* a bad header or section: the write() that completes it */
	AT_STOP,	/* a stream that ends early: RESUMING -> STOP */
	AT_EITHER,	/* a section missing: at the end marker's write() or at STOP */
};

/*
 * Loads `bad` into dst: refused with `err` where `at` says; then the
 * session stays refused, silently (one more write() fails with `err` and
 * logs nothing, RESUMING -> STOP fails with it); dst still RESUMING and
 * unchanged; a reset brings it back to RUNNING. Returns whether the kernel
 * log said `why`.
 */
static bool refuse_once(struct __test_metadata *_metadata, struct dev *dst, const struct buf *bad,
			int err, enum refused_at at, const char *why, const char *what)
{
	int kmsg = kmsg_open(), dfd, ret;
	uint8_t before[256], after[256];
	bool by_write, said;

	ASSERT_EQ(256, rd(dst->fd, before, 256, dst->config));
	ASSERT_EQ(0, reset(dst->fd));
	ASSERT_EQ(-1, set_state(dst->fd, STOP));
	dfd = set_state(dst->fd, RESUMING);
	ASSERT_LE(0, dfd) TH_LOG("%s: RESUMING: %s", what, strerror(-dfd));
	ret = write_all(dfd, bad->p, bad->len);
	by_write = ret != 0;
	if (!by_write)
		ret = set_state(dst->fd, STOP);
	EXPECT_EQ(err, ret) TH_LOG("%s: got %s (%d), want %s", what, strerror(-ret), ret,
				   strerror(-err));
	EXPECT_TRUE(at == AT_EITHER || by_write == (at == AT_WRITE))
		TH_LOG("%s: refused by %s", what, by_write ? "a write()" : "RESUMING -> STOP");
	said = kmsg_has(kmsg, why);
	errno = 0;
	EXPECT_EQ(-1, write(dfd, "MDEVRSMG", 8)) TH_LOG("%s: a write() after the refusal", what);
	EXPECT_EQ(-err, errno) TH_LOG("%s: a write() after the refusal: %s", what, strerror(errno));
	EXPECT_EQ(0, kmsg_count(kmsg, "stream refused"))
		TH_LOG("%s: a write() after the refusal logged again", what);
	ret = set_state(dst->fd, STOP);
	EXPECT_EQ(err, ret) TH_LOG("%s: RESUMING -> STOP after the refusal: %s", what,
				   strerror(-ret));
	EXPECT_EQ(RESUMING, get_state(dst->fd)) TH_LOG("%s", what);
	if (kmsg >= 0)
		close(kmsg);
	close(dfd);
	ASSERT_EQ(256, rd(dst->fd, after, 256, dst->config));
	EXPECT_EQ(-1, first_diff(before, after, 256)) TH_LOG("%s: half applied", what);
	EXPECT_EQ(0, reset(dst->fd));
	EXPECT_EQ(RUNNING, get_state(dst->fd)) TH_LOG("%s", what);
	return said;
}

/*
 * refuse_once(), and the refusal logged: a device logs only so many
 * refusals (a flood of bad streams must not flood the kernel log), so
 * without the line the same refusal is tried on a fresh device, whose
 * first refusal is always logged.
 */
static void expect_refused(struct __test_metadata *_metadata, struct dev *dst, bool cdev,
			   const struct buf *bad, int err, enum refused_at at, const char *why,
			   const char *what)
{
	if (refuse_once(_metadata, dst, bad, err, at, why, what))
		return;
	ASSERT_EQ(0, dev_recreate(dst, cdev)) TH_LOG("%s: a fresh destination", what);
	EXPECT_TRUE(refuse_once(_metadata, dst, bad, err, at, why, what))
		TH_LOG("%s: no \"%s\" in the kernel log, even from a fresh device", what, why);
}

TEST_F(mig, refused_streams)
{
	struct buf good = {}, v1, bad;
	struct section sec = {}, cfg = {}, page = {}, run = {};
	uint64_t pages = self->src.memsize / PAGE, n;
	uint8_t b[64];

	ASSERT_EQ(0, make_state(&self->src, 21));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	ASSERT_TRUE(find_section(&good, SEC_CONFIG, 0, &cfg));
	ASSERT_TRUE(first_run(&good, &run));
	n = run.len / PAGE;
	/* the pages' refusals of format 1.0, which a destination still reads */
	v1 = to_v1(&good);
	ASSERT_TRUE(find_section(&v1, SEC_PAGE, 1, &page));

#define REFUSE(err, at, why, what) do { \
		expect_refused(_metadata, &self->dst, variant->cdev, &bad, err, at, why, what); \
		buf_free(&bad); \
	} while (0)

	/* header */
	bad = splice(&good, 0, 1, "X", 1);
	REFUSE(-EINVAL, AT_WRITE, "bad magic", "bad magic");
	put16(b, MAJOR + 1);
	bad = splice(&good, 8, 2, b, 2);
	REFUSE(-EPROTONOSUPPORT, AT_WRITE, "format 3.0", "major 3");
	put16(b, 0);
	bad = splice(&good, 8, 2, b, 2);
	REFUSE(-EPROTONOSUPPORT, AT_WRITE, "format 0.0", "major 0");
	bad = splice(&good, 16, 1, "x", 1);
	REFUSE(-EXDEV, AT_WRITE, "saved from", "foreign driver");
	bad = splice(&good, 32 + strlen(type_name()) - 1, 1, "X", 1);
	REFUSE(-EXDEV, AT_WRITE, "saved from", "foreign type");
	put64(b, self->src.memsize * 2);
	bad = splice(&good, 64, 8, b, 8);
	REFUSE(-ERANGE, AT_WRITE, "memory", "other memory size");
	put32(b, 8192);
	bad = splice(&good, 72, 4, b, 4);
	REFUSE(-ERANGE, AT_WRITE, "memory", "other page size");
	put32(b, 79);
	bad = splice(&good, 12, 4, b, 4);
	REFUSE(-EBADMSG, AT_WRITE, "header length", "header length 79");
	/* truncated */
	bad = splice(&good, 0, good.len, NULL, 0);
	REFUSE(-ENODATA, AT_STOP, "shorter than a header", "empty stream");
	bad = splice(&good, 40, good.len - 40, NULL, 0);
	REFUSE(-ENODATA, AT_STOP, "header needs", "cut in the header");
	bad = splice(&good, good.len - SEC_LEN, SEC_LEN, NULL, 0);
	REFUSE(-ENODATA, AT_STOP, "without an end marker", "no end marker");
	bad = splice(&good, good.len / 2, good.len - good.len / 2, NULL, 0);
	REFUSE(-ENODATA, AT_STOP, "stream refused", "cut in half");
	put32(b, 0x7ffffff0);
	bad = splice(&good, cfg.at + 4, 4, b, 4);
	REFUSE(-ENODATA, AT_STOP, "claims", "section length past the end");
	bad = splice(&good, cfg.at, SEC_LEN + 256, NULL, 0);
	REFUSE(-ENODATA, AT_EITHER, "no configuration space", "no config space section");
	/* corrupt lengths: framed right, wrong for what they hold */
	{
		struct buf t = splice(&good, cfg.at + SEC_LEN + 255, 1, NULL, 0);

		put32(b, 255);
		bad = splice(&t, cfg.at + 4, 4, b, 4);
		buf_free(&t);
		REFUSE(-EBADMSG, AT_WRITE, "has 255 bytes, expected 256",
		       "config space of 255 bytes");
	}
	{
		struct buf t = splice(&v1, page.at + SEC_LEN, 1, NULL, 0);

		put32(b, PAGE - 1);
		bad = splice(&t, page.at + 4, 4, b, 4);
		buf_free(&t);
		REFUSE(-EBADMSG, AT_WRITE, "has 4095 bytes", "1.0: page of 4095 bytes");
	}
	{
		struct buf t = splice(&good, run.at + SEC_LEN, 1, NULL, 0);

		put32(b, run.len - 1);
		bad = splice(&t, run.at + 4, 4, b, 4);
		buf_free(&t);
		REFUSE(-EBADMSG, AT_WRITE, "not a whole number", "run a byte short of its pages");
	}
	{
		struct buf t = splice(&good, run.at + SEC_LEN, run.len, NULL, 0);

		put32(b, 0);
		bad = splice(&t, run.at + 4, 4, b, 4);
		buf_free(&t);
		REFUSE(-EBADMSG, AT_WRITE, "not a whole number", "run of no page");
	}
	bad = splice(&good, good.len, 0, "junk", 4);
	REFUSE(-EBADMSG, AT_WRITE, "after the end marker", "bytes after the end marker");
	put32(b, 4);
	memcpy(b + 4, "abcd", 4);
	{
		struct buf t = splice(&good, good.len - SEC_LEN + 4, 4, b, 4);

		bad = splice(&t, t.len, 0, b + 4, 4);
		buf_free(&t);
		REFUSE(-EBADMSG, AT_WRITE, "corrupt end marker", "end marker with a payload");
	}
	/* sections */
	memset(b, 0, SEC_LEN + 8);
	put16(b, 0x7777);
	put32(b + 4, 8);
	bad = splice(&good, good.len - SEC_LEN, 0, b, SEC_LEN + 8);
	REFUSE(-EPROTO, AT_WRITE, "unknown mandatory section", "unknown mandatory section");
	put64(b, pages);
	bad = splice(&v1, page.at + 8, 8, b, 8);
	REFUSE(-EINVAL, AT_WRITE, "past the", "1.0: page past the end of memory");
	/* a run whose last page is one past the memory, or whose end overflows */
	put64(b, pages - n + 1);
	bad = splice(&good, run.at + 8, 8, b, 8);
	REFUSE(-EINVAL, AT_WRITE, "past the", "run past the end of memory");
	put64(b, UINT64_MAX);
	bad = splice(&good, run.at + 8, 8, b, 8);
	REFUSE(-EINVAL, AT_WRITE, "past the", "run from page 2^64-1");
	/* format 1.0 has no runs: as a 1.0 destination, a mandatory section it does not know */
	put16(b, SEC_RUN);
	bad = splice(&v1, page.at, 2, b, 2);
	REFUSE(-EPROTO, AT_WRITE, "unknown mandatory section", "1.0: a run section");
	{
		uint8_t v[2];

		memcpy(v, good.p + cfg.at + SEC_LEN, 2);
		v[0] ^= 1;
		bad = splice(&good, cfg.at + SEC_LEN, 2, v, 2);
		REFUSE(-EINVAL, AT_WRITE, "read-only bits differ", "another vendor id");
	}
	if (is_mbochs()) {
		ASSERT_TRUE(find_section(&good, SEC_EDID, 0, &sec));
		put32(b, 0x401);
		bad = splice(&good, sec.at + SEC_LEN, 4, b, 4);
		REFUSE(-EINVAL, AT_WRITE, "EDID of 1025 bytes", "EDID larger than its blob");
		bad = splice(&good, sec.at, SEC_LEN + sec.len, NULL, 0);
		REFUSE(-ENODATA, AT_EITHER, "no EDID section", "no EDID section");
	} else {
		ASSERT_TRUE(find_section(&good, SEC_MDPY_MODE, 0, &sec));
		put32(b, le32(good.p + sec.at + SEC_LEN + 4) + 1);
		bad = splice(&good, sec.at + SEC_LEN + 4, 4, b, 4);
		REFUSE(-EINVAL, AT_WRITE, "another display mode", "another mode");
		bad = splice(&v1, page.at, SEC_LEN + PAGE, NULL, 0);
		REFUSE(-ENODATA, AT_EITHER, "framebuffer page 1 missing",
		       "1.0: a framebuffer page missing");
		/* 2.0: the first run one page short (its last page missing) */
		{
			struct buf t = splice(&good, run.at + SEC_LEN + run.len - PAGE, PAGE, NULL,
					      0);

			put32(b, run.len - PAGE);
			bad = splice(&t, run.at + 4, 4, b, 4);
			buf_free(&t);
			REFUSE(-ENODATA, AT_EITHER, "missing", "2.0: a framebuffer page missing");
		}
	}
	/* after all that, the good stream loads */
	ASSERT_EQ(0, reset(self->dst.fd));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	EXPECT_EQ(0, load(&self->dst, &good));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&good);
	buf_free(&v1);
#undef REFUSE
}

/*
 * A 2.x destination still reads format 1.0 (one page section per page, as
 * an older module's source writes it): it loads, byte for byte.
 */
TEST_F(mig, v1_stream_accepted)
{
	struct buf good = {}, v1;

	ASSERT_EQ(0, make_state(&self->src, 27));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	v1 = to_v1(&good);
	EXPECT_EQ(1, le16(v1.p + 8));
	EXPECT_EQ(0, count_sections(&v1, SEC_RUN));
	EXPECT_EQ(count_pages(&good), count_sections(&v1, SEC_PAGE));
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	EXPECT_EQ(0, load(&self->dst, &v1));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&v1);
	buf_free(&good);
}

/*
 * Runs of pages taken apart by write()s of odd sizes: headers and pages
 * split anywhere, a run across any number of write()s. It loads, byte for
 * byte.
 */
TEST_F(mig, runs_straddle_writes)
{
	static const size_t sizes[] = { 1, 15, 4097, 3, 8191, 17, 12289, 4095, 100003 };
	struct buf good = {};
	struct section run;
	size_t at = 0;
	int dfd, i = 0, ret = 0;

	ASSERT_EQ(0, make_state(&self->src, 29));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	ASSERT_TRUE(first_run(&good, &run));
	EXPECT_LE(64 * PAGE, run.len) TH_LOG("the first run has %u bytes", run.len);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	dfd = set_state(self->dst.fd, RESUMING);
	ASSERT_LE(0, dfd);
	while (at < good.len && !ret) {
		size_t len = sizes[i++ % (sizeof(sizes) / sizeof(sizes[0]))];
		ssize_t w;

		if (len > good.len - at)
			len = good.len - at;
		w = write(dfd, good.p + at, len);
		if (w <= 0)
			ret = w < 0 ? -errno : -EIO;
		else
			at += w;
	}
	close(dfd);
	EXPECT_EQ(0, ret) TH_LOG("write() at byte %zu: %s", at, strerror(-ret));
	EXPECT_EQ(-1, set_state(self->dst.fd, STOP));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&good);
}

/* Fills len bytes (whole words) with words made of `seed` and their offset `at` on. */
static void fill_words(void *p, size_t len, uint64_t seed, uint64_t at)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = (seed << 40 ^ (at / 8 + i)) * 0x9e3779b97f4a7c15ull;
}

/* Appends a page section for page `key` with the page at `page`. */
static void put_page_section(struct buf *b, uint64_t key, const uint8_t *page)
{
	uint8_t sec[SEC_LEN] = {};

	put16(sec, SEC_PAGE);
	put32(sec + 4, PAGE);
	put64(sec + 8, key);
	buf_put(b, sec, SEC_LEN);
	buf_put(b, page, PAGE);
}

#define LONG_COPIES 5

/*
 * No limit on a stream's length: one that holds every page five times
 * (over four device states, more than the old limit of three), each copy
 * other bytes in another order, the last the source's real pages, then the
 * source's stop-copy sections, loads; the later copy of a page replaces the
 * earlier one, so the destination equals the source. The write()s of
 * write_all() (100000 bytes) cut sections anywhere.
 */
TEST_F_TIMEOUT(mig, long_stream_accepted, 180)
{
	size_t pages = self->src.memsize / PAGE, hdr;
	uint64_t state = self->src.memsize + pages * SEC_LEN, total = 0;
	struct buf good = {}, out = {};
	uint64_t junk[PAGE / 8];
	uint8_t *real;
	int dfd, ret = 0;

	ASSERT_EQ(0, make_state(&self->src, 41));
	/* the source's pages: zeros where mbochs has none */
	real = malloc(self->src.memsize);
	ASSERT_NE(NULL, real);
	ASSERT_EQ((ssize_t)self->src.memsize,
		  rd(self->src.fd, real, self->src.memsize, self->src.bar0));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	hdr = le32(good.p + 12);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	dfd = set_state(self->dst.fd, RESUMING);
	ASSERT_LE(0, dfd);
	buf_put(&out, good.p, hdr);
	for (int copy = 0; copy < LONG_COPIES && !ret; copy++) {
		for (size_t i = 0; i < pages && !ret; i++) {
			size_t key = copy % 2 ? pages - 1 - i : i;

			if (copy < LONG_COPIES - 1) {
				fill_words(junk, PAGE, copy + 1, key * PAGE);
				put_page_section(&out, key, (const uint8_t *)junk);
			} else {
				put_page_section(&out, key, real + key * PAGE);
			}
			if (out.len >= 256 * 1024) {
				ret = write_all(dfd, out.p, out.len);
				total += ret ? 0 : out.len;
				out.len = 0;
			}
		}
	}
	if (!ret) {
		buf_put(&out, good.p + hdr, good.len - hdr);
		ret = write_all(dfd, out.p, out.len);
		total += ret ? 0 : out.len;
	}
	close(dfd);
	free(real);
	buf_free(&out);
	TH_LOG("%llu bytes written, the device state is %llu", (unsigned long long)total,
	       (unsigned long long)state);
	EXPECT_EQ(0, ret) TH_LOG("write() after %llu bytes: %s", (unsigned long long)total,
				 strerror(-ret));
	EXPECT_LT(4 * state, total);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&good);
}

/*
 * A newer minor version: a longer header and an unknown optional section
 * are skipped, the rest loads.
 */
TEST_F(mig, newer_minor_accepted)
{
	struct buf good = {}, t, bad;
	uint8_t b[SEC_LEN + 8] = {};

	ASSERT_EQ(0, make_state(&self->src, 33));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	/* minor 1, header 88 bytes */
	put16(b, 1);
	t = splice(&good, 10, 2, b, 2);
	put32(b, HDR_LEN + 8);
	bad = splice(&t, 12, 4, b, 4);
	buf_free(&t);
	t = splice(&bad, HDR_LEN, 0, "newfield", 8);
	buf_free(&bad);
	/* an optional section before the end */
	memset(b, 0, sizeof(b));
	put16(b, 0x7777);
	put16(b + 2, SEC_OPTIONAL);
	put32(b + 4, 8);
	bad = splice(&t, t.len - SEC_LEN, 0, b, sizeof(b));
	buf_free(&t);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	EXPECT_EQ(0, load(&self->dst, &bad));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&bad);
	buf_free(&good);
}

/*
 * A stream of another type is refused by a device of this one, and by the
 * write() that completes its header: QEMU moves a destination device out of
 * RESUMING only when the VM starts, after the migration has completed, so a
 * refusal at RESUMING -> STOP alone would not fail the migration.
 */
TEST_F(mig, refused_from_another_type)
{
	const char *other = is_mbochs() ?
		(strcmp(type_name(), "mbochs-small") ? "mbochs-small" : "mbochs-medium") :
		(strcmp(type_name(), "mdpy-vga") ? "mdpy-vga" : "mdpy-xga");
	struct dev o = {};
	struct buf s = {};
	int kmsg, ret, dfd;

	ASSERT_EQ(0, dev_create(&o, other, variant->cdev)) TH_LOG("create %s", other);
	ret = save_stopcopy(&o, &s);
	dev_destroy(&o);
	ASSERT_EQ(0, ret);
	kmsg = kmsg_open();
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	dfd = set_state(self->dst.fd, RESUMING);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(0, write_all(dfd, s.p, HDR_LEN - 1)) TH_LOG("a header's first bytes");
	EXPECT_EQ(-EXDEV, write_all(dfd, s.p + HDR_LEN - 1, 1)) TH_LOG("the header's last byte");
	close(dfd);
	EXPECT_TRUE(kmsg_has(kmsg, "saved from"));
	if (kmsg >= 0)
		close(kmsg);
	EXPECT_EQ(0, reset(self->dst.fd));
	EXPECT_EQ(RUNNING, get_state(self->dst.fd));
	buf_free(&s);
}

#define FLOOD_SESSIONS 200
#define FLOOD_MAX_LINES 20

/*
 * Refusals are logged, but not without bound: a first one is, the write()s
 * after it in its session are refused the same way without a line, and of
 * 200 more sessions with a bad stream (each refused, then reset) at most
 * 20 lines reach the kernel log. The bound is a rate: a flood that takes
 * over 10 s (each session allocates a staging copy, slow under TCG) may
 * log 20 more for each 10 s it took. The device then still loads a good
 * stream.
 */
TEST_F_TIMEOUT(mig, bad_write_flood_log_bounded, 120)
{
	int fd = self->dst.fd, kmsg, dfd, lines, most, wrong = 0;
	struct buf good = {}, bad;
	double start, took;

	ASSERT_EQ(0, make_state(&self->src, 81));
	ASSERT_EQ(0, save_stopcopy(&self->src, &good));
	bad = splice(&good, 0, 1, "X", 1);
	kmsg = kmsg_open();
	ASSERT_LE(0, kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));

	/* one session: the write() that completes the header is refused */
	start = now();
	ASSERT_EQ(-1, set_state(fd, STOP));
	dfd = set_state(fd, RESUMING);
	ASSERT_LE(0, dfd);
	errno = 0;
	EXPECT_EQ(-1, write(dfd, bad.p, HDR_LEN));
	EXPECT_EQ(EINVAL, errno);
	lines = kmsg_count(kmsg, "stream refused");
	EXPECT_EQ(1, lines) TH_LOG("a fresh device's first refusal");
	/* then each write() the same, silently: the rest of the stream, junk */
	for (int i = 0; i < 100; i++) {
		size_t n = i % 2 ? bad.len - HDR_LEN : 4;
		const void *p = i % 2 ? bad.p + HDR_LEN : (const void *)"junk";

		errno = 0;
		wrong += write(dfd, p, n < 65536 ? n : 65536) != -1 || errno != EINVAL;
	}
	EXPECT_EQ(0, wrong) TH_LOG("of 100 write()s after the refusal");
	EXPECT_EQ(0, kmsg_count(kmsg, "stream refused")) TH_LOG("the write()s after it logged");
	EXPECT_EQ(RESUMING, get_state(fd));
	EXPECT_EQ(-EINVAL, set_state(fd, STOP));
	EXPECT_EQ(RESUMING, get_state(fd));
	close(dfd);
	EXPECT_EQ(0, reset(fd));

	/* the flood */
	wrong = 0;
	for (int i = 0; i < FLOOD_SESSIONS; i++) {
		if (set_state(fd, STOP) != -1) {
			wrong++;
			reset(fd);
			continue;
		}
		dfd = set_state(fd, RESUMING);
		if (dfd < 0) {
			wrong++;
			reset(fd);
			continue;
		}
		errno = 0;
		wrong += write(dfd, bad.p, HDR_LEN) != -1 || errno != EINVAL;
		close(dfd);
		wrong += reset(fd) != 0;
	}
	lines += kmsg_count(kmsg, "stream refused");
	close(kmsg);
	took = now() - start;
	most = FLOOD_MAX_LINES * (1 + (int)(took / 10));
	TH_LOG("%d refused sessions in %.1f s: %d lines in the kernel log (at most %d)",
	       1 + FLOOD_SESSIONS, took, lines, most);
	EXPECT_EQ(0, wrong) TH_LOG("sessions that went otherwise");
	EXPECT_LE(1, lines);
	EXPECT_GE(most, lines);

	EXPECT_EQ(RUNNING, get_state(fd));
	ASSERT_EQ(-1, set_state(fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &good));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	EXPECT_EQ(-1, set_state(self->src.fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&bad);
	buf_free(&good);
}

/* ---- pre-copy sends only what changed --------------------------------------------------- */

/* The bytes of one page in a stream: its section header and the page. */
#define PAGE_SEC (SEC_LEN + PAGE)	/* a run of one page: spread pages are never adjacent */
#define MAX_DIRTY 64

/* How the tests change the source's memory while pre-copy runs. */
enum dirty_path { THROUGH_MAPPING, THROUGH_WRITE };

static const char *const path_names[] = { "the mapping", "write()" };

/* k distinct page indexes spread over BAR0, one in each 64th of it. */
static void spread_pages(const struct dev *d, int k, size_t *idx)
{
	size_t step = d->memsize / PAGE / MAX_DIRTY;

	for (int i = 0; i < k; i++)
		idx[i] = i * step + step / 2;
}

/*
 * Changes page idx[i] of d, twice (the second write to a page must not
 * count again): through the BAR0 mappings (map[0] for even i, map[1], a
 * second mapping of the same BAR, for odd i: write protection must reach
 * every mapping), or with write(): for even i 64 bytes inside the page,
 * for odd i the whole page; then 64 bytes that end at the page's end (a
 * write that ends at a page boundary changes one page, not two).
 */
static int change_page(struct dev *d, uint8_t *const map[2], enum dirty_path path, size_t index,
		       int i, uint32_t seed)
{
	uint8_t bytes[PAGE];

	for (int round = 0; round < 2; round++) {
		size_t len = path == THROUGH_WRITE && !round && i % 2 ? PAGE : 64;
		off_t at = index * PAGE + (round ? PAGE - 64 : len == PAGE ? 0 : 100);

		pattern(bytes, len, seed + i * 2 + round);
		if (path == THROUGH_MAPPING)
			memcpy(map[i % 2] + at, bytes, len);
		else if (wr(d->fd, bytes, len, d->bar0 + at) != (ssize_t)len)
			return -EIO;
	}
	return 0;
}

/* What the sections of a stream hold, from some offset on. */
struct tally {
	bool framed;		/* whole sections up to the end of the buffer */
	int pages, config, regs, end, other;
	int runs;		/* run sections (each holds one or more of the pages) */
	bool end_last;		/* the end marker is the last section */
	int stray_keys;		/* pages whose key is none of idx[] (or past the memory) */
	int hits[MAX_DIRTY];	/* page sections with key idx[i] */
	size_t nonpage_bytes;	/* bytes of the sections other than pages */
};

/*
 * Walks the sections of s from offset `from` on (no header there: what a
 * pre-copy read sends after the initial data, or stop-copy's tail). With
 * idx NULL, any page inside the memory of `pages` pages is expected.
 */
static struct tally tally_sections(const struct buf *s, size_t from, const size_t *idx, int k,
				   size_t pages)
{
	struct tally t = { .framed = true };
	size_t at = from;

	while (at < s->len) {
		uint16_t id;
		uint32_t len;
		uint64_t key;
		bool known = false;

		if (at + SEC_LEN > s->len) {
			t.framed = false;
			break;
		}
		id = le16(s->p + at);
		len = le32(s->p + at + 4);
		key = le64(s->p + at + 8);
		t.end_last = false;
		if (id == SEC_RUN) {
			/* a whole number of pages, at least one; each page counts */
			if (!len || len % PAGE)
				t.framed = false;
			t.runs++;
			for (uint64_t p = key; p < key + len / PAGE; p++) {
				known = false;
				for (int i = 0; idx && i < k; i++)
					if (idx[i] == p) {
						t.hits[i]++;
						known = true;
					}
				if (!idx)
					known = p < pages;
				t.stray_keys += !known;
				t.pages++;
			}
		} else {
			t.config += id == SEC_CONFIG;
			t.regs += id == SEC_MDPY_MODE || (is_mbochs() && id == SEC_EDID);
			t.end += id == SEC_END;
			t.end_last = id == SEC_END;
			t.other += id != SEC_CONFIG && id != SEC_END && id != SEC_MDPY_MODE &&
				   !(is_mbochs() && id == SEC_EDID);
			t.nonpage_bytes += SEC_LEN + len;
		}
		at += SEC_LEN + len;
	}
	if (at != s->len)
		t.framed = false;
	return t;
}

/* Reads one byte of every page of the mapping, and `len` bytes with read(). */
static int read_memory(struct dev *d, const uint8_t *map, size_t len)
{
	static volatile uint8_t sink;
	uint8_t *b = malloc(len);
	ssize_t n;

	if (!b)
		return -ENOMEM;
	for (size_t o = 0; o < d->memsize; o += PAGE)
		sink += map[o];
	n = rd(d->fd, b, len, d->bar0);
	free(b);
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * Pre-copy of a source whose k pages change after the initial data was
 * read, each twice:
 * - reading all of the memory (the mapping, read()) counts for nothing:
 *   dirty_bytes 0, MIG_DATA_SIZE the registers only (< 2 KiB);
 * - after the changes, PRECOPY_INFO's dirty_bytes is k page sections and
 *   MIG_DATA_SIZE grew by exactly as much;
 * - even k: a pre-copy read sends exactly those k pages, once each, and
 *   nothing is dirty after it; then a page written again is dirty again
 *   (pre-copy protected it again) and goes with stop-copy;
 * - odd k: the k pages go with stop-copy;
 * - stop-copy sends exactly the MIG_DATA_SIZE of PRE_COPY_P2P: config
 *   space, the registers, the pages still dirty, the end marker;
 * - the destination of the whole stream equals the source byte for byte.
 */
static void precopy_dirty_pages(struct __test_metadata *_metadata, struct dev *src,
				struct dev *dst, enum dirty_path path, int k)
{
	int fd = src->fd, dfd, end, want_hits[MAX_DIRTY] = {}, want_pages;
	size_t idx[MAX_DIRTY], tail_at, pages = src->memsize / PAGE;
	struct vfio_precopy_info info;
	struct buf s = {}, chunk = {};
	long size0, size1, announced;
	uint8_t *map[2];
	struct tally t;

	ASSERT_GE(MAX_DIRTY, k);
	ASSERT_LE(MAX_DIRTY, pages);
	ASSERT_EQ(0, make_state(src, 11 + k));
	for (int m = 0; m < 2; m++) {
		map[m] = mmap(NULL, src->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, src->bar0);
		ASSERT_NE(MAP_FAILED, map[m]);
	}
	spread_pages(src, k, idx);
	/*
	 * The pages exist (mbochs allocates on first touch) and both mappings
	 * may write them before pre-copy starts: entering PRE_COPY must
	 * protect them again.
	 */
	for (int i = 0; i < k; i++) {
		map[0][idx[i] * PAGE] = i;
		map[1][idx[i] * PAGE + 1] = i;
	}

	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(ENOMSG, end);
	/* reading changes nothing */
	ASSERT_EQ(0, read_memory(src, map[0], src->memsize < MB ? src->memsize : MB));
	for (int i = 0; i < k; i++) {
		EXPECT_EQ(i & 0xff, map[1][idx[i] * PAGE + 1]);
	}
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ(0, info.dirty_bytes) TH_LOG("reads of the memory made it dirty");
	size0 = data_size(fd);
	/* nothing changed: config space, the registers, the end marker */
	EXPECT_LT(SEC_LEN + 256 + SEC_LEN, size0);
	EXPECT_GT(2048, size0) TH_LOG("MIG_DATA_SIZE with nothing changed: %ld", size0);

	for (int i = 0; i < k; i++) {
		ASSERT_EQ(0, change_page(src, map, path, idx[i], i, 77));
	}
	ASSERT_EQ(0, precopy_info(dfd, &info));
	size1 = data_size(fd);
	TH_LOG("k=%d through %s: dirty_bytes %llu (want %d), MIG_DATA_SIZE %ld -> %ld", k,
	       path_names[path], (unsigned long long)info.dirty_bytes, k * PAGE_SEC, size0, size1);
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ((uint64_t)k * PAGE_SEC, info.dirty_bytes)
		TH_LOG("%d pages changed through %s", k, path_names[path]);
	EXPECT_EQ(size0 + (long)k * PAGE_SEC, size1);

	want_pages = 0;
	if (k % 2 == 0) {
		/* pre-copy sends them, each once, and only them */
		ASSERT_EQ(0, read_all(dfd, &chunk, &end));
		EXPECT_EQ(ENOMSG, end);
		EXPECT_EQ((size_t)k * PAGE_SEC, chunk.len);
		t = tally_sections(&chunk, 0, idx, k, pages);
		EXPECT_TRUE(t.framed);
		EXPECT_EQ(k, t.pages);
		EXPECT_EQ(0, t.stray_keys);
		EXPECT_EQ(0, t.config + t.regs + t.end + t.other);
		for (int i = 0; i < k; i++) {
			EXPECT_EQ(1, t.hits[i]) TH_LOG("page %zu sent %d times", idx[i], t.hits[i]);
		}
		ASSERT_EQ(0, precopy_info(dfd, &info));
		EXPECT_EQ(0, info.dirty_bytes);
		EXPECT_EQ(size0, data_size(fd));
		buf_put(&s, chunk.p, chunk.len);
		/* the pages sent are protected again: a new write counts */
		if (k) {
			ASSERT_EQ(0, change_page(src, map, path, idx[0], 0, 1234));
			ASSERT_EQ(0, precopy_info(dfd, &info));
			EXPECT_EQ(PAGE_SEC, info.dirty_bytes)
				TH_LOG("page %zu written again after pre-copy sent it", idx[0]);
			EXPECT_EQ(size0 + PAGE_SEC, data_size(fd));
			want_hits[0] = 1;
			want_pages = 1;
		}
	} else {
		for (int i = 0; i < k; i++)
			want_hits[i] = 1;
		want_pages = k;
	}
	ASSERT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	announced = data_size(fd);
	EXPECT_EQ(size0 + (long)want_pages * PAGE_SEC, announced);
	ASSERT_EQ(-1, set_state(fd, STOP_COPY));
	tail_at = s.len;
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(0, end);
	TH_LOG("k=%d: stop-copy sent %zu bytes, MIG_DATA_SIZE in PRE_COPY_P2P said %ld", k,
	       s.len - tail_at, announced);
	EXPECT_EQ(announced, (long)(s.len - tail_at));
	t = tally_sections(&s, tail_at, idx, k, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(1, t.config);
	EXPECT_EQ(is_mbochs() ? 2 : 1, t.regs);
	EXPECT_EQ(0, t.other);
	EXPECT_EQ(1, t.end);
	EXPECT_TRUE(t.end_last);
	EXPECT_EQ(want_pages, t.pages);
	EXPECT_EQ(0, t.stray_keys);
	for (int i = 0; i < k; i++) {
		EXPECT_EQ(want_hits[i], t.hits[i]) TH_LOG("page %zu in stop-copy", idx[i]);
	}
	/* with nothing dirty, MIG_DATA_SIZE was the sections other than pages */
	EXPECT_EQ(size0, (long)t.nonpage_bytes);
	close(dfd);
	ASSERT_EQ(-1, set_state(fd, STOP));
	munmap(map[0], src->memsize);
	munmap(map[1], src->memsize);

	ASSERT_EQ(-1, set_state(dst->fd, STOP));
	ASSERT_EQ(0, load(dst, &s));
	EXPECT_EQ(-1, set_state(dst->fd, RUNNING));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	expect_same_device(_metadata, src, dst);
	buf_free(&s);
	buf_free(&chunk);
}

#define PRECOPY_DIRTY_TEST(path, name, k)						\
	TEST_F_TIMEOUT(mig, precopy_dirty_pages_through_##name##_k##k, 120)		\
	{										\
		precopy_dirty_pages(_metadata, &self->src, &self->dst, path, k);	\
	}

PRECOPY_DIRTY_TEST(THROUGH_MAPPING, mapping, 0)
PRECOPY_DIRTY_TEST(THROUGH_MAPPING, mapping, 1)
PRECOPY_DIRTY_TEST(THROUGH_MAPPING, mapping, 4)
PRECOPY_DIRTY_TEST(THROUGH_MAPPING, mapping, 64)
PRECOPY_DIRTY_TEST(THROUGH_WRITE, write, 0)
PRECOPY_DIRTY_TEST(THROUGH_WRITE, write, 1)
PRECOPY_DIRTY_TEST(THROUGH_WRITE, write, 4)
PRECOPY_DIRTY_TEST(THROUGH_WRITE, write, 64)

/*
 * A guest that keeps drawing: random bytes at random places of all of
 * BAR0, through the mapping and, every 16th write, with write(), which
 * every 64th write straddles two pages.
 */
struct hammer {
	struct dev *d;
	uint8_t *map;
	size_t pages;
	bool stop;
	unsigned long writes, pwrites, failed;
};

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	const struct timespec pause = { .tv_nsec = 200 * 1000 };
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = xorshift(&rng);
		size_t len = 1 + r % 64, page = (r >> 8) % h->pages;
		size_t at = page * PAGE + (r >> 40) % (PAGE - len + 1);
		uint8_t bytes[64];

		for (size_t i = 0; i < sizeof(bytes); i++)
			bytes[i] = xorshift(&rng);
		if (h->writes % 64 == 63 && page + 1 < h->pages) {
			len = sizeof(bytes);
			at = (page + 1) * PAGE - len / 2;
		}
		if (h->writes % 16 == 15) {
			h->pwrites++;
			if (wr(h->d->fd, bytes, len, h->d->bar0 + at) != (ssize_t)len)
				h->failed++;
		} else {
			memcpy(h->map + at, bytes, len);
		}
		h->writes++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/*
 * Whatever the interleaving of the guest's writes with pre-copy's reads,
 * pre-copy sends only whole page sections after the initial data; once the
 * writer stops, one more read sends what it left and ENOMSG then means
 * nothing is dirty (PRECOPY_INFO all 0; while it runs a page can change
 * between the ENOMSG and the ioctl), so stop-copy sends no page: exactly
 * what MIG_DATA_SIZE announced (config space, the registers, the end
 * marker). The whole stream loads and the destination ends up equal to the
 * source, byte for byte.
 */
TEST_F_TIMEOUT(mig, precopy_concurrent_writer, 180)
{
	struct hammer h = { .d = &self->src };
	struct vfio_precopy_info info;
	struct buf s = {};
	uint64_t dirty_seen = 0, initial;
	size_t pages = self->src.memsize / PAGE, tail_at;
	long announced;
	int fd = self->src.fd, dfd, end, rounds = 0;
	pthread_t thread;
	struct tally t;
	double start;

	ASSERT_EQ(0, make_state(&self->src, 5));
	h.pages = pages;
	h.map = mmap(NULL, self->src.memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		     self->src.bar0);
	ASSERT_NE(MAP_FAILED, h.map);
	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, precopy_info(dfd, &info));
	initial = info.initial_bytes;
	ASSERT_EQ(0, pthread_create(&thread, NULL, hammer_run, &h));
	start = now();
	/* twenty rounds, or fewer (five at least) if they take over 2 s */
	while (rounds < 20 && (rounds < 5 || now() - start < 2)) {
		const struct timespec gap = { .tv_nsec = 50 * 1000 * 1000 };

		ASSERT_EQ(0, precopy_info(dfd, &info));
		if (rounds) {
			EXPECT_EQ(0, info.initial_bytes);
		}
		dirty_seen += info.dirty_bytes;
		ASSERT_EQ(0, read_all(dfd, &s, &end));
		EXPECT_EQ(ENOMSG, end);
		rounds++;
		nanosleep(&gap, NULL);
	}
	__atomic_store_n(&h.stop, true, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	/* the writer is gone: after one more read, nothing is left */
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(ENOMSG, end);
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ(0, info.dirty_bytes) TH_LOG("ENOMSG with the writer stopped");
	TH_LOG("%d rounds in %.1f s; %lu writes (%lu with write()), %llu bytes of initial data, "
	       "%zu bytes re-sent (all pages: %zu), %llu dirty bytes seen", rounds, now() - start,
	       h.writes, h.pwrites, (unsigned long long)initial, s.len - initial,
	       pages * PAGE_SEC, (unsigned long long)dirty_seen);
	EXPECT_LT(0, h.writes);
	EXPECT_EQ(0, h.failed) TH_LOG("write() to BAR0 failed");
	EXPECT_LT(0, dirty_seen) TH_LOG("the writes never showed as dirty bytes");
	ASSERT_LE(initial, s.len);
	/* after the initial data, whole page sections of the memory only */
	t = tally_sections(&s, initial, NULL, 0, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(0, t.stray_keys);
	EXPECT_EQ(0, t.config + t.regs + t.end + t.other);

	ASSERT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	announced = data_size(fd);
	ASSERT_EQ(-1, set_state(fd, STOP_COPY));
	tail_at = s.len;
	ASSERT_EQ(0, read_all(dfd, &s, &end));
	EXPECT_EQ(0, end);
	TH_LOG("stop-copy: %zu bytes, MIG_DATA_SIZE said %ld", s.len - tail_at, announced);
	EXPECT_EQ(announced, (long)(s.len - tail_at));
	t = tally_sections(&s, tail_at, NULL, 0, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(0, t.pages) TH_LOG("nothing changed after the last ENOMSG");
	EXPECT_EQ(1, t.config);
	EXPECT_EQ(is_mbochs() ? 2 : 1, t.regs);
	EXPECT_EQ(0, t.other);
	EXPECT_EQ(1, t.end);
	EXPECT_TRUE(t.end_last);
	close(dfd);
	ASSERT_EQ(-1, set_state(fd, STOP));
	munmap(h.map, self->src.memsize);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ASSERT_EQ(0, load(&self->dst, &s));
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
	buf_free(&s);
}

/* ---- pre-copy converges, however much changes ------------------------------------------ */

#define REWRITE_ROUNDS 4

/* Writes all of d's memory with words of `seed`: through the mapping or with write()s. */
static int rewrite_memory(struct dev *d, uint8_t *map, enum dirty_path path, uint64_t seed)
{
	const size_t chunk = 256 * 1024;
	uint8_t *b;
	int err = 0;

	if (path == THROUGH_MAPPING) {
		fill_words(map, d->memsize, seed, 0);
		return 0;
	}
	b = malloc(chunk);
	if (!b)
		return -ENOMEM;
	for (size_t at = 0; at < d->memsize && !err; at += chunk) {
		size_t n = d->memsize - at < chunk ? d->memsize - at : chunk;

		fill_words(b, n, seed, at);
		if (wr(d->fd, b, n, d->bar0 + at) != (ssize_t)n)
			err = -EIO;
	}
	free(b);
	return err;
}

/* How many distinct pages the run sections of s hold; -1 for a page past `pages`. */
static long distinct_pages(const struct buf *s, size_t pages)
{
	uint8_t *seen = calloc(pages, 1);
	long n = 0;

	if (!seen)
		return -1;
	for (size_t at = 0; at + SEC_LEN <= s->len; at += SEC_LEN + le32(s->p + at + 4)) {
		uint64_t key = le64(s->p + at + 8), len = le32(s->p + at + 4);

		if (le16(s->p + at) != SEC_RUN)
			continue;
		for (uint64_t p = key; p < key + len / PAGE && n >= 0; p++) {
			if (p >= pages) {
				n = -1;
				break;
			}
			n += !seen[p];
			seen[p] = 1;
		}
		if (n < 0)
			break;
	}
	free(seen);
	return n;
}

/*
 * Pre-copy of a guest that rewrites all of its memory between reads, four
 * times: no budget cuts it short. After each rewrite dirty_bytes counts
 * every page once and MIG_DATA_SIZE grew by as much; the read to ENOMSG
 * sends every page, once; at each ENOMSG PRECOPY_INFO is all 0. Pre-copy
 * sends over four times the memory; stop-copy, with nothing changed since
 * the last ENOMSG, sends config space, the registers and the end marker,
 * no page, exactly the MIG_DATA_SIZE of PRE_COPY_P2P. The destination
 * takes the stream as it comes (as in a migration: the test never holds
 * more than one round of it) and equals the source byte for byte.
 */
static void precopy_rewrites(struct __test_metadata *_metadata, struct dev *src, struct dev *dst,
			     enum dirty_path path)
{
	size_t pages = src->memsize / PAGE, sent;
	/* every page, in runs of RUN_PAGES (the last may be shorter) */
	size_t runs = full_runs(pages), round_len = pages * PAGE + runs * SEC_LEN;
	int fd = src->fd, dfd, ddfd, end;
	struct vfio_precopy_info info;
	struct buf chunk = {};
	long size0, announced;
	uint8_t *map;
	struct tally t;

	ASSERT_EQ(0, make_state(src, 51));
	map = mmap(NULL, src->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, src->bar0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(-1, set_state(dst->fd, STOP));
	ddfd = set_state(dst->fd, RESUMING);
	ASSERT_LE(0, ddfd);
	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, read_all(dfd, &chunk, &end));
	EXPECT_EQ(ENOMSG, end);
	ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len)) TH_LOG("the initial data");
	sent = chunk.len;
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ(0, info.dirty_bytes);
	size0 = data_size(fd);

	for (int round = 1; round <= REWRITE_ROUNDS; round++) {
		ASSERT_EQ(0, rewrite_memory(src, map, path, round));
		ASSERT_EQ(0, precopy_info(dfd, &info));
		EXPECT_EQ(0, info.initial_bytes);
		EXPECT_EQ(round_len, info.dirty_bytes)
			TH_LOG("round %d: all %zu pages rewritten through %s", round, pages,
			       path_names[path]);
		EXPECT_EQ(size0 + (long)round_len, data_size(fd)) TH_LOG("round %d", round);
		chunk.len = 0;
		ASSERT_EQ(0, read_all(dfd, &chunk, &end));
		EXPECT_EQ(ENOMSG, end);
		EXPECT_EQ(round_len, chunk.len) TH_LOG("round %d: bytes sent", round);
		t = tally_sections(&chunk, 0, NULL, 0, pages);
		EXPECT_TRUE(t.framed);
		EXPECT_EQ(pages, t.pages) TH_LOG("round %d", round);
		/* coalesced: one section per run of RUN_PAGES, not per page */
		EXPECT_EQ((int)runs, t.runs) TH_LOG("round %d: %zu pages", round, pages);
		EXPECT_GE(pages / 16, (size_t)t.runs) TH_LOG("round %d", round);
		EXPECT_EQ(0, t.stray_keys);
		EXPECT_EQ(0, t.config + t.regs + t.end + t.other);
		EXPECT_EQ((long)pages, distinct_pages(&chunk, pages)) TH_LOG("round %d", round);
		ASSERT_EQ(0, precopy_info(dfd, &info));
		EXPECT_EQ(0, info.initial_bytes);
		EXPECT_EQ(0, info.dirty_bytes) TH_LOG("round %d: ENOMSG with pages dirty", round);
		EXPECT_EQ(size0, data_size(fd)) TH_LOG("round %d: at ENOMSG", round);
		ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len))
			TH_LOG("round %d: the destination refused it after %zu bytes", round, sent);
		sent += chunk.len;
	}
	TH_LOG("through %s: pre-copy sent %zu bytes, the memory is %llu", path_names[path], sent,
	       (unsigned long long)src->memsize);
	EXPECT_LT(4 * src->memsize, sent);

	ASSERT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	announced = data_size(fd);
	EXPECT_EQ(size0, announced);
	ASSERT_EQ(-1, set_state(fd, STOP_COPY));
	chunk.len = 0;
	ASSERT_EQ(0, read_all(dfd, &chunk, &end));
	EXPECT_EQ(0, end);
	EXPECT_EQ(announced, (long)chunk.len);
	t = tally_sections(&chunk, 0, NULL, 0, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(0, t.pages) TH_LOG("nothing changed after the last ENOMSG");
	EXPECT_EQ(1, t.config);
	EXPECT_EQ(is_mbochs() ? 2 : 1, t.regs);
	EXPECT_EQ(0, t.other);
	EXPECT_EQ(1, t.end);
	EXPECT_TRUE(t.end_last);
	ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len)) TH_LOG("stop-copy's data");
	close(dfd);
	ASSERT_EQ(-1, set_state(fd, STOP));
	close(ddfd);
	ASSERT_EQ(-1, set_state(dst->fd, STOP)) TH_LOG("a stream of %zu bytes", sent + chunk.len);
	munmap(map, src->memsize);
	buf_free(&chunk);
	EXPECT_EQ(-1, set_state(dst->fd, RUNNING));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	expect_same_device(_metadata, src, dst);
}

#define PRECOPY_REWRITES_TEST(path, name)						\
	TEST_F_TIMEOUT(mig, precopy_rewrites_converge_through_##name, 180)		\
	{										\
		precopy_rewrites(_metadata, &self->src, &self->dst, path);		\
	}

PRECOPY_REWRITES_TEST(THROUGH_MAPPING, mapping)
PRECOPY_REWRITES_TEST(THROUGH_WRITE, write)

/*
 * A guest touching pages for the first time: one thread through the
 * mapping, one with write(), walking the same pages from either end (they
 * cross in the middle, then each writes pages the other touched).
 */
struct toucher {
	struct dev *d;
	uint8_t *map;		/* NULL: with write() */
	const size_t *order;	/* the pages, in the order to touch them */
	size_t n;
	long pause_ns;
	uint64_t rng;
	bool stop, done;
	unsigned long touches, failed;
};

static void *toucher_run(void *arg)
{
	struct toucher *t = arg;
	const struct timespec pause = { .tv_nsec = t->pause_ns };

	for (size_t i = 0; i < t->n && !__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE); i++) {
		off_t at = t->order[i] * PAGE + (t->map ? 0 : PAGE / 2);
		uint8_t bytes[64];

		for (size_t j = 0; j < sizeof(bytes); j++)
			bytes[j] = xorshift(&t->rng);
		if (t->map)
			memcpy(t->map + at, bytes, sizeof(bytes));
		else if (wr(t->d->fd, bytes, sizeof(bytes), t->d->bar0 + at) != sizeof(bytes))
			t->failed++;
		t->touches++;
		nanosleep(&pause, NULL);
	}
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * First touches race pre-copy's reads. mbochs allocates a VRAM page when
 * something first touches it, and make_state() touched only the first 64
 * pages and one far out: the threads touch the others (mdpy: write them
 * first since pre-copy started), each pass paced to last about a second,
 * while the main thread reads to ENOMSG again and again. Every read sends
 * whole page sections only; once the threads stop, one more read sends
 * what they left and the ENOMSG then comes with PRECOPY_INFO all 0, so
 * stop-copy sends no page. The destination, fed as the data comes, equals
 * the source: no first touch was lost.
 */
TEST_F_TIMEOUT(mig, precopy_first_touch_race, 180)
{
	size_t pages = self->src.memsize / PAGE, n = 0, *up, *down, sent;
	struct toucher a = { .d = &self->src, .rng = 0x9e3779b97f4a7c15ull };
	struct toucher b = { .d = &self->src, .rng = 0x2545f4914f6cdd1dull };
	int fd = self->src.fd, dfd, ddfd, end, rounds = 0, bad_rounds = 0;
	struct vfio_precopy_info info;
	pthread_t ta, tb;
	struct buf chunk = {};
	long size0, announced;
	struct tally t;
	double start;
	uint8_t byte;

	up = calloc(pages, sizeof(*up));
	down = calloc(pages, sizeof(*down));
	ASSERT_TRUE(up && down);
	/* the pages make_state() did not touch */
	for (size_t p = 64; p < pages; p++)
		if (p != pages - 3)
			up[n++] = p;
	ASSERT_LT(0, n);
	for (size_t i = 0; i < n; i++)
		down[i] = up[n - 1 - i];
	a.order = up;
	b.order = down;
	a.n = b.n = n;
	a.pause_ns = b.pause_ns = 1000000000L / n;

	ASSERT_EQ(0, make_state(&self->src, 61));
	a.map = mmap(NULL, self->src.memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		     self->src.bar0);
	ASSERT_NE(MAP_FAILED, a.map);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	ddfd = set_state(self->dst.fd, RESUMING);
	ASSERT_LE(0, ddfd);
	dfd = set_state(fd, PRE_COPY);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, read_all(dfd, &chunk, &end));
	EXPECT_EQ(ENOMSG, end);
	ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len)) TH_LOG("the initial data");
	sent = chunk.len;
	size0 = data_size(fd);

	ASSERT_EQ(0, pthread_create(&ta, NULL, toucher_run, &a));
	ASSERT_EQ(0, pthread_create(&tb, NULL, toucher_run, &b));
	start = now();
	/* until both passes are done (3 s at most), five rounds at least */
	while (rounds < 5 || (now() - start < 3 && !(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) &&
						     __atomic_load_n(&b.done, __ATOMIC_ACQUIRE)))) {
		const struct timespec gap = { .tv_nsec = 5 * 1000 * 1000 };

		chunk.len = 0;
		ASSERT_EQ(0, read_all(dfd, &chunk, &end));
		EXPECT_EQ(ENOMSG, end);
		t = tally_sections(&chunk, 0, NULL, 0, pages);
		bad_rounds += !t.framed || t.stray_keys || t.config + t.regs + t.end + t.other;
		ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len))
			TH_LOG("round %d: refused by the destination after %zu bytes", rounds,
			       sent);
		sent += chunk.len;
		rounds++;
		nanosleep(&gap, NULL);
	}
	__atomic_store_n(&a.stop, true, __ATOMIC_RELEASE);
	__atomic_store_n(&b.stop, true, __ATOMIC_RELEASE);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	TH_LOG("%d rounds in %.1f s; %lu + %lu of 2 x %zu touches (mapping + write()); "
	       "%zu bytes sent", rounds, now() - start, a.touches, b.touches, n, sent);
	EXPECT_EQ(0, bad_rounds) TH_LOG("reads with other than whole page sections");
	EXPECT_LT(0, a.touches);
	EXPECT_LT(0, b.touches);
	EXPECT_EQ(0, b.failed) TH_LOG("write() to BAR0 failed");

	/* the touches are over: one more read, then nothing is dirty */
	chunk.len = 0;
	ASSERT_EQ(0, read_all(dfd, &chunk, &end));
	EXPECT_EQ(ENOMSG, end);
	t = tally_sections(&chunk, 0, NULL, 0, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(0, t.stray_keys + t.config + t.regs + t.end + t.other);
	ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len));
	ASSERT_EQ(0, precopy_info(dfd, &info));
	EXPECT_EQ(0, info.initial_bytes);
	EXPECT_EQ(0, info.dirty_bytes) TH_LOG("ENOMSG with the threads stopped");
	EXPECT_EQ(size0, data_size(fd));
	errno = 0;
	EXPECT_EQ(-1, read(dfd, &byte, 1));
	EXPECT_EQ(ENOMSG, errno);

	ASSERT_EQ(-1, set_state(fd, PRE_COPY_P2P));
	announced = data_size(fd);
	ASSERT_EQ(-1, set_state(fd, STOP_COPY));
	chunk.len = 0;
	ASSERT_EQ(0, read_all(dfd, &chunk, &end));
	EXPECT_EQ(0, end);
	EXPECT_EQ(announced, (long)chunk.len);
	t = tally_sections(&chunk, 0, NULL, 0, pages);
	EXPECT_TRUE(t.framed);
	EXPECT_EQ(0, t.pages) TH_LOG("nothing changed after the last ENOMSG");
	EXPECT_EQ(1, t.config);
	EXPECT_EQ(is_mbochs() ? 2 : 1, t.regs);
	EXPECT_EQ(0, t.other);
	EXPECT_EQ(1, t.end);
	EXPECT_TRUE(t.end_last);
	ASSERT_EQ(0, write_all(ddfd, chunk.p, chunk.len)) TH_LOG("stop-copy's data");
	close(dfd);
	ASSERT_EQ(-1, set_state(fd, STOP));
	close(ddfd);
	ASSERT_EQ(-1, set_state(self->dst.fd, STOP));
	munmap(a.map, self->src.memsize);
	buf_free(&chunk);
	free(up);
	free(down);
	EXPECT_EQ(-1, set_state(self->dst.fd, RUNNING));
	EXPECT_EQ(-1, set_state(fd, RUNNING));
	expect_same_device(_metadata, &self->src, &self->dst);
}

TEST_HARNESS_MAIN
