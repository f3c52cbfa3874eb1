// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmarks of the mdev display drivers, run against the C sample
 * (MDEV_IMPL=c) or the Rust module (MDEV_IMPL=rust) that is loaded.
 *
 *   mdev_bench mdpy|mbochs IMPL ROUND    measure one loaded driver
 *   mdev_bench load KO [PARAMS]          finit_module(KO), print the time
 *   mdev_bench unload NAME               delete_module(NAME), print the time
 *
 * Every measurement is printed as one sample line
 *   sample DRIVER METRIC IMPL ROUND VALUE UNIT
 * and tools/testing/bench/bench-report.py turns them into the table. A
 * metric that cannot be measured on an implementation prints
 *   na DRIVER METRIC IMPL REASON
 * instead. Nothing here judges a timing: the program only fails when a driver
 * call it needs fails.
 *
 * The C samples' defects shape what is measured on C (see
 * Documentation/mdev-rs/c-sample-defects.rst):
 *  - mdpy defect 1: BAR0 read()/write() ignore the offset (every access hits
 *    byte 0); the throughput is measured anyway.
 *  - mbochs defect 2: BAR0 read()/write() are shifted by two pages and the
 *    last two pages index past the page array: only the first
 *    memsize - 1 MiB are accessed through read()/write().
 *  - mbochs defect 3: the first QUERY of a new mode returns ENOMEM; on C the
 *    query is retried once (that second call is part of the C number).
 *  - mbochs defect 4: a second GET_GFX_DMABUF of one id is a use-after-free:
 *    on C every buffer is exported exactly once.
 *  - mbochs defect 6: a buffer never exported leaks its page references when
 *    the device closes: on C (and, for the same work, on Rust) every buffer
 *    created is exported once.
 *  - mbochs defect 16: a dma-buf cannot be mmapped: dma-buf mmap metrics are
 *    "n/a" on C; the frame is read through the BAR0 mapping on both.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include <drm/drm_fourcc.h>

#include "mbochs_regs.h"
#include "mdev_lib.h"
#include "mig_lib.h"

#define MB (1024 * 1024)
#define KB 1024


/* The frame every driver shows in the benchmark: XGA, 32 bpp. */
#define FRAME_W 1024
#define FRAME_H 768
#define FRAME_SIZE ((size_t)FRAME_W * FRAME_H * 4)

static const char *drv, *impl;
static int round_no;
static int samples = 5;		/* samples per metric (env BENCH_SAMPLES) */
static long sample_ns = 20000000;	/* least time per sample (env BENCH_SAMPLE_MS) */

static void die(const char *what, int err)
{
	fprintf(stderr, "mdev_bench %s %s: %s: %s\n", drv ?: "", impl ?: "", what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void emit(const char *metric, double value, const char *unit)
{
	printf("sample %s %s %s %d %.6g %s\n", drv, metric, impl, round_no, value, unit);
	fflush(stdout);
}

static void emit_na(const char *metric, const char *why)
{
	printf("na %s %s %s %s\n", drv, metric, impl, why);
	fflush(stdout);
}

/*
 * One sample: runs fn until at least sample_ns passed and min_iters calls
 * were made; returns nanoseconds per call.
 */
typedef void (*bench_fn)(void *ctx, long i);

static double time_per_call(bench_fn fn, void *ctx, long min_iters)
{
	uint64_t t0 = now_ns(), t;
	long n = 0;

	do {
		fn(ctx, n++);
		t = now_ns() - t0;
	} while (n < min_iters || t < (uint64_t)sample_ns);
	return (double)t / n;
}

/* Latency metric in microseconds per call. */
static void bench_us(const char *metric, bench_fn fn, void *ctx, long min_iters)
{
	fn(ctx, 0);	/* warm-up */
	for (int s = 0; s < samples; s++)
		emit(metric, time_per_call(fn, ctx, min_iters) / 1000.0, "us");
}

/* Throughput metric in MB/s (MiB/s) of `bytes` per call. */
static void bench_mbs(const char *metric, bench_fn fn, void *ctx, long min_iters, size_t bytes)
{
	fn(ctx, 0);
	for (int s = 0; s < samples; s++)
		emit(metric, bytes / (time_per_call(fn, ctx, min_iters) / 1e9) / MB, "MiB/s");
}

/* ---- common: BAR0 read()/write(), mappings, memcpy reference ------------- */

struct rw_ctx {
	int fd;
	off_t bar0;
	size_t chunk, span;	/* accesses cycle through [bar0, bar0 + span) */
	uint8_t *buf;
	bool write;
};

static void rw_call(void *p, long i)
{
	struct rw_ctx *c = p;
	off_t off = c->bar0 + (off_t)((i * c->chunk) % c->span);
	ssize_t n = c->write ? wr(c->fd, c->buf, c->chunk, off) : rd(c->fd, c->buf, c->chunk, off);

	if (n != (ssize_t)c->chunk)
		die(c->write ? "BAR0 pwrite" : "BAR0 pread", n < 0 ? n : EIO);
}

static void bench_bar0_rw(int fd, off_t bar0, size_t span)
{
	static const size_t chunks[] = { 4 * KB, 1 * MB };
	struct rw_ctx c = { .fd = fd, .bar0 = bar0, .span = span };
	char name[64];

	c.buf = malloc(MB);
	if (!c.buf)
		die("malloc", ENOMEM);
	memset(c.buf, 0x5a, MB);
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		c.chunk = chunks[k];
		for (int w = 0; w < 2; w++) {
			c.write = w;
			snprintf(name, sizeof(name), "bar0_%s_%s", w ? "write" : "read",
				 c.chunk == MB ? "1M" : "4K");
			bench_mbs(name, rw_call, &c, 1, c.chunk);
		}
	}
	free(c.buf);
}

/* One small register access: `len` bytes at file offset `off`. */
struct reg_ctx {
	int fd;
	off_t off;
	size_t len;
	bool write;
};

static void reg_call(void *p, long i)
{
	struct reg_ctx *c = p;
	uint32_t v = 0;
	ssize_t n;

	(void)i;
	if (c->write)
		n = wr(c->fd, &v, c->len, c->off);
	else
		n = rd(c->fd, &v, c->len, c->off);
	if (n != (ssize_t)c->len)
		die(c->write ? "register write" : "register read", n < 0 ? n : EIO);
}

/* Reads one byte of every page: faults each page in on a fresh mapping. */
static uint8_t touch_pages(const volatile uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t off = 0; off < len; off += 4096)
		sum += p[off];
	return sum;
}

