// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded random-operation fuzzer for the mdev display drivers (mdpy and
 * mbochs, C samples or Rust modules: whichever are loaded), and a
 * create/open/use/close/remove stress loop.
 *
 *   mdev_fuzz fuzz    random operations from several threads over several
 *                     mdevs of both drivers (FUZZ_DRIVERS), both open paths
 *   mdev_fuzz cycles  FUZZ_CYCLES (default 1000) create / open / (mbochs:
 *                     mode, QUERY_GFX_PLANE, GET_GFX_DMABUF, mmap) / BAR0
 *                     mmap / close / remove cycles per driver, memory bounded
 *
 * Environment:
 *   FUZZ_SEED     seed (default: from the clock); printed first, and
 *                 FUZZ_SEED=<it> replays the run: each thread's operation
 *                 sequence is a function of the seed and the thread number
 *                 (the interleaving of threads is not: that is the kernel's)
 *   FUZZ_OPS      operations per driver (default 20000)
 *   FUZZ_SECONDS  time limit (default 600): stopping on it is a failure
 *   FUZZ_THREADS  worker threads (default 4), plus one remover/unloader
 *   FUZZ_DRIVERS  "mdpy mbochs" (default), or one of them
 *   FUZZ_HISTORY  operations of each thread kept for the failure report (32)
 *   FUZZ_TRACE=1  print every operation (slow; to localise a kernel splat)
 *   FUZZ_POOL_MB  mbochs' pool (its count parameter; default 128)
 *   FUZZ_MDPY_COUNT  mdpy's count parameter (default 4)
 *   FUZZ_PAGE_BOUND_KB  cycles: allowed growth, over the second half of
 *                 the cycles, of the kernel pages no /proc counter accounts
 *                 (where a page a driver keeps lands; default 256: a page
 *                 kept per cycle is 400 kB over 100 cycles)
 *   FUZZ_AVAIL_BOUND_KB  cycles: allowed fall, over the second half of
 *                 the cycles, of MemAvailable less what the per-cpu free
 *                 lists and processes' anonymous memory and page tables
 *                 explain (the kernel's share; default 1024)
 *   FUZZ_MEM_BOUND_KB  cycles: allowed growth of the live kmalloc objects
 *                 over the second half of the cycles (default 2048)
 *   FUZZ_OUT      cycles: a directory for the /proc files at the measuring
 *                 points and counters-trace.txt, the memory counters every
 *                 FUZZ_TRACE_EVERY cycles (default: n/20, at least 25)
 *   FUZZ_CYCLE_SKIP  cycles: steps to leave out, to find which one a
 *                 counter moves with (see parse_skip())
 *
 * Ops per driver are counted when an operation on one of its mdevs is done.
 * On a failure (a result the uapi forbids, an unexpected signal, a module
 * that unloads while in use, an mdev that cannot be removed, a pool not back
 * to full) it prints the failure and the last operations of every thread and
 * exits 1. The kernel's own reports (WARN, BUG, lockdep, kmemleak) are
 * judged by the caller (tools/testing/vm/guest-fuzz.sh).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/dma-buf.h>

#include "mbochs_regs.h"
#include "mdev_lib.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MB (1024UL * 1024)
#define PAGE 4096UL
#define MAX_MDEVS 8
#define MAX_REGIONS 10
#define MAX_MAPS 6
#define MAX_FDS 12
#define BUF_SIZE (64 * 1024)
#define EDID_INDEX 9

/* ---------------------------------------------------------------- random */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned int percent)
{
	return below(r, 100) < percent;
}

/* Sizes and offsets that find edges: small, around powers of two, huge. */
static uint64_t edgy(struct rng *r, uint64_t around)
{
	switch (below(r, 8)) {
	case 0: return below(r, 9);
	case 1: return around;
	case 2: return around + below(r, 9) - 4;
	case 3: return (1ULL << below(r, 64)) + below(r, 3) - 1;
	case 4: return rnd(r);
	case 5: return below(r, around + 1);
	case 6: return around - below(r, 4096);
	default: return 0xffffffffULL - below(r, 4);
	}
}

/* ---------------------------------------------------------------- state */

struct region {
	uint64_t offset, size;
	uint32_t flags;
};

struct mdev {
	const char *driver, *type;
	int drv;		/* index into drivers[] */
	uint64_t memsize;	/* BAR0 / VRAM */
	char uuid[40];
	pthread_mutex_t lock;
	struct vfio_handle h;	/* h.device < 0: closed */
	int users;		/* threads using h.device now */
	bool present, removing, want_close;
	unsigned int generation;	/* bumped at each close */
	int nregions;
	struct region r[MAX_REGIONS];
};

struct driver {
	const char *name;
	const char *module;
	const char *types[3];
	uint64_t type_mb[3];	/* mdpy: framebuffer, mbochs: VRAM (MB) */
	atomic_long ops;
	bool on;
};

static struct driver drivers[] = {
	{ "mdpy", "mdpy", { "mdpy-vga", "mdpy-xga", "mdpy-hd" }, { 2, 4, 8 } },
	{ "mbochs", "mbochs", { "mbochs-small", "mbochs-medium", "mbochs-large" }, { 4, 16, 64 } },
};

static struct mdev mdevs[MAX_MDEVS];
static int nmdevs;
static long target_ops, max_seconds, pool_mb, mdpy_count;
static int nthreads, history = 32;
static bool trace;
static atomic_bool stop, failed;
static uint64_t seed;
static struct timespec t0;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

struct map {
	void *addr;
	size_t len;
	int mdev;		/* -1: a dma-buf mapping */
	unsigned int generation;
	int prot;
};

struct worker {
	int id;
	struct rng rng;
	pthread_t thread;
	char (*hist)[112];
	unsigned long nhist;
	struct map maps[MAX_MAPS];
	int fds[MAX_FDS];	/* dma-bufs and migration data fds */
	uint8_t *buf;		/* BUF_SIZE, then a PROT_NONE guard page */
	uint8_t *guard;
	sigjmp_buf jb;
	volatile int guarded;
	int cur_mdev;
};

static struct worker *workers;

/* Where the time goes: per kind of operation, count and microseconds. */
enum { K_IOCTL, K_RW, K_MMAP, K_DISPI, K_EDID, K_FORK, K_RESET, K_REOPEN, K_FDS, K_MAPS, K_GET, K_NR };
static const char *const kind_names[] = {
	"ioctl", "rw", "mmap", "dispi", "edid", "fork", "reset", "reopen", "fds", "maps", "open",
};
static atomic_long kind_n[K_NR], kind_us[K_NR];

static void account(int kind, struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	atomic_fetch_add(&kind_n[kind], 1);
	atomic_fetch_add(&kind_us[kind], (b.tv_sec - a->tv_sec) * 1000000 + (b.tv_nsec - a->tv_nsec) / 1000);
	*a = b;
}
static __thread struct worker *self;

static double elapsed(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}

static void note(struct worker *w, const char *fmt, ...)
{
	char *line = w->hist[w->nhist++ % history];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(w->hist[0]), fmt, ap);
	va_end(ap);
	if (trace)
		fprintf(stderr, "T%d %s\n", w->id, line);
}

static void print_history(void)
{
	for (int i = 0; i < nthreads + 1; i++) {
		struct worker *w = &workers[i];
		unsigned long n = w->nhist < (unsigned long)history ? w->nhist : history;

		printf("# thread %d: last %lu of %lu operations:\n", i, n, w->nhist);
		for (unsigned long k = w->nhist - n; k < w->nhist; k++)
			printf("#   T%d.%lu %s\n", i, k, w->hist[k % history]);
	}
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&report_lock);
	if (!atomic_exchange(&failed, true)) {
		printf("# FAIL (seed 0x%llx, thread %d, %.1fs): ", (unsigned long long)seed,
		       self ? self->id : -1, elapsed());
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		print_history();
		fflush(stdout);
	}
	atomic_store(&stop, true);
	pthread_mutex_unlock(&report_lock);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (self && self->guarded)
		siglongjmp(self->jb, sig);
	/* Not in a guarded access: a real crash of the fuzzer. */
	printf("# FAIL: unexpected signal %d at %p (seed 0x%llx)\n", sig, si->si_addr,
	       (unsigned long long)seed);
	print_history();
	fflush(stdout);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ------------------------------------------------------------- the mdevs */

static int mdev_open_locked(struct mdev *m, struct rng *r)
{
	bool cdev = chance(r, 50);
	int ret = vfio_open(m->uuid, cdev, &m->h);

	if (ret) {
		vfio_close(&m->h);
		return ret;
	}
	return 0;
}

/* Reads the region table once, right after the mdev is created. */
static int mdev_probe(struct mdev *m)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	struct rng r = { 1 };
	int ret = mdev_open_locked(m, &r);

	if (ret)
		return ret;
	if (ioctl(m->h.device, VFIO_DEVICE_GET_INFO, &info)) {
		ret = -errno;
		goto out;
	}
	m->nregions = info.num_regions > MAX_REGIONS ? MAX_REGIONS : info.num_regions;
	for (int i = 0; i < m->nregions; i++) {
		if (region_info(m->h.device, i, &ri)) {
			m->r[i].size = 0;
			continue;
		}
		m->r[i].offset = ri.offset;
		m->r[i].size = ri.size;
		m->r[i].flags = ri.flags;
	}
out:
	vfio_close(&m->h);
	return ret;
}

static int mdev_make(struct mdev *m)
{
	int ret;

	gen_uuid(m->uuid);
	ret = mdev_create(m->driver, m->type, m->uuid);
	if (ret)
		return ret;
	ret = mdev_probe(m);
	if (ret)
		return ret;
	m->present = true;
	return 0;
}

/* A device fd of mdev i for one operation, or -1 (absent, being removed). */
static int dev_get(struct worker *w, int i)
{
	struct mdev *m = &mdevs[i];
	int fd = -1;

	pthread_mutex_lock(&m->lock);
	if (m->present && !m->removing) {
		if (m->h.device < 0 && mdev_open_locked(m, &w->rng))
			goto out;
		m->users++;
		fd = m->h.device;
	}
out:
	pthread_mutex_unlock(&m->lock);
	return fd;
}

