/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VFIO migration v2 from userspace, for the migration kselftest and the
 * benchmark: the VFIO_DEVICE_FEATURE calls, the device states and the data
 * fd read to its end or written whole.
 */
#ifndef MIG_LIB_H
#define MIG_LIB_H

#include "mdev_lib.h"

enum { ERROR = VFIO_DEVICE_STATE_ERROR, STOP = VFIO_DEVICE_STATE_STOP,
       RUNNING = VFIO_DEVICE_STATE_RUNNING, STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY,
       RESUMING = VFIO_DEVICE_STATE_RESUMING, RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P,
       PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY, PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P,
       NSTATES };

/* One VFIO_DEVICE_FEATURE call with LEN bytes of data in and out; 0 or -errno. */
static inline int feature(int fd, uint32_t flags, void *data, size_t len)
{
	char buf[sizeof(struct vfio_device_feature) + 64] __attribute__((aligned(8)));
	struct vfio_device_feature *f = (void *)buf;
	int ret;

	memset(buf, 0, sizeof(buf));
	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	if (data && len)
		memcpy(f->data, data, len);
	ret = ioctl(fd, VFIO_DEVICE_FEATURE, f);
	if (ret < 0)
		return -errno;
	if (data && len && (flags & VFIO_DEVICE_FEATURE_GET))
		memcpy(data, f->data, len);
	if (data && len && (flags & VFIO_DEVICE_FEATURE_SET))
		memcpy(data, f->data, len);
	return ret;
}

static inline int mig_flags(int fd, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {};
	int ret = feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
			  &m, sizeof(m));

	*flags = m.flags;
	return ret;
}

static inline int get_state(int fd)
{
	struct vfio_device_feature_mig_state s = {};
	int ret = feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &s, sizeof(s));

	return ret < 0 ? ret : (int)s.device_state;
}

/* Sets the state; returns the data fd (or -1 for none) or -errno. */
static inline int set_state(int fd, uint32_t state)
{
	struct vfio_device_feature_mig_state s = { .device_state = state, .data_fd = -1 };
	int ret = feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &s, sizeof(s));

	return ret < 0 ? ret : s.data_fd;
}

static inline long data_size(int fd)
{
	struct vfio_device_feature_mig_data_size d = {};
	int ret = feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
			  &d, sizeof(d));

	return ret < 0 ? ret : (long)d.stop_copy_length;
}

/* A growing byte buffer: a saved stream. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void buf_put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * Reads a data fd until it reports end of data: 0 (end of file) or, with
 * precopy, ENOMSG. Returns 0 or the first other -errno; *end the errno that
 * ended it (0 for EOF).
 */
static inline int read_all(int dfd, struct buf *b, int *end)
{
	uint8_t chunk[65536];

	for (;;) {
		ssize_t n = read(dfd, chunk, sizeof(chunk));

		if (n == 0) {
			*end = 0;
			return 0;
		}
		if (n < 0) {
			*end = errno;
			return errno == ENOMSG ? 0 : -errno;
		}
		buf_put(b, chunk, n);
	}
}

/* Writes all of it in chunks; 0 or -errno. */
static inline int write_all(int dfd, const uint8_t *p, size_t len)
{
	while (len) {
		size_t n = len < 100000 ? len : 100000;
		ssize_t w = write(dfd, p, n);

		if (w < 0)
			return -errno;
		p += w;
		len -= w;
	}
	return 0;
}

#endif /* MIG_LIB_H */
