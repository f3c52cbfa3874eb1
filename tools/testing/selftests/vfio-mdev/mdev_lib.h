/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the mdev display kselftests: create/remove mdevs through
 * sysfs, open them through VFIO (iommufd cdev or legacy group/container),
 * and small region access wrappers.
 */
#ifndef MDEV_LIB_H
#define MDEV_LIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#ifndef offsetofend
#define offsetofend(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))
#endif

#define MDEV_BUS "/sys/bus/mdev/devices"
#define MDEV_CLASS "/sys/class/mdev_bus"

/* Which implementation is under test: "c" or "rust" (env MDEV_IMPL). */
static inline bool mdev_impl_is_c(void)
{
	const char *impl = getenv("MDEV_IMPL");

	return impl && !strcmp(impl, "c");
}

static inline int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

/* Reads a sysfs file into buf (NUL-terminated); returns length or -errno. */
static inline int sysfs_read(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

static inline long sysfs_read_long(const char *path)
{
	char buf[64];
	int n = sysfs_read(path, buf, sizeof(buf));

	return n < 0 ? n : strtol(buf, NULL, 0);
}

static inline void gen_uuid(char uuid[40])
{
	int n = sysfs_read("/proc/sys/kernel/random/uuid", uuid, 40);

	if (n > 0 && uuid[n - 1] == '\n')
		uuid[n - 1] = 0;
}

static inline int mdev_remove(const char *uuid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MDEV_BUS "/%s/remove", uuid);
	return sysfs_write(path, "1");
}

/*
 * The ledger of the mdevs a kselftest run creates: the file MDEV_LEDGER
 * names (set by guest-run.sh), "PID STARTTIME UUID" a line. A test the
 * harness kills at its timeout runs no teardown; its mdevs would stay, and
 * every later test of the type would fail to create one (ENOSPC from a full
 * pool): one failure would become many. So each creation first removes the
 * mdevs of the creators that are gone (exited, or zombies: their files and
 * mappings are released), then records and creates its own. A running
 * test's mdevs are never touched.
 */

/* Start time (clock ticks since boot) of PID, 0 if it is gone or a zombie. */
static inline unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	int n, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = sysfs_read(path, buf, sizeof(buf));
	p = n > 0 ? strrchr(buf, ')') : NULL;	/* comm may hold spaces */
	if (!p || p[1] != ' ' || p[2] == 'Z')
		return 0;
	/* Field 3 is the state, at p + 2; the start time is field 22. */
	for (field = 3, p += 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field == 22)
		start = strtoull(p, NULL, 10);
	return start;
}

/* Removes the ledger's mdevs whose creator is gone; returns how many. */
static inline int mdev_ledger_sweep(int fd)
{
	char buf[65536], keep[65536], uuid[40];
	unsigned long long start;
	size_t kept = 0;
	int n, swept = 0;
	char *line, *save;
	pid_t pid;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%d %llu %39s", &pid, &start, uuid) != 3)
			continue;
		if (proc_start_time(pid) == start) {
			kept += snprintf(keep + kept, sizeof(keep) - kept, "%s\n", line);
			if (kept >= sizeof(keep))
				kept = sizeof(keep) - 1;
		} else if (mdev_remove(uuid) == 0) {
			fprintf(stderr, "# mdev_lib: removed mdev %s left by a killed test (pid %d)\n",
				uuid, (int)pid);
			swept++;
		}
	}
	if (ftruncate(fd, 0) == 0 && kept)
		n = pwrite(fd, keep, kept, 0);
	return swept;
}

static inline int mdev_create_once(const char *parent, const char *type, const char *uuid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MDEV_CLASS "/%s/mdev_supported_types/%s/create",
		 parent, type);
	return sysfs_write(path, uuid);
}