static void dev_close_locked(struct mdev *m)
{
	vfio_close(&m->h);
	m->generation++;
	m->want_close = false;
}

static void dev_put(int i)
{
	struct mdev *m = &mdevs[i];

	pthread_mutex_lock(&m->lock);
	if (--m->users == 0 && (m->removing || m->want_close) && m->h.device >= 0)
		dev_close_locked(m);
	pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------- pointers */

static void *kernel_addr(struct rng *r)
{
	static const uintptr_t k[] = {
		0xffffffff81000000UL, 0xffff888000000000UL, 0xffffc90000000000UL,
		0xffffea0000000000UL, 0xfffffffffffff000UL, 0x8000000000000000UL,
	};

	return (void *)(k[below(r, ARRAY_SIZE(k))] + below(r, 4096));
}

enum ptr_kind { P_GOOD, P_MISALIGNED, P_NULL, P_UNMAPPED, P_KERNEL, P_STRADDLE, P_DEVMAP };
static const char *const ptr_names[] = {
	"good", "misaligned", "NULL", "unmapped", "kernel", "straddle", "devmap",
};

/*
 * A pointer for the kernel to read or write len bytes at. P_STRADDLE ends in
 * the guard page; P_DEVMAP points into one of this thread's device or
 * dma-buf mappings (the kernel faults on our own device while in our driver).
 */
static void *pick_ptr(struct worker *w, size_t len, enum ptr_kind *kind)
{
	struct rng *r = &w->rng;
	unsigned int k = below(r, 100);

	if (k < 55) {
		*kind = P_GOOD;
		return w->buf;
	}
	if (k < 63) {
		*kind = P_MISALIGNED;
		return w->buf + 1 + below(r, 7);
	}
	if (k < 70) {
		*kind = P_NULL;
		return NULL;
	}
	if (k < 77) {
		*kind = P_UNMAPPED;
		return w->guard + below(r, PAGE);
	}
	if (k < 84) {
		*kind = P_KERNEL;
		return kernel_addr(r);
	}
	if (k < 92 || !w->maps[0].addr) {
		*kind = P_STRADDLE;
		len = len > BUF_SIZE ? BUF_SIZE : len;
		return w->guard - (len ? below(r, len) + 1 : 0);
	}
	/*
	 * The kernel may access up to min(len, 8 KiB) bytes there: all inside
	 * the mapping, never in whatever the process has mapped after it.
	 */
	*kind = P_DEVMAP;
	len = len < 8192 ? len : 8192;
	for (int i = 0, s = below(r, MAX_MAPS); i < MAX_MAPS; i++) {
		struct map *mp = &w->maps[(i + s) % MAX_MAPS];

		if (mp->addr && (mp->prot & PROT_READ) && mp->len >= len)
			return (uint8_t *)mp->addr + below(r, mp->len - len + 1);
	}
	*kind = P_GOOD;
	return w->buf;
}

static bool bad_ptr(enum ptr_kind k)
{
	return k == P_NULL || k == P_UNMAPPED || k == P_KERNEL;
}

/* ------------------------------------------------------------ operations */

static const struct {
	unsigned long req;
	const char *name;
	size_t minsz;
} ioctls[] = {
	{ VFIO_DEVICE_GET_INFO, "GET_INFO", sizeof(struct vfio_device_info) },
	{ VFIO_DEVICE_GET_REGION_INFO, "GET_REGION_INFO", sizeof(struct vfio_region_info) },
	{ VFIO_DEVICE_GET_IRQ_INFO, "GET_IRQ_INFO", sizeof(struct vfio_irq_info) },
	{ VFIO_DEVICE_SET_IRQS, "SET_IRQS", sizeof(struct vfio_irq_set) },
	{ VFIO_DEVICE_RESET, "RESET", 0 },
	{ VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, "GET_PCI_HOT_RESET_INFO", 16 },
	{ VFIO_DEVICE_PCI_HOT_RESET, "PCI_HOT_RESET", 16 },
	{ VFIO_DEVICE_QUERY_GFX_PLANE, "QUERY_GFX_PLANE", sizeof(struct vfio_device_gfx_plane_info) },
	{ VFIO_DEVICE_GET_GFX_DMABUF, "GET_GFX_DMABUF", 4 },
	{ VFIO_DEVICE_IOEVENTFD, "IOEVENTFD", sizeof(struct vfio_device_ioeventfd) },
	{ VFIO_DEVICE_FEATURE, "FEATURE", sizeof(struct vfio_device_feature) },
	{ VFIO_DEVICE_BIND_IOMMUFD, "BIND_IOMMUFD", sizeof(struct vfio_device_bind_iommufd) },
	{ VFIO_DEVICE_ATTACH_IOMMUFD_PT, "ATTACH_IOMMUFD_PT", sizeof(struct vfio_device_attach_iommufd_pt) },
	{ VFIO_DEVICE_DETACH_IOMMUFD_PT, "DETACH_IOMMUFD_PT", sizeof(struct vfio_device_detach_iommufd_pt) },
};

/* The ioctls that must read their argument: a bad pointer cannot succeed. */
static bool reads_arg(unsigned long req)
{
	return req == VFIO_DEVICE_GET_INFO || req == VFIO_DEVICE_GET_REGION_INFO ||
	       req == VFIO_DEVICE_GET_IRQ_INFO || req == VFIO_DEVICE_SET_IRQS ||
	       req == VFIO_DEVICE_QUERY_GFX_PLANE || req == VFIO_DEVICE_GET_GFX_DMABUF ||
	       req == VFIO_DEVICE_FEATURE;
}

static void keep_fd(struct worker *w, int fd)
{
	int slot = below(&w->rng, MAX_FDS);

	if (fd < 0)
		return;
	if (w->fds[slot] >= 0)
		close(w->fds[slot]);
	w->fds[slot] = fd;
}

static const uint32_t features[] = {
	VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
	VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
	VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
	VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
	VFIO_DEVICE_FEATURE_BUS_MASTER, VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, 11, 12, 13, 14, 0xffff,
};

/* Fills a VFIO_DEVICE_FEATURE argument: mostly plausible, sometimes not. */
static size_t fill_feature(struct worker *w, uint8_t *b)
{
	struct rng *r = &w->rng;
	struct vfio_device_feature *f = (void *)b;
	uint32_t feat = features[below(r, ARRAY_SIZE(features))];
	uint32_t dir = (uint32_t[]){ VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET,
				     VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET,
				     VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET,
				     VFIO_DEVICE_FEATURE_PROBE, 0,
				     (uint32_t)rnd(r) & ~0xffffu }[below(r, 7)];
	size_t len = sizeof(*f) + 64;

	f->flags = feat | dir;
	if (feat == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
		struct vfio_device_feature_mig_state *s = (void *)f->data;

		s->device_state = chance(r, 80) ? below(r, 8) : (uint32_t)rnd(r);
		s->data_fd = -1;
		len = sizeof(*f) + sizeof(*s);
	} else if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
		struct vfio_device_feature_dma_logging_control *c = (void *)f->data;
		struct vfio_device_feature_dma_logging_range *rg = (void *)(b + 256);
		enum ptr_kind k;

		c->page_size = edgy(r, 4096);
		c->num_ranges = chance(r, 70) ? below(r, 4) : (uint32_t)edgy(r, 256);
		for (int i = 0; i < 4; i++) {
			rg[i].iova = edgy(r, 1ULL << 32);
			rg[i].length = edgy(r, 1ULL << 20);
		}
		c->ranges = chance(r, 70) ? (uintptr_t)rg : (uintptr_t)pick_ptr(w, 64, &k);
		len = sizeof(*f) + sizeof(*c);
	} else if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) {
		struct vfio_device_feature_dma_logging_report *rep = (void *)f->data;
		enum ptr_kind k;

		rep->iova = edgy(r, 1ULL << 32);
		rep->length = edgy(r, 1ULL << 20);
		rep->page_size = edgy(r, 4096);
		rep->bitmap = chance(r, 50) ? (uintptr_t)(b + 512) : (uintptr_t)pick_ptr(w, 64, &k);
		len = sizeof(*f) + sizeof(*rep);
	}
	return chance(r, 70) ? len : edgy(r, len);
}

