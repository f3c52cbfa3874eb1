// SPDX-License-Identifier: GPL-2.0
/* C shims for rust/fbdev.rs, rust/iomem_wc.rs and rust/pci_resources.rs. */
#include <linux/fb.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>

#include "fbdev.h"

void *kx_ioremap_wc(resource_size_t offset, unsigned long size)
{
	return (void __force *)ioremap_wc(offset, size);
}

void kx_iounmap(void *addr)
{
	iounmap((void __iomem __force *)addr);
}

bool kx_pci_resource_is_mem(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar) & IORESOURCE_MEM;
}

/* The page protection fb_io_mmap() gives a mapping of framebuffer memory at @start. */
void kx_fb_set_page_prot(struct vm_area_struct *vma, unsigned long start)
{
	vma->vm_page_prot = vma_get_page_prot(vma);
	vma->vm_page_prot = pgprot_framebuffer(vma->vm_page_prot, vma->vm_start,
					       vma->vm_end, start);
}