static volatile uint8_t sink;

/*
 * mmap() of `len` bytes of `fd` at `off`, then a read of one byte per page:
 * the cost of mapping and faulting in the whole area (munmap not counted).
 * Returns the mapping of the last sample, for the steady-state read.
 */
static uint8_t *bench_fault_in(const char *metric, int fd, off_t off, size_t len)
{
	uint8_t *map = NULL;

	for (int s = -1; s < samples; s++) {	/* s == -1: warm-up */
		uint64_t t0;

		if (map)
			munmap(map, len);
		t0 = now_ns();
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
		if (map == MAP_FAILED)
			die("mmap", errno);
		sink = touch_pages(map, len);
		if (s >= 0)
			emit(metric, (now_ns() - t0) / 1e6, "ms");
	}
	return map;
}

struct copy_ctx {
	const uint8_t *src;
	uint8_t *dst;
	size_t len;
};

static void copy_call(void *p, long i)
{
	struct copy_ctx *c = p;

	(void)i;
	memcpy(c->dst, c->src, c->len);
	sink = c->dst[c->len - 1];
}

/* Steady-state read of a mapped frame, and the same with plain memory. */
static void bench_frame_read(const char *metric, const uint8_t *map, bool reference)
{
	struct copy_ctx c = { .src = map, .len = FRAME_SIZE };
	uint8_t *ref = NULL;

	c.dst = malloc(FRAME_SIZE);
	if (!c.dst)
		die("malloc", ENOMEM);
	memset(c.dst, 1, FRAME_SIZE);
	bench_mbs(metric, copy_call, &c, 3, FRAME_SIZE);
	if (reference) {
		ref = malloc(FRAME_SIZE);
		if (!ref)
			die("malloc", ENOMEM);
		memset(ref, 2, FRAME_SIZE);
		c.src = ref;
		bench_mbs("memcpy_frame_reference", copy_call, &c, 3, FRAME_SIZE);
		free(ref);
	}
	free(c.dst);
}

/*
 * Steady-state write of a frame into a mapping (the first call, untimed,
 * makes its pages writable: the Rust drivers map them read-only until first
 * written, to track writes for pre-copy migration).
 */
static void bench_frame_write(const char *metric, uint8_t *map)
{
	struct copy_ctx c = { .dst = map, .len = FRAME_SIZE };
	uint8_t *src = malloc(FRAME_SIZE);

	if (!src)
		die("malloc", ENOMEM);
	memset(src, 3, FRAME_SIZE);
	c.src = src;
	bench_mbs(metric, copy_call, &c, 3, FRAME_SIZE);
	free(src);
}