static void op_ioctl(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	uint8_t *b = w->buf;
	unsigned int which = below(r, ARRAY_SIZE(ioctls) + 2);
	unsigned long req;
	const char *name;
	enum ptr_kind kind = P_GOOD;
	void *arg;
	uint32_t argsz;
	long ret;

	for (int k = 0; k < 1024; k += 8)
		*(uint64_t *)(b + k) = chance(r, 50) ? 0 : rnd(r);
	if (which >= ARRAY_SIZE(ioctls)) {
		/* a random request number, of vfio's type or any */
		req = which == ARRAY_SIZE(ioctls) ? _IO(VFIO_TYPE, below(r, 64)) : (uint32_t)rnd(r);
		name = "random";
		argsz = edgy(r, 64);
	} else {
		req = ioctls[which].req;
		name = ioctls[which].name;
		argsz = chance(r, 60) ? ioctls[which].minsz + below(r, 2) * 8 : edgy(r, ioctls[which].minsz);
	}
	if (req == VFIO_DEVICE_FEATURE)
		argsz = fill_feature(w, b);
	((uint32_t *)b)[0] = argsz;
	if (req == VFIO_DEVICE_GET_REGION_INFO || req == VFIO_DEVICE_GET_IRQ_INFO ||
	    req == VFIO_DEVICE_SET_IRQS) {
		/* flags, index: mostly small */
		if (chance(r, 70))
			((uint32_t *)b)[1] = chance(r, 50) ? 0 : below(r, 16);
		((uint32_t *)b)[2] = chance(r, 80) ? below(r, 20) : (uint32_t)rnd(r);
	}
	if (req == VFIO_DEVICE_QUERY_GFX_PLANE && chance(r, 80)) {
		((uint32_t *)b)[1] = (uint32_t[]){ 1, 2, 4, 3, 5, 6, 7, 0 }[below(r, 8)];
		((uint32_t *)b)[2] = below(r, 4);
	}
	if (req == VFIO_DEVICE_GET_GFX_DMABUF && chance(r, 80))
		((uint32_t *)b)[0] = below(r, 8);
	if (req == VFIO_DEVICE_BIND_IOMMUFD || req == VFIO_DEVICE_ATTACH_IOMMUFD_PT)
		((uint32_t *)b)[2] = below(r, 8);
	arg = b;
	/*
	 * A migration state change returns a data fd in the argument: only in
	 * our own buffer can it be read back reliably (and closed later).
	 */
	if (req != VFIO_DEVICE_RESET && chance(r, 30) &&
	    !(req == VFIO_DEVICE_FEATURE && (((uint32_t *)b)[1] & VFIO_DEVICE_FEATURE_SET))) {
		arg = pick_ptr(w, argsz, &kind);
		if (kind == P_GOOD || kind == P_MISALIGNED)
			memmove(arg, b, argsz < 256 ? argsz : 256);
		else if (kind == P_STRADDLE)
			memmove(arg, b, (size_t)(w->guard - (uint8_t *)arg) < 256 ?
				(size_t)(w->guard - (uint8_t *)arg) : 256);
	}
	note(w, "ioctl mdev%d %s(0x%lx) argsz %u flags 0x%x index %u arg %s %p", i, name, req,
	     argsz, ((uint32_t *)b)[1], ((uint32_t *)b)[2], ptr_names[kind], arg);
	ret = ioctl(fd, req, arg);
	if (ret >= 0 && bad_ptr(kind) && reads_arg(req))
		fail("%s with a %s argument pointer %p succeeded (%ld)", name, ptr_names[kind], arg, ret);
	if (ret >= 0 && req == VFIO_DEVICE_GET_GFX_DMABUF)
		keep_fd(w, ret);
	if (ret == 0 && req == VFIO_DEVICE_FEATURE && arg == b) {
		struct vfio_device_feature *f = (void *)b;
		struct vfio_device_feature_mig_state *s = (void *)f->data;

		if ((f->flags & VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
		    (f->flags & VFIO_DEVICE_FEATURE_SET) && s->data_fd >= 0)
			keep_fd(w, s->data_fd);
	}
	if (ret == 0 && req == VFIO_DEVICE_QUERY_GFX_PLANE && arg == b) {
		struct vfio_device_gfx_plane_info *p = (void *)b;
		uint64_t memsize = mdevs[i].memsize;

		if (!(p->flags & VFIO_GFX_PLANE_TYPE_PROBE) && p->size &&
		    (p->size > memsize || (uint64_t)p->stride * p->height > p->size))
			fail("QUERY_GFX_PLANE: plane %ux%u stride %u size %llu does not fit %llu bytes",
			     p->width, p->height, p->stride, (unsigned long long)p->size,
			     (unsigned long long)memsize);
	}
}

/* read/write at random offsets and sizes in (and across the end of) a region */
static void op_rw(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	struct mdev *m = &mdevs[i];
	struct region *rg = &m->r[below(r, m->nregions ? m->nregions : 1)];
	bool write = chance(r, 40);
	uint64_t len, off, from_p;
	enum ptr_kind kind;
	bool vec;
	void *p;
	ssize_t n;

	switch (below(r, 5)) {
	case 0: len = (uint64_t[]){ 1, 2, 4, 8 }[below(r, 4)]; break;
	case 1: len = below(r, 64) + 1; break;
	case 2: len = below(r, 65536) + 1; break;
	case 3: len = edgy(r, rg->size); break;
	default: len = (uint64_t[]){ 3, 6, 7, 16, 4095, 4096, 4097, 1 << 30, SIZE_MAX / 2 }[below(r, 9)];
	}
	switch (below(r, 6)) {
	case 0: off = rg->offset + below(r, rg->size + 1); break;
	case 1: off = rg->offset + rg->size - below(r, 9); break;
	case 2: off = rg->offset + (below(r, rg->size / 4 + 1) & ~3ULL); break;
	case 3: off = rg->offset + edgy(r, rg->size); break;
	case 4: off = edgy(r, 1ULL << 40); break;
	default: off = rg->offset + (below(r, rg->size / 2 + 1) & ~1ULL); break;
	}
	p = pick_ptr(w, len, &kind);
	if (len > BUF_SIZE && (kind == P_GOOD || kind == P_MISALIGNED) && chance(r, 70))
		len = BUF_SIZE - 8;
	if (kind == P_DEVMAP && len > 4096)
		len = 4096;	/* may run past the mapping: the kernel must fault cleanly */
	if (write && kind == P_GOOD)
		for (size_t k = 0; k < 64; k += 8)
			*(uint64_t *)(w->buf + k) = rnd(r);
	note(w, "%s mdev%d off 0x%llx len 0x%llx buf %s %p", write ? "pwrite" : "pread", i,
	     (unsigned long long)off, (unsigned long long)len, ptr_names[kind], p);
	vec = chance(r, 10);
	/* bytes that must come from (or go to) p first: a bad p cannot give them */
	from_p = vec ? len / 2 : len;
	w->guarded = 1;
	if (!sigsetjmp(w->jb, 1)) {
		if (vec) {
			struct iovec iov[2] = { { p, len / 2 }, { w->buf, len - len / 2 } };

			n = write ? pwritev(fd, iov, 2, off) : preadv(fd, iov, 2, off);
		} else {
			n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);
		}
		w->guarded = 0;
		if (n > 0 && (uint64_t)n > len)
			fail("%s returned %zd for %llu bytes", write ? "pwrite" : "pread", n,
			     (unsigned long long)len);
		if (n > 0 && (kind == P_KERNEL || kind == P_NULL) && from_p)
			fail("%s%s through a %s buffer %p (%llu bytes of %llu) transferred %zd bytes",
			     write ? "pwrite" : "pread", vec ? "v" : "", ptr_names[kind], p,
			     (unsigned long long)from_p, (unsigned long long)len, n);
	}
	w->guarded = 0;
}

/* The bochs DISPI registers and the EDID region: hostile sequences. */
static void dispi_write(int fd, struct mdev *m, unsigned int idx, uint16_t v)
{
	pwrite(fd, &v, 2, m->r[VFIO_PCI_BAR2_REGION_INDEX].offset + DISPI_BASE + idx * 2);
}

static void op_dispi(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	struct mdev *m = &mdevs[i];
	uint64_t bar2 = m->r[VFIO_PCI_BAR2_REGION_INDEX].offset;
	int n = below(r, 12) + 1;

	if (chance(r, 40)) {
		/* a plausible mode, then sometimes a plane and its dma-buf */
		uint16_t xres = chance(r, 70) ? (uint16_t[]){ 640, 800, 1024, 1280, 64, 63 }[below(r, 6)]
					      : rnd(r);
		uint16_t yres = chance(r, 70) ? (uint16_t[]){ 480, 600, 768, 1024, 64, 2 }[below(r, 6)]
					      : rnd(r);

		note(w, "dispi mdev%d mode %ux%u", i, xres, yres);
		dispi_write(fd, m, DISPI_ENABLE, 0);
		dispi_write(fd, m, DISPI_XRES, xres);
		dispi_write(fd, m, DISPI_YRES, yres);
		dispi_write(fd, m, DISPI_BPP, chance(r, 85) ? 32 : below(r, 40));
		dispi_write(fd, m, DISPI_VIRT_WIDTH, chance(r, 70) ? xres : rnd(r));
		dispi_write(fd, m, DISPI_X_OFFSET, chance(r, 70) ? 0 : rnd(r));
		dispi_write(fd, m, DISPI_Y_OFFSET, chance(r, 70) ? 0 : rnd(r));
		dispi_write(fd, m, DISPI_ENABLE, chance(r, 85) ? DISPI_ENABLED | DISPI_LFB_ENABLED : rnd(r));
		if (chance(r, 60)) {
			struct vfio_device_gfx_plane_info p = {
				.argsz = sizeof(p), .flags = VFIO_GFX_PLANE_TYPE_DMABUF,
				.drm_plane_type = PLANE_PRIMARY,
			};

			if (!ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p) && p.size && chance(r, 70)) {
				uint32_t id = p.dmabuf_id;
				int dfd = ioctl(fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);

				note(w, "dispi mdev%d plane %ux%u id %u -> dma-buf %d", i, p.width,
				     p.height, id, dfd);
				if (p.size > m->memsize)
					fail("plane size %llu beyond VRAM %llu",
					     (unsigned long long)p.size, (unsigned long long)m->memsize);
				keep_fd(w, dfd);
			}
		}
		return;
	}
	while (n--) {
		uint64_t off = bar2 + (chance(r, 80) ? DISPI_BASE + below(r, 0x20) : below(r, 0x1001));
		uint64_t v = rnd(r);
		size_t len = (size_t[]){ 2, 2, 2, 1, 4, 8, 3 }[below(r, 7)];

		note(w, "bar2 mdev%d %s off 0x%llx len %zu", i, chance(r, 50) ? "write" : "read",
		     (unsigned long long)(off - bar2), len);
		if (chance(r, 60))
			pwrite(fd, &v, len, off);
		else
			pread(fd, &v, len, off);
	}
}

static void op_edid(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	struct mdev *m = &mdevs[i];
	struct region *e = &m->r[EDID_INDEX];
	int n = below(r, 8) + 1;

	if (m->nregions <= EDID_INDEX || !e->size)
		return;
	while (n--) {
		uint32_t reg = (uint32_t[]){ 0, 4, 8, 12, 16, 20, 24, 0x800, 0xbfc, 0xffc }[below(r, 10)];
		uint8_t v[16];
		size_t len = chance(r, 75) ? 4 : (size_t[]){ 1, 2, 8, 16, 3 }[below(r, 5)];
		bool write = chance(r, 60);

		for (size_t k = 0; k < sizeof(v); k++)
			v[k] = rnd(r);
		if (reg == 8 && chance(r, 70))	/* edid_size */
			*(uint32_t *)v = (uint32_t[]){ 128, 256, 0, 0x400, 0x401, 0xffffffff }[below(r, 6)];
		if (reg == 20 && chance(r, 70))	/* link_state */
			*(uint32_t *)v = below(r, 4);
		if (reg >= 0x800 && chance(r, 50))
			reg = 0x800 + (below(r, 0x800) & ~3u);
		note(w, "edid mdev%d %s reg 0x%x len %zu val 0x%x", i, write ? "write" : "read", reg,
		     len, *(uint32_t *)v);
		if (write)
			pwrite(fd, v, len, e->offset + reg);
		else
			pread(fd, v, len, e->offset + reg);
	}
}

