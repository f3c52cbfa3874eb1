// SPDX-License-Identifier: GPL-2.0
/* C shims for refcounted pages (see page.h). */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/vmalloc.h>

#include "page.h"

/*
 * A zeroed order-0 page for memory user space maps (GFP_HIGHUSER), charged to
 * the allocating task's memory cgroup like the anonymous memory it stands for.
 */
struct page *kx_alloc_zeroed_user_page(void)
{
	return alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
}

/* The same, not zeroed: for a page the caller fills whole before sharing it. */
struct page *kx_alloc_user_page(void)
{
	return alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT);
}

void kx_get_page(struct page *page)
{
	get_page(page);
}

void kx_put_page(struct page *page)
{
	put_page(page);
}

/* The page of a vmalloc() allocation at addr, with a reference taken. */
struct page *kx_vmalloc_page_get(const void *addr)
{
	struct page *page = vmalloc_to_page(addr);

	if (page)
		get_page(page);
	return page;
}

void kx_lock_page(struct page *page)
{
	lock_page(page);
}

void kx_unlock_page(struct page *page)
{
	unlock_page(page);
}

/*
 * The protection of a shared mapping whose writes are notified: what
 * vma_set_page_prot() gives a VMA with ->page_mkwrite once mmap() returns,
 * set early so that pages inserted by the hook itself are read-only too.
 */
void kx_vma_set_write_notify_prot(struct vm_area_struct *vma)
{
	vma->vm_page_prot = vm_get_page_prot(vma->vm_flags & ~VM_SHARED);
}
