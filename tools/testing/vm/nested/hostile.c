// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile guest, run in the nested guest of the hostile-guest test
 * (tools/testing/vm/guest-hostile.sh): random values into every config-space
 * byte and every device register of the mdpy and mbochs devices QEMU gives
 * the guest, through the guest kernel's PCI sysfs files (config, resourceN),
 * which is what a guest driver gone wrong (or a malicious one) can do. Each
 * access traps to QEMU, which forwards it to the host's mdev driver.
 *
 *  - config space: first a sweep, three random values into every byte, then
 *    random offsets, widths (1, 2, 4, odd) and values, reads among them;
 *  - mbochs BAR2: a sweep of every 16-bit word of the 4 KiB (EDID mirror,
 *    DISPI registers, QEMU's extended registers, the undecoded rest) with
 *    random values, then random accesses weighted towards the DISPI
 *    registers, and whole random modes (resolution, bpp, virtual width,
 *    offsets, enable) which the host must keep inside the VRAM;
 *  - BAR0 (mdpy's framebuffer, mbochs' VRAM): random writes.
 * (No device reset: the guest kernel has no reset method for these devices.)
 *
 * Random config writes can turn off memory decoding or move a BAR, after
 * which register accesses reach nothing: most of them are undone at once
 * (command register, BARs, ROM BAR back to the values at start), some are
 * left for a while. At the end the config space is restored and mbochs set
 * to 640x480x32, which the host then checks it shows.
 *
 * usage: hostile SEED OPS DEVICE_DIR... (e.g. /sys/bus/pci/devices/0000:00:02.0)
 * Prints "HOSTILE <dev> ..." counters and exits 0 if every device file
 * could be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEVS 4
#define MAX_BARS 6

enum kind { MDPY, MBOCHS };

struct dev {
	const char *dir;
	enum kind kind;
	int config;
	size_t config_size;
	uint8_t saved[0x40];	/* the header at start: command, BARs, ROM BAR */
	volatile uint8_t *bar[MAX_BARS];
	size_t bar_size[MAX_BARS];
	unsigned long config_writes, config_reads, reg_writes, reg_reads, modes, restores;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* A value hostile to whatever reads it: random, or one of the edges. */
static uint32_t value(void)
{
	static const uint32_t edges[] = {
		0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
		0x80000000, 0xffffffff, 32, 64, 63, 640, 480, 1024, 768, 4096, 0x41, 0xc1,
	};

	return below(2) ? (uint32_t)rnd() : edges[below(sizeof(edges) / sizeof(edges[0]))];
}

static void config_write(struct dev *d, size_t off, size_t len, uint32_t v)
{
	uint64_t val = v | (uint64_t)value() << 32;

	if (off >= d->config_size)
		return;
	if (off + len > d->config_size)
		len = d->config_size - off;
	/* Errors are answers (the guest kernel filters some writes). */
	if (pwrite(d->config, &val, len, off) >= 0)
		d->config_writes++;
}

/* Command register, BARs and ROM BAR back to their values at start. */
static void restore(struct dev *d)
{
	if (pwrite(d->config, d->saved + 0x10, 0x28 - 0x10, 0x10) < 0 ||
	    pwrite(d->config, d->saved + 0x30, 4, 0x30) < 0 ||
	    pwrite(d->config, d->saved + 0x04, 2, 0x04) < 0)
		perror("restoring the config header");
	d->restores++;
}

static void config_op(struct dev *d)
{
	static const size_t widths[] = { 1, 2, 4, 3, 8 };
	size_t off = below(d->config_size), len = widths[below(5)];
	uint32_t v;

	if (below(4) == 0) {
		/* The guest's own reads; the value does not matter. */
		if (pread(d->config, &v, len > 4 ? 4 : len, off) >= 0)
			d->config_reads++;
		return;
	}
	config_write(d, off, len, value());
	/*
	 * A BAR moved onto the guest's interrupt controllers would stop the
	 * guest: those writes are undone at once, and most of the command
	 * register's (memory decoding off for a while is harmless).
	 */
	if ((off < 0x34 && off + len > 0x10) || (off < 0x06 && below(8) != 0))
		restore(d);
}

static void mmio_write(volatile uint8_t *p, size_t len, uint32_t v)
{
	switch (len) {
	case 1: *p = v; break;
	case 2: *(volatile uint16_t *)p = v; break;
	default: *(volatile uint32_t *)p = v; break;
	}
}

static uint32_t mmio_read(volatile uint8_t *p, size_t len)
{
	switch (len) {
	case 1: return *p;
	case 2: return *(volatile uint16_t *)p;
	default: return *(volatile uint32_t *)p;
	}
}

/* mbochs BAR2: a DISPI register, by index. */
static void dispi(struct dev *d, unsigned int index, uint16_t v)
{
	if (d->bar[2] && d->bar_size[2] >= 0x600)
		*(volatile uint16_t *)(d->bar[2] + 0x500 + 2 * index) = v;
	d->reg_writes++;
}

/* A whole mode, plausible or not: the host must keep its plane in the VRAM. */
static void mode_op(struct dev *d)
{
	static const uint16_t bpps[] = { 32, 32, 32, 24, 16, 15, 8, 0, 64 };
	uint16_t w = below(2) ? 64 + below(1920) : (uint16_t)value();
	uint16_t h = below(2) ? 64 + below(1200) : (uint16_t)value();

	dispi(d, 4, 0);					/* ENABLE off */
	dispi(d, 1, w);					/* XRES */
	dispi(d, 2, h);					/* YRES */
	dispi(d, 3, bpps[below(9)]);			/* BPP */
	dispi(d, 6, below(2) ? w : (uint16_t)value());	/* VIRT_WIDTH */
	dispi(d, 8, below(2) ? 0 : (uint16_t)value());	/* X_OFFSET */
	dispi(d, 9, below(2) ? 0 : (uint16_t)value());	/* Y_OFFSET */
	dispi(d, 4, below(4) ? 0x41 : (uint16_t)value());	/* ENABLE | LFB */
	d->modes++;
}

static void register_op(struct dev *d)
{
	static const size_t widths[] = { 1, 2, 2, 4 };
	size_t len = widths[below(4)], off;
	volatile uint8_t *bar = d->bar[2];
	size_t size = d->bar_size[2];

	if (!bar)
		return;
	switch (below(8)) {
	case 0: off = below(0x400); break;		/* EDID mirror */
	case 1: off = 0x600 + below(0x20); break;	/* QEMU's extended registers */
	case 2: off = below(size); break;		/* anywhere */
	default: off = 0x500 + below(0x20); break;	/* DISPI */
	}
	off &= ~(len - 1);
	if (off + len > size)
		return;
	if (below(4) == 0) {
		(void)mmio_read(bar + off, len);
		d->reg_reads++;
	} else {
		mmio_write(bar + off, len, value());
		d->reg_writes++;
	}
}

static void memory_op(struct dev *d)
{
	size_t size = d->bar_size[0], off;

	if (!d->bar[0] || size < 8)
		return;
	off = below(size) & ~(size_t)3;
	mmio_write(d->bar[0] + off, 4, (uint32_t)rnd());
	d->reg_writes++;
}

/* The number in sysfs file @dir/@name (vendor, device), or 0. */
static unsigned int sysfs_number(const char *dir, const char *name)
{
	char path[256], buf[32];
	unsigned int v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		v = strtoul(buf, NULL, 0);
	fclose(f);
	return v;
}

static int dev_open(struct dev *d, const char *dir)
{
	char path[256];
	unsigned int vendor, device;
	struct stat st;
	int i;

	memset(d, 0, sizeof(*d));
	d->dir = dir;
	vendor = sysfs_number(dir, "vendor");
	device = sysfs_number(dir, "device");
	if (vendor == 0x1b36 && device == 0x000f)
		d->kind = MDPY;
	else if (vendor == 0x1234 && device == 0x1111)
		d->kind = MBOCHS;
	else {
		fprintf(stderr, "%s: %04x:%04x is neither mdpy nor mbochs\n", dir, vendor, device);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/config", dir);
	d->config = open(path, O_RDWR);
	if (d->config < 0 || fstat(d->config, &st) || st.st_size < 0x40 ||
	    pread(d->config, d->saved, sizeof(d->saved), 0) != sizeof(d->saved)) {
		perror(path);
		return -1;
	}
	d->config_size = st.st_size;
	for (i = 0; i < MAX_BARS; i++) {
		void *p;
		int fd;

		snprintf(path, sizeof(path), "%s/resource%d", dir, i);
		fd = open(path, O_RDWR | O_SYNC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) || st.st_size == 0) {
			close(fd);
			continue;
		}
		p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED) {
			perror(path);
			return -1;
		}
		d->bar[i] = p;
		d->bar_size[i] = st.st_size;
	}
	if (!d->bar[0] || (d->kind == MBOCHS && !d->bar[2])) {
		fprintf(stderr, "%s: BARs missing\n", dir);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct dev devs[MAX_DEVS];
	unsigned long ops, i;
	int n = 0, k, rep;
	size_t off;

	if (argc < 4) {
		fprintf(stderr, "usage: %s SEED OPS DEVICE_DIR...\n", argv[0]);
		return 2;
	}
	rng_state = strtoull(argv[1], NULL, 0) | 1;
	ops = strtoul(argv[2], NULL, 0);
	for (k = 3; k < argc && n < MAX_DEVS; k++)
		if (dev_open(&devs[n], argv[k]) == 0)
			n++;
		else
			return 1;
	printf("HOSTILE seed 0x%llx, %lu operations over %d devices\n",
	       (unsigned long long)strtoull(argv[1], NULL, 0), ops, n);
	fflush(stdout);

	/* Every config-space byte, every register word: three random values each. */
	for (k = 0; k < n; k++) {
		struct dev *d = &devs[k];

		for (rep = 0; rep < 3; rep++) {
			for (off = 0; off < d->config_size; off++) {
				config_write(d, off, 1, value());
				if (off < 0x34)
					restore(d);
			}
			if (d->kind == MBOCHS)
				for (off = 0; off + 2 <= d->bar_size[2]; off += 2) {
					mmio_write(d->bar[2] + off, 2, value());
					d->reg_writes++;
				}
		}
		printf("HOSTILE %s sweep done\n", d->dir);
		fflush(stdout);
	}

	for (i = 0; i < ops; i++) {
		struct dev *d = &devs[below(n)];
		uint32_t r = below(100);

		if (r < 35)
			config_op(d);
		else if (r < 70 && d->kind == MBOCHS)
			register_op(d);
		else if (r < 80 && d->kind == MBOCHS)
			mode_op(d);
		else if (r < 99)
			memory_op(d);
		else
			restore(d);
		if (i % 10000 == 9999) {
			printf("HOSTILE %lu operations\n", i + 1);
			fflush(stdout);
		}
	}

	/* Leave the devices usable: decoding back on, mbochs at 640x480x32. */
	for (k = 0; k < n; k++) {
		struct dev *d = &devs[k];

		restore(d);
		if (d->kind == MBOCHS) {
			dispi(d, 4, 0);
			dispi(d, 1, 640);
			dispi(d, 2, 480);
			dispi(d, 3, 32);
			dispi(d, 6, 640);
			dispi(d, 8, 0);
			dispi(d, 9, 0);
			dispi(d, 4, 0x41);
		}
		printf("HOSTILE %s %s: config writes %lu, reads %lu; register and memory writes %lu, reads %lu; modes %lu; restores %lu\n",
		       d->dir, d->kind == MDPY ? "mdpy" : "mbochs", d->config_writes, d->config_reads,
		       d->reg_writes, d->reg_reads, d->modes, d->restores);
	}
	fflush(stdout);
	return 0;
}