/* mdev create + open (iommufd cdev) + close + remove, each part timed. */
static void bench_lifecycle(const char *parent, const char *type)
{
	for (int s = -1; s < samples; s++) {
		struct vfio_handle h;
		uint64_t t[5];
		char uuid[40];
		int ret;

		gen_uuid(uuid);
		t[0] = now_ns();
		ret = mdev_create(parent, type, uuid);
		if (ret)
			die("mdev create", ret);
		t[1] = now_ns();
		ret = vfio_open(uuid, true, &h);
		if (ret)
			die("vfio open", ret);
		t[2] = now_ns();
		vfio_close(&h);
		t[3] = now_ns();
		ret = mdev_remove(uuid);
		if (ret)
			die("mdev remove", ret);
		t[4] = now_ns();
		if (s < 0)
			continue;
		emit("lifecycle_create", (t[1] - t[0]) / 1e3, "us");
		emit("lifecycle_open", (t[2] - t[1]) / 1e3, "us");
		emit("lifecycle_close", (t[3] - t[2]) / 1e3, "us");
		emit("lifecycle_remove", (t[4] - t[3]) / 1e3, "us");
		emit("lifecycle_total", (t[4] - t[0]) / 1e3, "us");
	}
}

/* An mdev, created and opened for a benchmark. */
struct dev {
	char uuid[40];
	struct vfio_handle h;
	int fd;
	off_t bar0, bar2;
	size_t bar0_size;
};

static void dev_open(struct dev *d, const char *parent, const char *type)
{
	struct vfio_region_info info;
	int ret;

	gen_uuid(d->uuid);
	ret = mdev_create(parent, type, d->uuid);
	if (ret)
		die("mdev create", ret);
	ret = vfio_open(d->uuid, true, &d->h);
	if (ret)
		die("vfio open", ret);
	d->fd = d->h.device;
	ret = region_info(d->fd, VFIO_PCI_BAR0_REGION_INDEX, &info);
	if (ret)
		die("BAR0 region info", ret);
	d->bar0 = info.offset;
	d->bar0_size = info.size;
	ret = region_info(d->fd, VFIO_PCI_BAR2_REGION_INDEX, &info);
	d->bar2 = ret ? 0 : info.offset;
}

static void dev_close(struct dev *d)
{
	int ret;

	vfio_close(&d->h);
	ret = mdev_remove(d->uuid);
	if (ret)
		die("mdev remove", ret);
}

static int query(int fd, uint32_t flags, struct vfio_device_gfx_plane_info *p)
{
	memset(p, 0, sizeof(*p));
	p->argsz = sizeof(*p);
	p->flags = flags;
	p->drm_plane_type = PLANE_PRIMARY;
	return ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, p) ? -errno : 0;
}

struct query_ctx {
	int fd;
	uint32_t flags;
};

static void query_call(void *p, long i)
{
	struct query_ctx *c = p;
	struct vfio_device_gfx_plane_info plane;
	int ret = query(c->fd, c->flags, &plane);

	(void)i;
	if (ret)
		die("QUERY_GFX_PLANE", ret);
	if (plane.width != FRAME_W)
		die("QUERY_GFX_PLANE: unexpected plane", EINVAL);
}

/* ---- migration: save and restore of a whole device ---------------------------- */

static const char *const mig_metrics[] = {
	"mig_stop_copy_bytes", "mig_data_size_estimate", "mig_save", "mig_restore",
	"mig_memcpy_reference", "mig_restore_memory_peak", "mig_restore_memory_after",
	"mig_memory_size",
};

/* The state change to `state`; dies unless it gives (or not) a data fd. */
static int mig_to(int fd, uint32_t state, bool data_fd)
{
	int ret = set_state(fd, state);

	if (ret < -1 || (ret >= 0) != data_fd)
		die("VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", ret < -1 ? ret : EBADF);
	return ret;
}

/*
 * Free memory in bytes: the zones' free pages plus the pages on the per-CPU
 * free lists (/proc/zoneinfo), which MemFree leaves out, so that a page
 * freed to (or allocated from) a per-CPU list counts.
 */
static long long mem_free(void)
{
	char line[256];
	long long pages = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		die("/proc/zoneinfo", errno);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " pages free %lld", &n) == 1 || sscanf(line, " count: %lld", &n) == 1)
			pages += n;
	fclose(f);
	return pages * sysconf(_SC_PAGESIZE);
}

/*
 * Reads a data fd to its end straight into `b`'s memory, 1 MiB per read(),
 * as bar0_read_1M reads BAR0: the same user-side work, so the two compare
 * the kernel's side. `b` grows only if the stream is longer than it was
 * (the warm-up sample sizes it). 0 or -1 with errno.
 */
static int read_direct(int dfd, struct buf *b)
{
	for (;;) {
		ssize_t n;

		if (b->cap - b->len < MB) {
			b->cap = b->cap * 2 + MB;
			b->p = realloc(b->p, b->cap);
			if (!b->p)
				die("realloc", ENOMEM);
		}
		n = read(dfd, b->p + b->len, MB);
		if (n <= 0)
			return n;
		b->len += n;
	}
}

/* Writes all of it, 1 MiB per write() (as bar0_write_1M). 0 or -1 with errno. */
static int write_direct(int dfd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = write(dfd, p, len < MB ? len : MB);

		if (w < 0)
			return -1;
		p += w;
		len -= w;
	}
	return 0;
}