static void unmap_slot(struct worker *w, struct map *mp)
{
	(void)w;
	if (mp->addr)
		munmap(mp->addr, mp->len);
	mp->addr = NULL;
}

/* Touches a few random words of a mapping: SIGBUS/SIGSEGV are answers. */
static void touch(struct worker *w, struct map *mp)
{
	struct rng *r = &w->rng;
	int sig;

	w->guarded = 1;
	sig = sigsetjmp(w->jb, 1);
	if (!sig) {
		for (int k = 0; k < 4; k++) {
			volatile uint32_t *p = (uint32_t *)((uint8_t *)mp->addr + (below(r, mp->len) & ~3UL));

			if (chance(r, 50))
				*p = rnd(r);
			else
				(void)*p;
		}
	}
	w->guarded = 0;
	note(w, "touch %p len 0x%zx prot %d: %s", mp->addr, mp->len, mp->prot,
	     sig ? strsignal(sig) : "ok");
}

static void op_mmap(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	struct mdev *m = &mdevs[i];
	struct map *mp = &w->maps[below(r, MAX_MAPS)];
	int ridx = chance(r, 70) ? VFIO_PCI_BAR0_REGION_INDEX : below(r, m->nregions + 1);
	struct region *rg = &m->r[ridx < m->nregions ? ridx : 0];
	int prot = (int[]){ PROT_READ | PROT_WRITE, PROT_READ, PROT_WRITE, PROT_NONE,
			    PROT_READ | PROT_WRITE | PROT_EXEC }[below(r, 5)];
	int flags = chance(r, 85) ? MAP_SHARED : MAP_PRIVATE;
	uint64_t off, len;
	void *a;

	unmap_slot(w, mp);
	off = rg->offset + (chance(r, 70) ? 0 : (chance(r, 80) ? below(r, rg->size / PAGE + 2) * PAGE
								 : edgy(r, rg->size)));
	len = chance(r, 50) ? rg->size : (chance(r, 70) ? (below(r, 16) + 1) * PAGE : edgy(r, rg->size));
	if (len > rg->size + 16 * PAGE && chance(r, 80))
		len = rg->size;
	if (!len)
		len = PAGE;
	a = mmap(NULL, len, prot, flags, fd, off);
	note(w, "mmap mdev%d region %d off 0x%llx len 0x%llx prot %d %s -> %p", i, ridx,
	     (unsigned long long)off, (unsigned long long)len, prot,
	     flags == MAP_SHARED ? "shared" : "private", a);
	if (a == MAP_FAILED)
		return;
	if (ridx < m->nregions && off >= rg->offset &&
	    ((off - rg->offset + len + PAGE - 1) & ~(PAGE - 1)) > ((rg->size + PAGE - 1) & ~(PAGE - 1)) &&
	    ridx == VFIO_PCI_BAR0_REGION_INDEX)
		fail("mmap of 0x%llx bytes at region %d offset 0x%llx succeeded past its end (size 0x%llx)",
		     (unsigned long long)len, ridx, (unsigned long long)(off - rg->offset),
		     (unsigned long long)rg->size);
	mp->addr = a;
	mp->len = len;
	mp->mdev = i;
	mp->prot = prot;
	mp->generation = m->generation;
	if (prot != PROT_NONE)
		touch(w, mp);
}

static void op_mapping_games(struct worker *w)
{
	struct rng *r = &w->rng;
	struct map *mp = &w->maps[below(r, MAX_MAPS)];
	size_t pages;

	if (!mp->addr)
		return;
	pages = (mp->len + PAGE - 1) / PAGE;
	switch (below(r, 5)) {
	case 0: {	/* munmap a random part */
		size_t first = below(r, pages), n = below(r, pages - first) + 1;

		note(w, "munmap %p pages %zu+%zu of %zu", mp->addr, first, n, pages);
		munmap((uint8_t *)mp->addr + first * PAGE, n * PAGE);
		if (first == 0 && n == pages) {
			mp->addr = NULL;
		} else if (first == 0) {
			mp->addr = (uint8_t *)mp->addr + n * PAGE;
			mp->len = (pages - n) * PAGE;
		} else {
			/*
			 * Keep the head; the tail goes too (a mapping nobody
			 * tracks would keep the device open for good).
			 */
			if (first + n < pages)
				munmap((uint8_t *)mp->addr + (first + n) * PAGE,
				       (pages - first - n) * PAGE);
			mp->len = first * PAGE;
		}
		break;
	}
	case 1: {	/* mremap: grow, shrink, move */
		size_t nlen = chance(r, 50) ? (below(r, pages * 2) + 1) * PAGE : edgy(r, mp->len);
		int flags = chance(r, 60) ? MREMAP_MAYMOVE : 0;
		void *a = mremap(mp->addr, mp->len, nlen, flags);

		note(w, "mremap %p 0x%zx -> 0x%zx flags %d -> %p", mp->addr, mp->len, nlen, flags, a);
		if (a != MAP_FAILED) {
			mp->addr = a;
			mp->len = nlen;
			if (mp->prot != PROT_NONE)
				touch(w, mp);
		}
		break;
	}
	case 2: {	/* mprotect */
		int prot = (int[]){ PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_EXEC,
				    PROT_READ | PROT_WRITE | PROT_EXEC }[below(r, 5)];
		int ret = mprotect(mp->addr, mp->len, prot);

		note(w, "mprotect %p 0x%zx %d -> %d", mp->addr, mp->len, prot, ret);
		if (!ret)
			mp->prot = prot;
		if (mp->prot != PROT_NONE)
			touch(w, mp);
		break;
	}
	case 3: {	/* madvise */
		int adv = (int[]){ MADV_DONTNEED, MADV_WILLNEED, MADV_DONTFORK, MADV_DOFORK,
				   MADV_PAGEOUT, MADV_COLD }[below(r, 6)];

		note(w, "madvise %p 0x%zx %d -> %d", mp->addr, mp->len, adv,
		     madvise(mp->addr, mp->len, adv));
		break;
	}
	default:
		touch(w, mp);
	}
}

/* fork: the child touches the inherited mappings, uses the fds, exits. */
static void op_fork(struct worker *w, int i, int fd)
{
	struct rng *r = &w->rng;
	uint64_t cseed = rnd(r);
	pid_t pid;
	int status;

	note(w, "fork (mdev%d fd %d)", i, fd);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct rng cr = { cseed | 1 };

		self->rng = cr;
		for (int k = 0; k < MAX_MAPS; k++)
			if (w->maps[k].addr && w->maps[k].prot != PROT_NONE && chance(&cr, 50)) {
				w->guarded = 1;
				if (!sigsetjmp(w->jb, 1))
					*(volatile uint32_t *)((uint8_t *)w->maps[k].addr +
							       (below(&cr, w->maps[k].len) & ~3UL)) = 1;
				w->guarded = 0;
			}
		if (chance(&cr, 50)) {
			uint32_t v;

			pread(fd, &v, 4, mdevs[i].r[VFIO_PCI_CONFIG_REGION_INDEX].offset);
		}
		if (chance(&cr, 30))
			ioctl(fd, VFIO_DEVICE_RESET);
		for (int k = 0; k < MAX_FDS; k++)
			if (w->fds[k] >= 0 && chance(&cr, 30))
				close(w->fds[k]);
		_exit(0);
	}
	for (int t = 0; t < 5000; t++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail("a forked child (pid %d) did not finish in 5 s", pid);
}

/* dma-buf and migration fds kept by this thread (past device close too). */
static void op_fds(struct worker *w)
{
	struct rng *r = &w->rng;
	int slot = below(r, MAX_FDS);
	int fd = w->fds[slot];
	struct stat st;
	off_t end;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	switch (below(r, 6)) {
	case 0:
		note(w, "close kept fd %d", fd);
		close(fd);
		w->fds[slot] = -1;
		break;
	case 1: {	/* mmap and touch a dma-buf */
		struct map *mp = &w->maps[below(r, MAX_MAPS)];
		size_t len = end > 0 && chance(r, 70) ? (size_t)end : edgy(r, end > 0 ? end : PAGE);
		off_t off = chance(r, 80) ? 0 : below(r, 8) * PAGE;
		int prot = chance(r, 70) ? PROT_READ | PROT_WRITE : PROT_READ;
		void *a;

		unmap_slot(w, mp);
		if (!len)
			len = PAGE;
		a = mmap(NULL, len, prot, MAP_SHARED, fd, off);
		note(w, "mmap kept fd %d (size %lld) off 0x%llx len 0x%zx -> %p", fd, (long long)end,
		     (long long)off, len, a);
		if (a == MAP_FAILED)
			break;
		if (end > 0 && off + len > (size_t)((end + PAGE - 1) & ~(PAGE - 1)))
			fail("dma-buf mmap of 0x%zx at 0x%llx past its size %lld succeeded", len,
			     (long long)off, (long long)end);
		*mp = (struct map){ a, len, -1, 0, prot };
		touch(w, mp);
		break;
	}
	case 2: {	/* sync ioctls, names */
		struct dma_buf_sync s = { .flags = chance(r, 70) ?
			(uint64_t[]){ DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW,
				      DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ }[below(r, 3)] : rnd(r) };

		note(w, "dma-buf sync fd %d flags 0x%llx -> %d", fd, (unsigned long long)s.flags,
		     ioctl(fd, DMA_BUF_IOCTL_SYNC, &s));
		if (chance(r, 20))
			ioctl(fd, DMA_BUF_SET_NAME_B, "fuzz");
		break;
	}
	default: {	/* read/write: migration data streams, dma-buf read() */
		size_t len = chance(r, 50) ? below(r, 4096) + 1 : edgy(r, 65536);
		enum ptr_kind kind;
		void *p = pick_ptr(w, len, &kind);
		ssize_t n;

		if (len > BUF_SIZE && !bad_ptr(kind))
			len = BUF_SIZE;
		if (kind == P_DEVMAP && len > 4096)
			len = 4096;
		for (size_t k = 0; k < 64; k += 8)
			*(uint64_t *)(w->buf + k) = rnd(r);
		w->guarded = 1;
		if (!sigsetjmp(w->jb, 1)) {
			bool wr = chance(r, 40);

			n = wr ? write(fd, p, len) : read(fd, p, len);
			w->guarded = 0;
			note(w, "%s kept fd %d len 0x%zx buf %s -> %zd", wr ? "write" : "read", fd, len,
			     ptr_names[kind], n);
			if (n > 0 && (size_t)n > len)
				fail("read/write on a kept fd returned %zd for %zu bytes", n, len);
			if (n > 0 && (kind == P_KERNEL || kind == P_NULL))
				fail("read/write on a kept fd through a %s buffer moved %zd bytes",
				     ptr_names[kind], n);
		}
		w->guarded = 0;
		(void)fstat(fd, &st);
	}
	}
}

