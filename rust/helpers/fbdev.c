// SPDX-License-Identifier: GPL-2.0
/* C shims for rust/fbdev.rs and rust/iomem_wc.rs. */
#include <linux/io.h>

#include "fbdev.h"

void *kx_ioremap_wc(resource_size_t offset, unsigned long size)
{
	return (void __force *)ioremap_wc(offset, size);
}

void kx_iounmap(void *addr)
{
	iounmap((void __iomem __force *)addr);
}