/*
 * Stop-copy of one mdev of `type` into a second one, with all of its memory
 * (the framebuffer, or every page of VRAM) written first: the stream's size,
 * the driver's MIG_DATA_SIZE estimate of it, and save (STOP -> STOP_COPY ->
 * read to EOF -> STOP) and restore (RESUMING -> write -> STOP) throughput,
 * beside a memcpy of as many bytes. The C samples have no migration.
 */
static void bench_migration(const char *parent, const char *type)
{
	struct dev src, dst;
	struct buf stream = {};
	uint64_t flags;
	uint8_t *map, *copy;

	dev_open(&src, parent, type);
	if (mig_flags(src.fd, &flags) == -ENOTTY && mdev_impl_is_c()) {
		for (size_t i = 0; i < sizeof(mig_metrics) / sizeof(mig_metrics[0]); i++)
			emit_na(mig_metrics[i], "C_sample_has_no_migration");
		dev_close(&src);
		return;
	}
	dev_open(&dst, parent, type);
	map = mmap(NULL, src.bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, src.fd, src.bar0);
	if (map == MAP_FAILED)
		die("mmap", errno);
	for (size_t i = 0; i < src.bar0_size; i++)
		map[i] = i * 7 + (i >> 12);
	munmap(map, src.bar0_size);

	for (int s = -1; s < samples; s++) {
		uint64_t t0, t1, t2, t3, tm, uncounted = 0;
		long long free0, free1, free2;
		long estimate = data_size(src.fd);
		int dfd;

		stream.len = 0;
		t0 = now_ns();
		mig_to(src.fd, STOP, false);
		dfd = mig_to(src.fd, STOP_COPY, true);
		if (read_direct(dfd, &stream))
			die("reading the stop-copy stream", errno);
		close(dfd);
		mig_to(src.fd, STOP, false);
		t1 = now_ns();
		/*
		 * The destination's memory: what the system lost between before
		 * RESUMING and the whole stream written (its peak: the staged
		 * state beside the device's own), and 0.5 s after STOP (the
		 * device's old memory freed). The VM is otherwise idle and this process
		 * allocates nothing in between; the time to read it is not
		 * counted in the restore.
		 */
		tm = now_ns();
		free0 = mem_free();
		uncounted += now_ns() - tm;
		mig_to(dst.fd, STOP, false);
		dfd = mig_to(dst.fd, RESUMING, true);
		if (write_direct(dfd, stream.p, stream.len))
			die("writing the stream", errno);
		tm = now_ns();
		free1 = mem_free();
		uncounted += now_ns() - tm;
		close(dfd);
		mig_to(dst.fd, STOP, false);
		t2 = now_ns();
		/* what the device replaced may be freed in the background (mbochs) */
		nanosleep(&(struct timespec){ .tv_nsec = 500 * 1000 * 1000 }, NULL);
		free2 = mem_free();
		copy = malloc(stream.len);
		if (!copy)
			die("malloc", ENOMEM);
		memset(copy, 1, stream.len);	/* fault it in, like the stream buffer */
		t3 = now_ns();
		memcpy(copy, stream.p, stream.len);
		sink = copy[stream.len - 1];
		t3 = now_ns() - t3;
		free(copy);
		mig_to(src.fd, RUNNING, false);
		mig_to(dst.fd, RUNNING, false);
		if (s < 0)
			continue;
		emit("mig_stop_copy_bytes", stream.len, "B");
		emit("mig_data_size_estimate", estimate, "B");
		emit("mig_save", stream.len / ((t1 - t0) / 1e9) / MB, "MiB/s");
		emit("mig_restore", stream.len / ((t2 - t1 - uncounted) / 1e9) / MB, "MiB/s");
		emit("mig_memcpy_reference", stream.len / (t3 / 1e9) / MB, "MiB/s");
		emit("mig_restore_memory_peak", (free0 - free1) / (double)MB, "MiB");
		emit("mig_restore_memory_after", (free0 - free2) / (double)MB, "MiB");
		emit("mig_memory_size", src.bar0_size / (double)MB, "MiB");
	}
	buf_free(&stream);
	dev_close(&dst);
	dev_close(&src);
}

/* ---- migration: pre-copy, then what stop-copy must still send ---------------- */

/* What the guest does while pre-copy runs. */
enum precopy_load { PRECOPY_STATIC, PRECOPY_SMALL, PRECOPY_FULL, PRECOPY_LOADS };
static const char *const precopy_names[PRECOPY_LOADS] = { "static", "small", "full" };

/*
 * The downtime and its parts: the source's side (P2P, STOP_COPY, reads to
 * EOF), the destination's write, its RESUMING -> STOP.
 */
