/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Module parameter checks both host drivers (mdpy, mbochs) must pass; each
 * test file wraps them in its own TEST_F. Include after kselftest_harness.h.
 */
#ifndef MODULE_PARAM_CHECKS_H
#define MODULE_PARAM_CHECKS_H

#include <sys/stat.h>

#include "mdev_lib.h"

/*
 * The C samples declare their parameter `count` 0444: it has a read-only
 * file in /sys/module/MODULE/parameters/ showing the value in effect.
 * (7.3's Rust module! gives parameters no sysfs file; ours adds it.)
 */
static inline void check_module_param(struct __test_metadata *_metadata,
				      const char *module, const char *name, long want)
{
	char path[PATH_MAX], buf[64], value[32];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", module, name);
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_EQ(S_IFREG | 0444, st.st_mode);
	snprintf(value, sizeof(value), "%ld\n", want);
	ASSERT_LT(0, sysfs_read(path, buf, sizeof(buf)));
	EXPECT_STREQ(value, buf);
	/* read-only even for root: there is no store */
	fd = open(path, O_WRONLY);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EACCES, errno);
	if (fd >= 0)
		close(fd);
}

#endif /* MODULE_PARAM_CHECKS_H */
