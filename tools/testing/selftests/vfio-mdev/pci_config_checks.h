/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Config-space checks both emulated devices (mdpy, mbochs) must pass; each
 * test file wraps them in its own TEST_F. Include after kselftest_harness.h.
 */
#ifndef PCI_CONFIG_CHECKS_H
#define PCI_CONFIG_CHECKS_H

#include "mdev_lib.h"

/*
 * C defect 9: a 16-bit BAR write stores 4 bytes read from a 2-byte variable.
 * BAR0 is a 32-bit prefetchable memory BAR of at least 1 MiB.
 */
static inline void check_subdword_bar0_write(struct __test_metadata *_metadata, int fd)
{
	uint16_t low = 0xffff;

	ASSERT_EQ(0, wr32(fd, 0x10, 0xe0000000));
	ASSERT_EQ(2, wr(fd, &low, 2, 0x10));
	/* bits below the BAR size are not writable: nothing changes */
	EXPECT_EQ(0xe0000008, rd32(fd, 0x10));
}

/* C defect 10: config space is 0xff bytes; a dword read at 0xfc overruns it. */
static inline void check_config_space_is_256_bytes(struct __test_metadata *_metadata, int fd)
{
	struct vfio_region_info info;
	uint32_t v = 0xdeadbeef;

	ASSERT_EQ(0, region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX, &info));
	EXPECT_EQ(256, info.size);
	EXPECT_EQ(4, rd(fd, &v, 4, 0xfc));
	EXPECT_EQ(0, v);
}

#endif /* PCI_CONFIG_CHECKS_H */