enum downtime_part { DOWNTIME, DOWNTIME_SOURCE, DOWNTIME_WRITE, DOWNTIME_COMMIT, DOWNTIME_PARTS };
static const char *const downtime_suffixes[DOWNTIME_PARTS] = { "", "_source", "_write", "_commit" };

/* The screen the writer draws in BAR0: 1920x1080, 32 bpp (mdpy-hd's mode). */
#define SCREEN_W 1920
#define SCREEN_H 1080
#define SCREEN_STRIDE (SCREEN_W * 4)

struct precopy_writer {
	volatile uint8_t *map;
	enum precopy_load load;
	volatile bool stop;
	unsigned int frames;
};

/*
 * The guest: redraws a 64x64 square at the top left (small) or the whole
 * screen (full), one frame every 10 ms, until told to stop.
 */
static void *precopy_write(void *arg)
{
	struct precopy_writer *w = arg;
	unsigned int side_w = w->load == PRECOPY_FULL ? SCREEN_W : 64;
	unsigned int side_h = w->load == PRECOPY_FULL ? SCREEN_H : 64;
	const struct timespec frame = { .tv_nsec = 10 * 1000 * 1000 };

	while (!w->stop) {
		uint8_t v = ++w->frames;

		for (unsigned int y = 0; y < side_h; y++)
			memset((uint8_t *)w->map + (size_t)y * SCREEN_STRIDE, v, side_w * 4);
		nanosleep(&frame, NULL);
	}
	return NULL;
}

/* Reads the data fd until ENOMSG; what it read goes to `out` (if not NULL). */
static void read_until_enomsg(int dfd, struct buf *out)
{
	int end;

	if (read_all(dfd, out, &end) || end != ENOMSG)
		die("reading pre-copy data", end ?: EIO);
}

/*
 * One pre-copy iteration as QEMU does it: read what PRECOPY_INFO reports
 * pending now (initial + dirty), or to ENOMSG if that comes first. While the
 * guest keeps drawing, ENOMSG never comes (the uapi allows it only with
 * nothing pending), so reading "to the end" would never end.
 */
static void read_pending(int dfd, struct buf *out)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };
	uint8_t chunk[65536];
	uint64_t left;

	if (ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		die("PRECOPY_INFO", errno);
	left = info.initial_bytes + info.dirty_bytes;
	while (left) {
		ssize_t n = read(dfd, chunk, left < sizeof(chunk) ? left : sizeof(chunk));

		if (n < 0 && errno == ENOMSG)
			return;
		if (n <= 0)
			die("reading pre-copy data", n ? errno : EIO);
		buf_put(out, chunk, n);
		left -= n;
	}
}

/* The metrics of a pre-copy bench of `nloads` loads, named from `prefix`. */
static void precopy_na(const char *prefix, int nloads)
{
	char metric[64];

	snprintf(metric, sizeof(metric), "%s_memory", prefix);
	emit_na(metric, "C_sample_has_no_migration");
	for (int load = 0; load < nloads; load++) {
		snprintf(metric, sizeof(metric), "%s_%s_stop_copy_bytes", prefix, precopy_names[load]);
		emit_na(metric, "C_sample_has_no_migration");
		for (int part = 0; part < DOWNTIME_PARTS; part++) {
			snprintf(metric, sizeof(metric), "%s_%s_downtime%s", prefix,
				 precopy_names[load], downtime_suffixes[part]);
			emit_na(metric, "C_sample_has_no_migration");
		}
	}
}

/*
 * A live migration without QEMU, between two mdevs of `type`, all of whose
 * memory was written first: pre-copy (the initial state, then five rounds of
 * the changed pages, 50 ms apart) while a writer thread plays the guest
 * (static: draws nothing; small: redraws a 64x64 square; full: redraws the
 * whole screen), whose pre-copy data goes to the destination as it comes.
 * Then the downtime: the writer stops (the guest is paused), PRE_COPY_P2P,
 * STOP_COPY, read to EOF (the stop-copy bytes), the destination gets them
 * and leaves RESUMING (it applies the whole stream). Reported: those bytes
 * and the time from the pause to the destination's STOP, beside the size
 * of the device's memory, and the three parts of that time (the source's
 * STOP_COPY and reads, the destination's write, its RESUMING -> STOP). One
 * sample per load and round (each moves the memory at least twice), after
 * an uncounted one.
 */