/* close and reopen (maybe through the other path) */
static void op_reopen(struct worker *w, int i)
{
	struct mdev *m = &mdevs[i];

	pthread_mutex_lock(&m->lock);
	note(w, "close/reopen mdev%d (users %d)", i, m->users);
	if (m->users == 0 && m->h.device >= 0)
		dev_close_locked(m);
	else
		m->want_close = true;
	pthread_mutex_unlock(&m->lock);
}

static void drop_maps_of(struct worker *w, int i, bool all)
{
	for (int k = 0; k < MAX_MAPS; k++)
		if (w->maps[k].addr && w->maps[k].mdev == i &&
		    (all || mdevs[i].removing || w->maps[k].generation != mdevs[i].generation ||
		     chance(&w->rng, 2)))
			unmap_slot(w, &w->maps[k]);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	self = w;
	while (!atomic_load(&stop)) {
		int i = below(&w->rng, nmdevs);
		struct mdev *m = &mdevs[i];
		unsigned int op = below(&w->rng, 100);
		int fd;

		/* Mappings keep the device open: give them up when it is being removed. */
		for (int k = 0; k < nmdevs; k++)
			if (mdevs[k].removing)
				drop_maps_of(w, k, true);
		struct timespec ts;
		int kind;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (op >= 95) {
			op_fds(w);
			account(K_FDS, &ts);
			continue;
		}
		if (op >= 90) {
			op_mapping_games(w);
			account(K_MAPS, &ts);
			continue;
		}
		fd = dev_get(w, i);
		account(K_GET, &ts);
		if (fd < 0) {
			/* a mapping of an earlier open may be what keeps it from opening */
			drop_maps_of(w, i, false);
			sched_yield();
			continue;
		}
		/* mdpy has no DISPI or EDID: those shares go to ioctls and I/O */
		if (strcmp(m->driver, "mbochs") && op >= 65 && op < 80)
			op = op < 72 ? 0 : 30;
		if (op < 30)
			op_ioctl(w, i, fd), kind = K_IOCTL;
		else if (op < 55)
			op_rw(w, i, fd), kind = K_RW;
		else if (op < 65)
			op_mmap(w, i, fd), kind = K_MMAP;
		else if (op < 75)
			op_dispi(w, i, fd), kind = K_DISPI;
		else if (op < 80)
			op_edid(w, i, fd), kind = K_EDID;
		else if (op < 81)
			op_fork(w, i, fd), kind = K_FORK;
		else if (op < 84) {
			note(w, "RESET mdev%d -> %d", i, ioctl(fd, VFIO_DEVICE_RESET));
			kind = K_RESET;
		} else if (op < 86) {
			op_reopen(w, i), kind = K_REOPEN;
		} else {
			op_rw(w, i, fd), kind = K_RW;
		}
		dev_put(i);
		account(kind, &ts);
		if (atomic_fetch_add(&drivers[m->drv].ops, 1) + 1 >= target_ops) {
			bool all = true;

			for (size_t d = 0; d < ARRAY_SIZE(drivers); d++)
				if (drivers[d].on && atomic_load(&drivers[d].ops) < target_ops)
					all = false;
			if (all)
				atomic_store(&stop, true);
		}
		if (elapsed() > max_seconds) {
			fail("time limit of %ld s reached", max_seconds);
			break;
		}
	}
	/* Nothing of ours may keep a device open now: the remover may wait on it. */
	for (int k = 0; k < MAX_MAPS; k++)
		unmap_slot(w, &w->maps[k]);
	for (int k = 0; k < MAX_FDS; k++)
		if (w->fds[k] >= 0)
			close(w->fds[k]), w->fds[k] = -1;
	return NULL;
}

static int delete_module(const char *name, int flags)
{
	return syscall(__NR_delete_module, name, flags);
}

/*
 * The remover thread: removes a random mdev while the workers use it (the
 * kernel waits for its fds to close), creates a new one of its type; tries
 * to unload a module while one of its devices is open (must fail).
 */
static void *remover_main(void *arg)
{
	struct worker *w = arg;
	struct rng *r = &w->rng;

	self = w;
	while (!atomic_load(&stop)) {
		int i = below(r, nmdevs);
		struct mdev *m = &mdevs[i];

		usleep(20000 + below(r, 200000));
		if (atomic_load(&stop))
			break;
		if (chance(r, 30)) {
			int fd = dev_get(w, i);
			int ret;

			if (fd < 0)
				continue;
			ret = delete_module(drivers[m->drv].module, O_NONBLOCK);
			note(w, "delete_module(%s) with mdev%d open -> %d %s", drivers[m->drv].module, i,
			     ret, ret ? strerror(errno) : "");
			if (!ret)
				fail("module %s unloaded while mdev%d was open", drivers[m->drv].module, i);
			else if (errno != EBUSY && errno != EAGAIN)
				fail("delete_module(%s) in use: %s, want EBUSY or EAGAIN",
				     drivers[m->drv].module, strerror(errno));
			dev_put(i);
			continue;
		}
		pthread_mutex_lock(&m->lock);
		m->removing = true;
		if (m->users == 0 && m->h.device >= 0)
			dev_close_locked(m);
		note(w, "remove mdev%d %s (%d users)", i, m->uuid, m->users);
		pthread_mutex_unlock(&m->lock);
		/* Blocks until the workers closed it: they see "removing". */
		int ret = mdev_remove(m->uuid);

		note(w, "remove mdev%d -> %d", i, ret);
		if (ret)
			fail("removing mdev%d (%s %s): %s", i, m->type, m->uuid, strerror(-ret));
		pthread_mutex_lock(&m->lock);
		m->present = false;
		ret = mdev_make(m);
		note(w, "create mdev%d %s %s -> %d", i, m->type, m->uuid, ret);
		if (ret)
			fail("re-creating mdev%d (%s): %s", i, m->type, strerror(-ret));
		m->removing = false;
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

static long available(const char *driver, const char *type)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MDEV_CLASS "/%s/mdev_supported_types/%s/available_instances",
		 driver, type);
	return sysfs_read_long(path);
}