static inline int mdev_create(const char *parent, const char *type, const char *uuid)
{
	const char *ledger = getenv("MDEV_LEDGER");
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	char line[128];
	int fd, ret, tries = 0;

	if (!ledger || !*ledger)
		return mdev_create_once(parent, type, uuid);
	fd = open(ledger, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return mdev_create_once(parent, type, uuid);
	flock(fd, LOCK_EX);
	mdev_ledger_sweep(fd);
	/*
	 * Recorded before it exists: a process killed right after the sysfs
	 * write returns cannot leave an unrecorded mdev (for one never made,
	 * the sweep's removal finds nothing).
	 */
	snprintf(line, sizeof(line), "%d %llu %s\n", (int)getpid(),
		 proc_start_time(getpid()), uuid);
	lseek(fd, 0, SEEK_END);
	if (write(fd, line, strlen(line)) < 0)
		fprintf(stderr, "# mdev_lib: %s: %s\n", ledger, strerror(errno));
	ret = mdev_create_once(parent, type, uuid);
	/* A killed test's last process may still be exiting: give it 3 s. */
	while (ret == -ENOSPC && tries++ < 30) {
		nanosleep(&pause, NULL);
		if (mdev_ledger_sweep(fd))
			ret = mdev_create_once(parent, type, uuid);
	}
	flock(fd, LOCK_UN);
	close(fd);
	return ret;
}

/* An open VFIO device and what holds it open. */
struct vfio_handle {
	int device;
	int iommufd;	/* cdev */
	int group;	/* legacy */
	int container;	/* legacy */
};

/* Opens the mdev through /dev/vfio/devices/vfioN and iommufd. */
static inline int vfio_open_cdev(const char *uuid, struct vfio_handle *h)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };

	snprintf(path, sizeof(path), MDEV_BUS "/%s/vfio-dev", uuid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	path[0] = 0;
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "vfio", 4))
			snprintf(path, sizeof(path), "/dev/vfio/devices/%s", de->d_name);
	closedir(dir);
	if (!path[0])
		return -ENOENT;

	h->device = open(path, O_RDWR);
	if (h->device < 0)
		return -errno;
	h->iommufd = open("/dev/iommu", O_RDWR);
	if (h->iommufd < 0)
		return -errno;
	bind.iommufd = h->iommufd;
	if (ioctl(h->device, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	if (ioctl(h->iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return -errno;
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(h->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -errno;
	return 0;
}

/* Opens the mdev through its group and a type1 container. */
static inline int vfio_open_group(const char *uuid, struct vfio_handle *h)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct vfio_group_status status = { .argsz = sizeof(status) };
	ssize_t n;

	snprintf(path, sizeof(path), MDEV_BUS "/%s/iommu_group", uuid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(link, '/') + 1);

	h->container = open("/dev/vfio/vfio", O_RDWR);
	if (h->container < 0)
		return -errno;
	h->group = open(path, O_RDWR);
	if (h->group < 0)
		return -errno;
	if (ioctl(h->group, VFIO_GROUP_GET_STATUS, &status))
		return -errno;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EBUSY;
	if (ioctl(h->group, VFIO_GROUP_SET_CONTAINER, &h->container))
		return -errno;
	if (ioctl(h->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	h->device = ioctl(h->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (h->device < 0)
		return -errno;
	return 0;
}

static inline int vfio_open(const char *uuid, bool cdev, struct vfio_handle *h)
{
	h->device = h->iommufd = h->group = h->container = -1;
	return cdev ? vfio_open_cdev(uuid, h) : vfio_open_group(uuid, h);
}

static inline void vfio_close(struct vfio_handle *h)
{
	int *fds[] = { &h->device, &h->iommufd, &h->group, &h->container };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static inline int region_info(int fd, uint32_t index, struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info) ? -errno : 0;
}

/* pread/pwrite that return -errno on failure and the byte count otherwise. */
static inline ssize_t rd(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static inline ssize_t wr(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static inline uint32_t rd32(int fd, off_t off)
{
	uint32_t v = 0xdeadbeef;

	if (pread(fd, &v, 4, off) != 4)
		return 0xdeadbeef;
	return v;
}

static inline int wr32(int fd, off_t off, uint32_t v)
{
	return pwrite(fd, &v, 4, off) == 4 ? 0 : -errno;
}

/*
 * Bad offsets: the Rust drivers answer -EINVAL; the C samples answer
 * -EFAULT, which is accepted for them only.
 */
static inline bool bad_offset_errno(ssize_t ret)
{
	return ret == -EINVAL || (mdev_impl_is_c() && ret == -EFAULT);
}

#endif /* MDEV_LIB_H */