static void bench_precopy(const char *parent, const char *type, int nloads, const char *prefix)
{
	int nsamples = 1;
	struct dev src, dst;
	uint64_t flags;
	uint8_t *map;
	char metric[64];

	dev_open(&src, parent, type);
	if (mig_flags(src.fd, &flags) == -ENOTTY && mdev_impl_is_c()) {
		precopy_na(prefix, nloads);
		dev_close(&src);
		return;
	}
	dev_open(&dst, parent, type);
	if (nloads > PRECOPY_STATIC + 1 && src.bar0_size < (size_t)SCREEN_STRIDE * SCREEN_H)
		die("BAR0 smaller than the screen", EINVAL);
	map = mmap(NULL, src.bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, src.fd, src.bar0);
	if (map == MAP_FAILED)
		die("mmap", errno);
	for (size_t i = 0; i < src.bar0_size; i++)
		map[i] = i * 7 + (i >> 12);
	snprintf(metric, sizeof(metric), "%s_memory", prefix);
	for (int s = 0; s < nsamples; s++)
		emit(metric, src.bar0_size, "B");

	for (int load = 0; load < nloads; load++) {
		/*
		 * A first, uncounted sample of the first load, as the other benches
		 * warm up: the module is loaded anew each round, and under TCG the
		 * first run of its code paths (translated then) costs milliseconds.
		 */
		for (int s = load ? 0 : -1; s < nsamples; s++) {
			struct precopy_writer w = { .map = map, .load = load };
			struct buf pre = {}, tail = {};
			const struct timespec gap = { .tv_nsec = 50 * 1000 * 1000 };
			pthread_t thread;
			uint64_t t0, ts, tw, t1;
			int sdfd, ddfd, end;

			mig_to(dst.fd, STOP, false);
			ddfd = mig_to(dst.fd, RESUMING, true);
			sdfd = mig_to(src.fd, PRE_COPY, true);
			read_until_enomsg(sdfd, &pre);
			if (load != PRECOPY_STATIC && pthread_create(&thread, NULL, precopy_write, &w))
				die("pthread_create", EAGAIN);
			for (int round = 0; round < 5; round++) {
				nanosleep(&gap, NULL);
				read_pending(sdfd, &pre);
				if (write_all(ddfd, pre.p, pre.len))
					die("writing pre-copy data", errno);
				pre.len = 0;
			}
			/* the guest is paused: the downtime starts */
			if (load != PRECOPY_STATIC) {
				w.stop = true;
				pthread_join(thread, NULL);
			}
			t0 = now_ns();
			mig_to(src.fd, PRE_COPY_P2P, false);
			mig_to(src.fd, STOP_COPY, false);
			if (read_all(sdfd, &tail, &end) || end)
				die("reading the stop-copy data", end ?: EIO);
			ts = now_ns();
			if (write_all(ddfd, tail.p, tail.len))
				die("writing the stop-copy data", errno);
			tw = now_ns();
			mig_to(dst.fd, STOP, false);
			t1 = now_ns();
			close(sdfd);
			close(ddfd);
			mig_to(src.fd, STOP, false);
			mig_to(src.fd, RUNNING, false);
			mig_to(dst.fd, RUNNING, false);
			if (s < 0) {
				buf_free(&pre);
				buf_free(&tail);
				continue;
			}
			snprintf(metric, sizeof(metric), "%s_%s_stop_copy_bytes", prefix,
				 precopy_names[load]);
			emit(metric, tail.len, "B");
			uint64_t parts[DOWNTIME_PARTS] = {
				[DOWNTIME] = t1 - t0, [DOWNTIME_SOURCE] = ts - t0,
				[DOWNTIME_WRITE] = tw - ts, [DOWNTIME_COMMIT] = t1 - tw,
			};
			for (int part = 0; part < DOWNTIME_PARTS; part++) {
				snprintf(metric, sizeof(metric), "%s_%s_downtime%s", prefix,
					 precopy_names[load], downtime_suffixes[part]);
				emit(metric, parts[part] / 1e6, "ms");
			}
			buf_free(&pre);
			buf_free(&tail);
		}
	}
	munmap(map, src.bar0_size);
	dev_close(&dst);
	dev_close(&src);
}

/* ---- mdpy ------------------------------------------------------------------ */

static void bench_mdpy(void)
{
	const char *type = "mdpy-xga";
	struct query_ctx q;
	struct dev d;
	uint8_t *map;

	dev_open(&d, "mdpy", type);
	q.fd = d.fd;
	q.flags = VFIO_GFX_PLANE_TYPE_REGION;
	bench_us("query_plane", query_call, &q, 50);
	bench_us("config_read", reg_call, &(struct reg_ctx){ d.fd, 0, 4, false }, 50);
	bench_bar0_rw(d.fd, d.bar0, d.bar0_size);
	map = bench_fault_in("bar0_mmap_fault_in", d.fd, d.bar0, d.bar0_size);
	bench_frame_read("bar0_mmap_frame_read", map, true);
	bench_frame_write("bar0_mmap_frame_write", map);
	munmap(map, d.bar0_size);
	dev_close(&d);
	bench_lifecycle("mdpy", type);
	bench_migration("mdpy", "mdpy-hd");
	bench_precopy("mdpy", "mdpy-hd", PRECOPY_LOADS, "mig_precopy");
	/* the smallest display: what mbochs-large's static downtime is held against */
	bench_precopy("mdpy", "mdpy-vga", PRECOPY_STATIC + 1, "mig_vga_precopy");
}