static long envl(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static void setup_workers(int n)
{
	workers = calloc(n, sizeof(*workers));
	for (int i = 0; i < n; i++) {
		struct worker *w = &workers[i];
		uint8_t *b = mmap(NULL, BUF_SIZE + PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		w->id = i;
		w->rng.s = (seed ^ (0x9E3779B97F4A7C15ULL * (i + 1))) | 1;
		w->hist = calloc(history, sizeof(*w->hist));
		w->buf = b;
		w->guard = b + BUF_SIZE;
		mprotect(w->guard, PAGE, PROT_NONE);
		for (int k = 0; k < MAX_FDS; k++)
			w->fds[k] = -1;
	}
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static bool want_driver(const char *name)
{
	const char *list = getenv("FUZZ_DRIVERS") ?: "mdpy mbochs";

	return strstr(list, name) != NULL;
}

/* Every instance available again: mdpy's count, mbochs' pool (per type). */
static bool pool_full(void)
{
	bool ok = true;

	for (int t = 0; t < 3 && drivers[0].on; t++) {
		long got = available("mdpy", drivers[0].types[t]);

		if (got != mdpy_count) {
			printf("# mdpy: %s available_instances %ld, want %ld (count)\n",
			       drivers[0].types[t], got, mdpy_count);
			ok = false;
		}
	}
	for (int t = 0; t < 3 && drivers[1].on; t++) {
		long want = pool_mb / drivers[1].type_mb[t], got = available("mbochs", drivers[1].types[t]);

		if (got != want) {
			printf("# mbochs pool: %s available_instances %ld, want %ld (pool %ld MB)\n",
			       drivers[1].types[t], got, want, pool_mb);
			ok = false;
		}
	}
	return ok;
}

static int fuzz(void)
{
	int ret = 0;

	/* mdpy: one of each type (count 4 allows them); mbochs: small, medium, small */
	if (drivers[0].on)
		for (int t = 0; t < 3 && t < mdpy_count; t++)
			mdevs[nmdevs++] = (struct mdev){ "mdpy", drivers[0].types[t], .drv = 0,
							 .memsize = drivers[0].type_mb[t] * MB };
	if (drivers[1].on) {
		int ts[] = { 0, 1, 0 };

		for (int t = 0; t < 3; t++)
			mdevs[nmdevs++] = (struct mdev){ "mbochs", drivers[1].types[ts[t]], .drv = 1,
							 .memsize = drivers[1].type_mb[ts[t]] * MB };
	}
	for (int i = 0; i < nmdevs; i++) {
		pthread_mutex_init(&mdevs[i].lock, NULL);
		mdevs[i].h.device = mdevs[i].h.iommufd = mdevs[i].h.group = mdevs[i].h.container = -1;
		ret = mdev_make(&mdevs[i]);
		if (ret) {
			printf("# FAIL: creating mdev%d (%s): %s\n", i, mdevs[i].type, strerror(-ret));
			return 1;
		}
		printf("# mdev%d: %s %s, %d regions\n", i, mdevs[i].type, mdevs[i].uuid,
		       mdevs[i].nregions);
	}
	for (int t = 0; t < nthreads; t++)
		pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
	pthread_create(&workers[nthreads].thread, NULL, remover_main, &workers[nthreads]);
	while (!atomic_load(&stop)) {
		sleep(1);
		if ((long)elapsed() % 15 == 0)
			printf("# %.0fs: mdpy %ld ops, mbochs %ld ops\n", elapsed(),
			       atomic_load(&drivers[0].ops), atomic_load(&drivers[1].ops));
		fflush(stdout);
	}
	for (int t = 0; t <= nthreads; t++)
		pthread_join(workers[t].thread, NULL);
	self = &workers[nthreads];
	for (int t = 0; t <= nthreads; t++)
		for (int k = 0; k < MAX_FDS; k++)
			if (workers[t].fds[k] >= 0)
				close(workers[t].fds[k]);
	/* Every mdev removable; then the pool must be full again. */
	for (int i = 0; i < nmdevs; i++) {
		pthread_mutex_lock(&mdevs[i].lock);
		if (mdevs[i].h.device >= 0)
			dev_close_locked(&mdevs[i]);
		if (mdevs[i].present) {
			int r = mdev_remove(mdevs[i].uuid);

			if (r)
				fail("removing mdev%d (%s) at the end: %s", i, mdevs[i].type, strerror(-r));
		}
		pthread_mutex_unlock(&mdevs[i].lock);
	}
	if (!pool_full())
		fail("not every instance is available again after the run (mbochs pool / mdpy count)");
	printf("# done in %.1fs: mdpy %ld ops, mbochs %ld ops (target %ld per driver), seed 0x%llx\n",
	       elapsed(), atomic_load(&drivers[0].ops), atomic_load(&drivers[1].ops), target_ops,
	       (unsigned long long)seed);
	printf("# time by operation (count, ms):");
	for (int k = 0; k < K_NR; k++)
		printf(" %s %ld %ld;", kind_names[k], atomic_load(&kind_n[k]), atomic_load(&kind_us[k]) / 1000);
	printf("\n");
	for (size_t d = 0; d < ARRAY_SIZE(drivers); d++)
		if (drivers[d].on && atomic_load(&drivers[d].ops) < target_ops)
			fail("%s: only %ld of %ld operations", drivers[d].name,
			     atomic_load(&drivers[d].ops), target_ops);
	return atomic_load(&failed) ? 1 : 0;
}

/* ---------------------------------------------------------------- cycles */

/*
 * kB of live objects in the kmalloc caches: the sum of active_objs * objsize
 * over the kmalloc-* lines of /proc/slabinfo. That is where the drivers and
 * the vfio, mdev and iommufd core allocate (kmalloc, kvmalloc); unlike
 * /proc/meminfo's Slab it leaves out free objects of retained slab pages,
 * and the caches that move with everything else in the VM (inodes,
 * dentries, task groups, kmemleak's own objects swing by megabytes between
 * two measurements). A leaked object is live.
 */
static long slab_live_kb(void)
{
	char line[512], name[64];
	long active, num, size, total = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld %ld %ld", name, &active, &num, &size) == 4 &&
		    strstr(name, "kmalloc-"))
			total += active * size;
	fclose(f);
	return total / 1024;
}

/*
 * Where memory is, in kB, after settle(): each counter one place the page
 * allocator's pages can be (free, on a per-cpu free list, in the page cache,
 * anonymous, slab, page tables, vmalloc, per-cpu chunks, the stack depot),
 * and what none of them accounts: pages a driver took with alloc_page() (or
 * a reference it kept on a page that would have been freed), which
 * kmemleak does not track. A page kept per cycle shows up there.
 */
enum {
	C_AVAIL, C_FREE, C_PCP, C_FILE, C_ANON, C_SLAB_R, C_SLAB_U, C_KMALLOC, C_PT,
	C_STACK, C_VMALLOC, C_PERCPU, C_DEPOT, C_OWN_PT, C_OTHER, NR_COUNTERS
};

static const char *const counter_names[NR_COUNTERS] = {
	[C_AVAIL] = "MemAvailable", [C_FREE] = "free", [C_PCP] = "pcp",
	[C_FILE] = "file", [C_ANON] = "anon", [C_SLAB_R] = "slab_reclaimable",
	[C_SLAB_U] = "slab_unreclaimable", [C_KMALLOC] = "kmalloc_live",
	[C_PT] = "page_tables", [C_STACK] = "kernel_stack", [C_VMALLOC] = "vmalloc",
	[C_PERCPU] = "percpu", [C_DEPOT] = "stackdepot", [C_OWN_PT] = "fuzzer_page_tables",
	[C_OTHER] = "unaccounted",
};

struct memsnap {
	long c[NR_COUNTERS];
};

/* The value of KEY (followed by ':' or ' ') in a "key value" file, or -1. */
static long keyed(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && (line[n] == ':' || line[n] == ' ')) {
			v = atol(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

static long meminfo(const char *key)
{
	return keyed("/proc/meminfo", key);
}

/* kB of /proc/vmstat's KEY (a page count), or 0 if the kernel has none. */
static long vmstat_kb(const char *key)
{
	long v = keyed("/proc/vmstat", key);

	return v < 0 ? 0 : v * (PAGE / 1024);
}

/* kB on the per-cpu free lists (not in MemFree): /proc/zoneinfo's counts. */
static long pcp_kb(void)
{
	char line[256];
	long n, total = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &n) == 1)
			total += n;
	fclose(f);
	return total * (PAGE / 1024);
}

/* kB of stack depot pools (4 pages each, never freed): kmemleak's traces. */
static long depot_kb(void)
{
	long pools = keyed("/sys/kernel/debug/stackdepot/stats", "pools");

	return pools < 0 ? 0 : pools * 4 * (PAGE / 1024);
}

static void snap_once(struct memsnap *s)
{
	long total = meminfo("MemTotal");

	s->c[C_AVAIL] = meminfo("MemAvailable");
	s->c[C_FREE] = meminfo("MemFree");
	s->c[C_PCP] = pcp_kb();
	s->c[C_FILE] = vmstat_kb("nr_file_pages");
	s->c[C_ANON] = vmstat_kb("nr_anon_pages");
	s->c[C_SLAB_R] = vmstat_kb("nr_slab_reclaimable");
	s->c[C_SLAB_U] = vmstat_kb("nr_slab_unreclaimable");
	s->c[C_KMALLOC] = slab_live_kb();
	s->c[C_PT] = vmstat_kb("nr_page_table_pages") + vmstat_kb("nr_sec_page_table_pages");
	s->c[C_STACK] = meminfo("KernelStack");	/* vmalloc'ed (VMAP_STACK): in vmalloc too */
	s->c[C_VMALLOC] = meminfo("VmallocUsed");
	s->c[C_PERCPU] = meminfo("Percpu");
	s->c[C_DEPOT] = depot_kb();
	s->c[C_OWN_PT] = keyed("/proc/self/status", "VmPTE");
	s->c[C_OTHER] = total - s->c[C_FREE] - s->c[C_PCP] - s->c[C_FILE] - s->c[C_ANON] -
			s->c[C_SLAB_R] - s->c[C_SLAB_U] - s->c[C_PT] - s->c[C_VMALLOC] -
			s->c[C_PERCPU] - s->c[C_DEPOT] - vmstat_kb("nr_iommu_pages") -
			vmstat_kb("nr_kernel_misc_reclaimable");
}

/*
 * The counters are read one after the other, not at one instant: a page
 * that moves between two of them meanwhile (a slab page allocated from the
 * free lists, say) is counted twice or not at all. Read until two
 * consecutive readings agree on "unaccounted" within 16 kB (at most 5).
 */
static void snap_take(struct memsnap *s)
{
	struct memsnap prev;

	snap_once(&prev);
	for (int i = 0; i < 5; i++) {
		snap_once(s);
		if (labs(s->c[C_OTHER] - prev.c[C_OTHER]) <= 16)
			return;
		usleep(100000);
		prev = *s;
	}
}

/* "name a/b, ..." for the changes a = s1 - s0 and b = s2 - s1. */
static void print_counters(const char *prefix, const struct memsnap *s0,
			   const struct memsnap *s1, const struct memsnap *s2)
{
	printf("%s", prefix);
	for (int k = 0; k < NR_COUNTERS; k++)
		printf("%s %s %+ld/%+ld", k ? "," : "", counter_names[k], s1->c[k] - s0->c[k],
		       s2->c[k] - s1->c[k]);
	printf("\n");
}

/* FUZZ_OUT/procs-NAME.txt: each process's name, RssAnon and VmPTE (kB). */
static void save_procs(const char *name)
{
	const char *dir = getenv("FUZZ_OUT");
	char path[PATH_MAX], comm[64];
	struct dirent *de;
	FILE *out;
	DIR *d;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/procs-%s.txt", dir, name);
	out = fopen(path, "w");
	d = opendir("/proc");
	while (out && d && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		comm[strcspn(comm, "\n")] = 0;
		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		fprintf(out, "%s %s RssAnon %ld VmPTE %ld\n", de->d_name, comm, keyed(path, "RssAnon"),
			keyed(path, "VmPTE"));
	}
	if (d)
		closedir(d);
	if (out)
		fclose(out);
}

static void settle(void)
{
	/*
	 * udev first: each cycle sends it uevents, and when it falls behind
	 * (a loaded host: TCG) their messages wait in its netlink socket
	 * (skbuff_head_cache, kmalloc-1k) and its workers' sessions in
	 * task_group, megabytes of kernel memory that are not ours.
	 */
	if (system("udevadm settle --timeout=60 >/dev/null 2>&1") == -1)
		usleep(100000);
	sync();
	sysfs_write("/proc/sys/vm/drop_caches", "3");
	usleep(200000);
	/* fold every CPU's counter deltas into the global counters */
	sysfs_write("/proc/sys/vm/stat_refresh", "1");
}

/*
 * The measure's own check: pages held by nothing but a reference must show
 * in "unaccounted". CAL_PAGES pages of this process are handed to a pipe
 * with vmsplice() (the pipe takes a reference on each, as a driver's
 * get_page() would) and unmapped: no counter has them any more. Returns
 * what "unaccounted" grew by meanwhile (kB), or -1 if the pipe refused.
 */
#define CAL_PAGES 128

static long calibrate(void)
{
	struct memsnap a, b;
	struct iovec iov;
	long seen = -1;
	int p[2];
	char *m;

	if (pipe(p))
		return -1;
	m = mmap(NULL, CAL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED && fcntl(p[1], F_SETPIPE_SZ, CAL_PAGES * PAGE) >= (long)(CAL_PAGES * PAGE)) {
		memset(m, 0x5a, CAL_PAGES * PAGE);
		settle();
		snap_take(&a);
		iov = (struct iovec){ m, CAL_PAGES * PAGE };
		if (vmsplice(p[1], &iov, 1, 0) == (ssize_t)(CAL_PAGES * PAGE)) {
			munmap(m, CAL_PAGES * PAGE);
			m = MAP_FAILED;
			settle();
			snap_take(&b);
			seen = b.c[C_OTHER] - a.c[C_OTHER];
		}
	}
	if (m != MAP_FAILED)
		munmap(m, CAL_PAGES * PAGE);
	close(p[0]);
	close(p[1]);
	return seen;
}

/* Open fds of this process: the cycles may not leave any behind. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* SRC into FUZZ_OUT/KIND-NAME.txt (to see which counter or cache moves). */
static void save_proc(const char *src, const char *kind, const char *name)
{
	const char *dir = getenv("FUZZ_OUT");
	char path[PATH_MAX], buf[4096];
	int in, out;
	ssize_t n;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s-%s.txt", dir, kind, name);
	in = open(src, O_RDONLY);
	if (in < 0)
		return;
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			break;
	close(in);
	if (out >= 0)
		close(out);
}

/* One guarded 32-bit access: returns the signal it raised, or 0. */
static int access32(struct worker *w, void *p, bool write, uint32_t v)
{
	int sig;

	w->guarded = 1;
	sig = sigsetjmp(w->jb, 1);
	if (!sig) {
		if (write)
			*(volatile uint32_t *)p = v;
		else
			(void)*(volatile uint32_t *)p;
	}
	w->guarded = 0;
	return sig;
}

/*
 * Steps of a cycle FUZZ_CYCLE_SKIP leaves out (to find which one a memory
 * change goes with): "dmabuf-mmap" (the dma-buf's mmap), "dmabuf"
 * (GET_GFX_DMABUF and its mmap), "plane" (the mode, QUERY_GFX_PLANE and the
 * dma-buf), "bar0" (the BAR0 mmap), "open" (everything but create and
 * remove). Only for measuring: the cycles' verdict is on whole cycles.
 */
enum { SKIP_DMABUF_MMAP = 1, SKIP_DMABUF = 2, SKIP_PLANE = 4, SKIP_BAR0 = 8, SKIP_OPEN = 16 };
static unsigned int cycle_skip;

static unsigned int parse_skip(const char *list)
{
	static const struct { const char *name; unsigned int bits; } steps[] = {
		{ "dmabuf-mmap", SKIP_DMABUF_MMAP },
		{ "dmabuf", SKIP_DMABUF | SKIP_DMABUF_MMAP },
		{ "plane", SKIP_PLANE | SKIP_DMABUF | SKIP_DMABUF_MMAP },
		{ "bar0", SKIP_BAR0 },
		{ "open", SKIP_OPEN | SKIP_PLANE | SKIP_DMABUF | SKIP_DMABUF_MMAP | SKIP_BAR0 },
	};
	char buf[128], *tok, *save;
	unsigned int bits = 0;

	snprintf(buf, sizeof(buf), "%s", list ?: "");
	for (tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
		for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
			if (!strcmp(tok, steps[i].name))
				bits |= steps[i].bits;
	return bits;
}

/* One create/open/use/close/remove cycle; returns 0 or a failure message. */
static const char *cycle(struct worker *w, int drv, int n)
{
	static char msg[256];
	struct mdev m = { drivers[drv].name, drivers[drv].types[n % 3], .drv = drv };
	int ret, dfd = -1;
	void *a;

	m.h.device = -1;
	gen_uuid(m.uuid);
	ret = mdev_create(m.driver, m.type, m.uuid);
	if (ret)
		return snprintf(msg, sizeof(msg), "create %s: %s", m.type, strerror(-ret)), msg;
	if (cycle_skip & SKIP_OPEN) {
		ret = mdev_remove(m.uuid);
		return ret ? (snprintf(msg, sizeof(msg), "remove: %s", strerror(-ret)), msg) : NULL;
	}
	ret = vfio_open(m.uuid, n & 1, &m.h);
	if (ret) {
		vfio_close(&m.h);
		mdev_remove(m.uuid);
		return snprintf(msg, sizeof(msg), "open %s (%s): %s", m.type, n & 1 ? "cdev" : "group",
				strerror(-ret)), msg;
	}
	{
		struct vfio_device_info info = { .argsz = sizeof(info) };
		struct vfio_region_info ri;

		ioctl(m.h.device, VFIO_DEVICE_GET_INFO, &info);
		for (unsigned int i = 0; i < info.num_regions && i < MAX_REGIONS; i++)
			if (!region_info(m.h.device, i, &ri))
				m.r[i] = (struct region){ ri.offset, ri.size, ri.flags };
	}
	if (drv == 1 && !(cycle_skip & SKIP_PLANE)) {
		struct vfio_device_gfx_plane_info p = {
			.argsz = sizeof(p), .flags = VFIO_GFX_PLANE_TYPE_DMABUF,
			.drm_plane_type = PLANE_PRIMARY,
		};
		uint32_t id;

		dispi_write(m.h.device, &m, DISPI_ENABLE, 0);
		dispi_write(m.h.device, &m, DISPI_XRES, 640);
		dispi_write(m.h.device, &m, DISPI_YRES, 480);
		dispi_write(m.h.device, &m, DISPI_BPP, 32);
		dispi_write(m.h.device, &m, DISPI_ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
		ret = ioctl(m.h.device, VFIO_DEVICE_QUERY_GFX_PLANE, &p);
		if (ret && errno == ENOMEM && mdev_impl_is_c())	/* C defect 3 */
			ret = ioctl(m.h.device, VFIO_DEVICE_QUERY_GFX_PLANE, &p);
		if (ret || !p.size) {
			snprintf(msg, sizeof(msg), "QUERY_GFX_PLANE: %s (size %llu)", strerror(errno),
				 (unsigned long long)p.size);
			goto fail;
		}
		id = p.dmabuf_id;
		if (cycle_skip & SKIP_DMABUF)
			goto bar0;
		dfd = ioctl(m.h.device, VFIO_DEVICE_GET_GFX_DMABUF, &id);
		if (dfd < 0) {
			snprintf(msg, sizeof(msg), "GET_GFX_DMABUF: %s", strerror(errno));
			goto fail;
		}
		if (cycle_skip & SKIP_DMABUF_MMAP)
			goto bar0;
		a = mmap(NULL, p.size, PROT_READ, MAP_SHARED, dfd, 0);
		if (a != MAP_FAILED) {	/* the C sample cannot (defect 16) */
			int sig = access32(w, a, false, 0);

			munmap(a, p.size);
			if (sig) {
				snprintf(msg, sizeof(msg), "dma-buf mapping: %s", strsignal(sig));
				goto fail;
			}
		} else if (!mdev_impl_is_c()) {
			snprintf(msg, sizeof(msg), "dma-buf mmap: %s", strerror(errno));
			goto fail;
		}
	}
bar0:
	if (cycle_skip & SKIP_BAR0)
		goto put;
	a = mmap(NULL, PAGE * 4, PROT_READ | PROT_WRITE, MAP_SHARED, m.h.device,
		 m.r[VFIO_PCI_BAR0_REGION_INDEX].offset);
	if (a == MAP_FAILED) {
		snprintf(msg, sizeof(msg), "BAR0 mmap: %s", strerror(errno));
		goto fail;
	}
	ret = access32(w, a, true, n);
	munmap(a, PAGE * 4);
	if (ret) {
		snprintf(msg, sizeof(msg), "BAR0 mapping: %s", strsignal(ret));
		goto fail;
	}
	/*
	 * The dma-buf is closed before the device (n % 3 == 0), after it, or
	 * after the mdev's removal: it outlives the device and the mdev.
	 */
put:
	if (dfd >= 0 && n % 3 == 0)
		close(dfd), dfd = -1;
	vfio_close(&m.h);
	if (dfd >= 0 && n % 3 == 1)
		close(dfd), dfd = -1;
	ret = mdev_remove(m.uuid);
	if (dfd >= 0)
		close(dfd);
	if (ret)
		return snprintf(msg, sizeof(msg), "remove: %s", strerror(-ret)), msg;
	return NULL;
fail:
	if (dfd >= 0)
		close(dfd);
	vfio_close(&m.h);
	mdev_remove(m.uuid);
	return msg;
}

/*
 * The drivers' cycle loops run side by side (device creation and removal
 * wait for RCU grace periods and work items: the other loop runs then).
 * Memory is measured around both: after each did 50 cycles (past the first
 * allocations of caches) and at the end.
 */
static long n_cycles;
static pthread_barrier_t warm;

struct cycler {
	int drv;
	pthread_t thread;
	const char *err;
	long done;
	double secs;
};

/*
 * FUZZ_OUT/counters-trace.txt: the counters every FUZZ_TRACE_EVERY cycles
 * (default n/20, at least 25; 0: none), to see whether one grows steadily
 * or in steps.
 */
static void trace_counters(int drv, long i)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool header;
	const char *dir = getenv("FUZZ_OUT");
	long every = envl("FUZZ_TRACE_EVERY", n_cycles / 20 > 25 ? n_cycles / 20 : 25);
	char path[PATH_MAX];
	struct memsnap s;
	FILE *f;

	if (!dir || every <= 0 || i % every)
		return;
	pthread_mutex_lock(&lock);
	settle();
	snap_take(&s);
	snprintf(path, sizeof(path), "%s/counters-trace.txt", dir);
	f = fopen(path, "a");
	if (f) {
		if (!header) {
			header = true;
			fprintf(f, "driver cycle");
			for (int k = 0; k < NR_COUNTERS; k++)
				fprintf(f, " %s", counter_names[k]);
			fprintf(f, "\n");
		}
		fprintf(f, "%s %ld", drivers[drv].name, i);
		for (int k = 0; k < NR_COUNTERS; k++)
			fprintf(f, " %ld", s.c[k]);
		fprintf(f, "\n");
		fclose(f);
	}
	pthread_mutex_unlock(&lock);
}

static void *cycler_main(void *arg)
{
	struct cycler *c = arg;
	double t = elapsed();
	long i;

	self = &workers[c->drv];
	for (i = 0; i < n_cycles && !c->err; i++) {
		if (i == 50 || i == n_cycles / 2) {
			pthread_barrier_wait(&warm);	/* main measures */
			pthread_barrier_wait(&warm);
		}
		trace_counters(c->drv, i);
		c->err = cycle(self, c->drv, i);
	}
	/* an early failure: still meet main at both measuring points */
	for (long k = i; k <= n_cycles / 2; k++)
		if (k == 50 || k == n_cycles / 2) {
			pthread_barrier_wait(&warm);
			pthread_barrier_wait(&warm);
		}
	c->done = c->err ? i - 1 : i;
	c->secs = elapsed() - t;
	return NULL;
}

/* /proc files into FUZZ_OUT at a measuring point. */
static void save_point(const char *name)
{
	static const char *const files[][2] = {
		{ "/proc/slabinfo", "slabinfo" }, { "/proc/vmstat", "vmstat" },
		{ "/proc/meminfo", "meminfo" }, { "/proc/zoneinfo", "zoneinfo" },
		{ "/sys/kernel/debug/stackdepot/stats", "stackdepot" },
		{ "/proc/vmallocinfo", "vmallocinfo" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		save_proc(files[i][0], files[i][1], name);
	save_procs(name);
}

static int cycles(void)
{
	long bound = envl("FUZZ_MEM_BOUND_KB", 2048);
	long page_bound = envl("FUZZ_PAGE_BOUND_KB", 256);
	long avail_bound = envl("FUZZ_AVAIL_BOUND_KB", 1024);
	struct memsnap sw, s0, s1;
	struct cycler c[ARRAY_SIZE(drivers)] = {};
	int rc = 0, on = 0, fds0;
	double t = elapsed();

	n_cycles = envl("FUZZ_CYCLES", 1000);
	if (n_cycles < 200)	/* measuring points at 50 and n/2 */
		n_cycles = 200;
	cycle_skip = parse_skip(getenv("FUZZ_CYCLE_SKIP"));
	if (cycle_skip)
		printf("# cycles leave out: %s\n", getenv("FUZZ_CYCLE_SKIP"));
	for (size_t d = 0; d < ARRAY_SIZE(drivers); d++)
		on += drivers[d].on;
	pthread_barrier_init(&warm, NULL, on + 1);
	for (size_t d = 0; d < ARRAY_SIZE(drivers); d++) {
		c[d].drv = d;
		if (drivers[d].on)
			pthread_create(&c[d].thread, NULL, cycler_main, &c[d]);
	}
	pthread_barrier_wait(&warm);
	settle();
	fds0 = count_fds();
	save_point("cycle50");
	snap_take(&sw);
	pthread_barrier_wait(&warm);
	pthread_barrier_wait(&warm);
	settle();
	save_point("half");
	snap_take(&s0);
	pthread_barrier_wait(&warm);
	for (size_t d = 0; d < ARRAY_SIZE(drivers); d++) {
		if (!drivers[d].on)
			continue;
		pthread_join(c[d].thread, NULL);
		if (c[d].err) {
			printf("not ok - %s: cycle %ld of %ld: %s\n", drivers[d].name, c[d].done + 1, n_cycles,
			       c[d].err);
			rc = 1;
		} else {
			printf("ok - %s: %ld create/open/%suse/close/remove cycles in %.0fs\n", drivers[d].name,
			       c[d].done, d == 1 ? "QUERY_GFX_PLANE/GET_GFX_DMABUF/dma-buf mmap/BAR0 mmap/"
						 : "BAR0 mmap/", c[d].secs);
		}
	}
	settle();
	save_point("end");
	snap_take(&s1);
	if (count_fds() != fds0) {
		printf("not ok - fds: the fuzzer has %d open fds after the cycles, %d after cycle 50\n",
		       count_fds(), fds0);
		rc = 1;
	}
	{
		char prefix[128];

		snprintf(prefix, sizeof(prefix), "# counters (kB), cycles 50..%ld/%ld..%ld:",
			 n_cycles / 2, n_cycles / 2, n_cycles);
		print_counters(prefix, &sw, &s0, &s1);
	}
	/*
	 * The verdict is on the second half: a leak goes on growing with the
	 * cycles, while caches settle (the first half is shown too). Judged:
	 *
	 * - kernel memory no counter accounts ("unaccounted": pages a driver
	 *   allocated with alloc_page() or kept a reference on), where a page
	 *   kept per cycle lands; kmemleak does not see those. The measure is
	 *   checked each run: pages only a pipe holds must show there;
	 * - MemAvailable's fall, less what the per-cpu free lists took (MemFree
	 *   leaves them out, and they swing by megabytes between two readings:
	 *   they were MemAvailable's "page a cycle", see robustness.rst) and
	 *   what processes' anonymous memory and page tables took (udev's
	 *   workers for the mdevs' uevents come and go): the kernel's share;
	 * - the live objects of the kmalloc caches, where the drivers and the
	 *   vfio, mdev and iommufd core allocate.
	 */
	{
		long other = s1.c[C_OTHER] - s0.c[C_OTHER];
		long avail = s1.c[C_AVAIL] - s0.c[C_AVAIL], pcp = s1.c[C_PCP] - s0.c[C_PCP];
		long user = s1.c[C_ANON] - s0.c[C_ANON] + s1.c[C_PT] - s0.c[C_PT];
		long kernel = avail + pcp + user;
		long kmalloc = s1.c[C_KMALLOC] - s0.c[C_KMALLOC];
		long cal = calibrate(), want = CAL_PAGES * (PAGE / 1024);
		bool blind = cal < want * 3 / 4;
		bool bad_pages = blind || other > page_bound, bad_avail = kernel < -avail_bound;
		bool bad_kmalloc = kmalloc > bound;

		printf("%s - memory: %s%s cycles %ld..%ld (%.0fs): kernel pages no counter accounts "
		       "%+ld kB (%sbound %ld kB; %ld pages only a pipe holds showed as %+ld kB%s); "
		       "MemAvailable %+ld kB, the per-cpu free lists %+ld kB, processes' anon and page "
		       "tables %+ld kB: the kernel's share %+ld kB (%sbound -%ld kB); live kmalloc objects "
		       "%+ld kB (%sbound %ld kB); cycles 50..%ld: unaccounted %+ld kB, the kernel's share "
		       "of MemAvailable %+ld kB, kmalloc %+ld kB\n",
		       bad_pages || bad_avail || bad_kmalloc ? "not ok" : "ok",
		       drivers[0].on ? "mdpy" : "",
		       drivers[1].on ? (drivers[0].on ? " and mbochs" : "mbochs") : "",
		       n_cycles / 2, n_cycles, elapsed() - t, other, bad_pages ? "over the " : "",
		       page_bound, (long)CAL_PAGES, cal, blind ? ": the measure is blind" : "", avail, pcp,
		       user, kernel, bad_avail ? "over the " : "", avail_bound, kmalloc,
		       bad_kmalloc ? "over the " : "", bound, n_cycles / 2,
		       s0.c[C_OTHER] - sw.c[C_OTHER],
		       s0.c[C_AVAIL] - sw.c[C_AVAIL] + s0.c[C_PCP] - sw.c[C_PCP] + s0.c[C_ANON] -
			       sw.c[C_ANON] + s0.c[C_PT] - sw.c[C_PT],
		       s0.c[C_KMALLOC] - sw.c[C_KMALLOC]);
		if (bad_pages || bad_avail || bad_kmalloc)
			rc = 1;
	}
	if (!pool_full()) {
		printf("not ok - memory: not every instance available again after the cycles\n");
		rc = 1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "fuzz";
	struct timespec now;

	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_REALTIME, &now);
	seed = getenv("FUZZ_SEED") ? strtoull(getenv("FUZZ_SEED"), NULL, 0)
				   : ((uint64_t)now.tv_sec << 20) ^ now.tv_nsec ^ getpid();
	target_ops = envl("FUZZ_OPS", 20000);
	max_seconds = envl("FUZZ_SECONDS", 600);
	nthreads = envl("FUZZ_THREADS", 4);
	history = envl("FUZZ_HISTORY", 32);
	trace = envl("FUZZ_TRACE", 0);
	pool_mb = envl("FUZZ_POOL_MB", 128);
	mdpy_count = envl("FUZZ_MDPY_COUNT", 4);
	if (nthreads < 1 || nthreads > 64 || history < 1)
		return fprintf(stderr, "bad FUZZ_THREADS or FUZZ_HISTORY\n"), 2;
	drivers[0].on = want_driver("mdpy");
	drivers[1].on = want_driver("mbochs");
	printf("# mdev_fuzz %s: seed 0x%llx (replay with FUZZ_SEED=0x%llx), drivers:%s%s, "
	       "%d threads, %ld ops per driver, impl %s\n", mode, (unsigned long long)seed,
	       (unsigned long long)seed, drivers[0].on ? " mdpy" : "", drivers[1].on ? " mbochs" : "",
	       nthreads, target_ops, getenv("MDEV_IMPL") ?: "?");
	setup_workers(nthreads + 1);
	install_signals();
	if (!strcmp(mode, "fuzz"))
		return fuzz();
	if (!strcmp(mode, "cycles"))
		return cycles();
	fprintf(stderr, "usage: %s fuzz|cycles\n", argv[0]);
	return 2;
}
