/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for rust/fbdev.rs, rust/iomem_wc.rs and rust/pci_resources.rs
 * (macros on some architectures).
 */
#ifndef KERNEL_EXT_HELPERS_FBDEV_H
#define KERNEL_EXT_HELPERS_FBDEV_H

#include <linux/types.h>

void *kx_ioremap_wc(resource_size_t offset, unsigned long size);
void kx_iounmap(void *addr);

struct pci_dev;
bool kx_pci_resource_is_mem(struct pci_dev *pdev, int bar);

struct vm_area_struct;
void kx_fb_set_page_prot(struct vm_area_struct *vma, unsigned long start);

#endif /* KERNEL_EXT_HELPERS_FBDEV_H */