/* ---- mbochs ---------------------------------------------------------------- */

static void dispi_wr(struct dev *d, unsigned int idx, uint16_t v)
{
	ssize_t n = wr(d->fd, &v, 2, d->bar2 + DISPI_BASE + idx * 2);

	if (n != 2)
		die("DISPI write", n < 0 ? n : EIO);
}

/* Programs a FRAME_W x FRAME_H mode panned down by `yoff` lines, as bochs-drm does. */
static void set_mode(struct dev *d, uint16_t yoff)
{
	dispi_wr(d, DISPI_ENABLE, 0);
	dispi_wr(d, DISPI_BPP, 32);
	dispi_wr(d, DISPI_XRES, FRAME_W);
	dispi_wr(d, DISPI_YRES, FRAME_H);
	dispi_wr(d, DISPI_BANK, 0);
	dispi_wr(d, DISPI_VIRT_WIDTH, FRAME_W);
	dispi_wr(d, DISPI_VIRT_HEIGHT, FRAME_H);
	dispi_wr(d, DISPI_X_OFFSET, 0);
	dispi_wr(d, DISPI_Y_OFFSET, yoff);
	dispi_wr(d, DISPI_ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
}

/* QUERY of the primary plane; on C one retry after ENOMEM (defect 3). */
static uint32_t query_dmabuf_id(struct dev *d)
{
	struct vfio_device_gfx_plane_info plane;
	int ret = query(d->fd, VFIO_GFX_PLANE_TYPE_DMABUF, &plane);

	if (ret == -ENOMEM && mdev_impl_is_c())
		ret = query(d->fd, VFIO_GFX_PLANE_TYPE_DMABUF, &plane);
	if (ret)
		die("QUERY_GFX_PLANE", ret);
	if (!plane.dmabuf_id || plane.width != FRAME_W || plane.size != FRAME_SIZE)
		die("QUERY_GFX_PLANE: no plane", EINVAL);
	return plane.dmabuf_id;
}

static int get_dmabuf(struct dev *d, uint32_t id)
{
	int fd = ioctl(d->fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);

	if (fd < 0)
		die("GET_GFX_DMABUF", errno);
	return fd;
}

/* Lines a new mode is panned down by: distinct, page-aligned modes. */
static uint16_t next_yoff;

static uint16_t new_yoff(size_t vram)
{
	uint16_t max = (vram - FRAME_SIZE) / (FRAME_W * 4);
	uint16_t y = next_yoff;

	next_yoff = (next_yoff + 8) % (max + 1);
	return y;
}

/* Mode changes between two modes the device has seen. */
struct modes_ctx {
	struct dev *d;
	uint16_t yoff[2];
};

static void mode_switch_call(void *p, long i)
{
	struct modes_ctx *c = p;

	set_mode(c->d, c->yoff[i & 1]);
	query_dmabuf_id(c->d);
}

static void bench_mbochs(void)
{
	const char *type = "mbochs-medium";
	struct modes_ctx mc;
	struct query_ctx q;
	struct dev d;
	uint8_t *map;
	uint32_t id;

	dev_open(&d, "mbochs", type);

	/* Per-access cost of guest register accesses (QEMU forwards each one). */
	bench_us("config_read", reg_call, &(struct reg_ctx){ d.fd, 0, 4, false }, 50);
	bench_us("bar2_dispi_read", reg_call,
		 &(struct reg_ctx){ d.fd, d.bar2 + DISPI_BASE, 2, false }, 50);
	bench_us("bar2_dispi_write", reg_call,
		 &(struct reg_ctx){ d.fd, d.bar2 + DISPI_BASE + DISPI_BANK * 2, 2, true }, 50);

	/* BAR0 through mmap: the VRAM pages are allocated by the warm-up. */
	map = bench_fault_in("bar0_mmap_fault_in", d.fd, d.bar0, d.bar0_size);
	bench_frame_read("bar0_mmap_frame_read", map, true);
	bench_frame_write("bar0_mmap_frame_write", map);
	munmap(map, d.bar0_size);

	/* read()/write(): away from the end of VRAM (C defect 2). */
	bench_bar0_rw(d.fd, d.bar0, d.bar0_size - MB);

	/*
	 * A new mode: DISPI writes and the QUERY that creates its buffer (on C
	 * two QUERYs, defect 3). Then the first GET_GFX_DMABUF (the export) and
	 * close of its fd, on both (C defects 4 and 6).
	 */
	for (int s = -1; s < samples; s++) {
		uint64_t t0, t1, t2;
		int fd;

		t0 = now_ns();
		set_mode(&d, new_yoff(d.bar0_size));
		id = query_dmabuf_id(&d);
		t1 = now_ns();
		fd = get_dmabuf(&d, id);
		close(fd);
		t2 = now_ns();
		if (s < 0)
			continue;
		emit("mode_change_new", (t1 - t0) / 1e3, "us");
		emit("dmabuf_first_get_close", (t2 - t1) / 1e3, "us");
	}

	/* Mode changes between two known (exported) modes. */
	mc.d = &d;
	mc.yoff[0] = new_yoff(d.bar0_size);
	mc.yoff[1] = new_yoff(d.bar0_size);
	for (int k = 0; k < 2; k++) {
		set_mode(&d, mc.yoff[k]);
		close(get_dmabuf(&d, query_dmabuf_id(&d)));
	}
	bench_us("mode_change_known", mode_switch_call, &mc, 10);

	/* The per-frame cost: QUERY with an unchanged mode. */
	set_mode(&d, mc.yoff[1]);
	query_dmabuf_id(&d);
	q.fd = d.fd;
	q.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
	bench_us("query_plane", query_call, &q, 50);

	/* dma-buf: GET + mmap + read of the frame (not possible on C). */
	id = query_dmabuf_id(&d);
	if (mdev_impl_is_c()) {
		static const char *why = "C_defect_16:dma-buf_mmap_EINVAL";

		emit_na("dmabuf_get_again_close", "C_defect_4:second_GET_is_use-after-free");
		emit_na("dmabuf_get_mmap_read_close", why);
		emit_na("dmabuf_mmap_fault_in", why);
		emit_na("dmabuf_mmap_frame_read", why);
	} else {
		int fd;

		for (int s = -1; s < samples; s++) {
			uint64_t t0 = now_ns();
			long n = 0;

			do {
				close(get_dmabuf(&d, id));
				n++;
			} while (now_ns() - t0 < (uint64_t)sample_ns || n < 20);
			if (s >= 0)
				emit("dmabuf_get_again_close", (now_ns() - t0) / 1e3 / n, "us");
		}
		for (int s = -1; s < samples; s++) {
			uint8_t *dst = malloc(FRAME_SIZE);
			uint64_t t0 = now_ns();

			if (!dst)
				die("malloc", ENOMEM);
			fd = get_dmabuf(&d, id);
			map = mmap(NULL, FRAME_SIZE, PROT_READ, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED)
				die("dma-buf mmap", errno);
			memcpy(dst, map, FRAME_SIZE);
			munmap(map, FRAME_SIZE);
			close(fd);
			if (s >= 0)
				emit("dmabuf_get_mmap_read_close", (now_ns() - t0) / 1e6, "ms");
			free(dst);
		}
		fd = get_dmabuf(&d, id);
		map = bench_fault_in("dmabuf_mmap_fault_in", fd, 0, FRAME_SIZE);
		bench_frame_read("dmabuf_mmap_frame_read", map, false);
		munmap(map, FRAME_SIZE);
		close(fd);
	}
	dev_close(&d);
	bench_lifecycle("mbochs", type);
	bench_migration("mbochs", "mbochs-large");
	bench_precopy("mbochs", "mbochs-large", PRECOPY_LOADS, "mig_precopy");
}

/* ---- module load/unload ---------------------------------------------------- */

static int load(const char *ko, const char *params)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC);
	uint64_t t0;

	if (fd < 0)
		die(ko, errno);
	t0 = now_ns();
	if (syscall(SYS_finit_module, fd, params, 0))
		die("finit_module", errno);
	printf("%.6g\n", (now_ns() - t0) / 1e6);
	close(fd);
	return 0;
}

static int unload(const char *name)
{
	uint64_t t0 = now_ns();

	if (syscall(SYS_delete_module, name, O_NONBLOCK))
		die("delete_module", errno);
	printf("%.6g\n", (now_ns() - t0) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "load"))
		return load(argv[2], argc > 3 ? argv[3] : "");
	if (argc == 3 && !strcmp(argv[1], "unload"))
		return unload(argv[2]);
	if (argc != 4) {
		fprintf(stderr, "usage: %s mdpy|mbochs c|rust ROUND\n"
			"       %s load KO [PARAMS] | unload NAME\n", argv[0], argv[0]);
		return 2;
	}
	drv = argv[1];
	impl = argv[2];
	round_no = atoi(argv[3]);
	setenv("MDEV_IMPL", impl, 1);
	if (getenv("BENCH_SAMPLES"))
		samples = atoi(getenv("BENCH_SAMPLES"));
	if (getenv("BENCH_SAMPLE_MS"))
		sample_ns = atol(getenv("BENCH_SAMPLE_MS")) * 1000000L;
	if (!strcmp(drv, "mdpy"))
		bench_mdpy();
	else if (!strcmp(drv, "mbochs"))
		bench_mbochs();
	else
		die("unknown driver", EINVAL);
	return 0;
}
