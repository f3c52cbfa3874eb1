// SPDX-License-Identifier: GPL-2.0
/* C shims for refcounted pages (see page.h). */
#include <linux/gfp.h>
#include <linux/mm.h>

#include "page.h"

/* A zeroed order-0 page for memory user space maps (GFP_HIGHUSER). */
struct page *kx_alloc_zeroed_user_page(void)
{
	return alloc_page(GFP_HIGHUSER | __GFP_ZERO);
}

void kx_get_page(struct page *page)
{
	get_page(page);
}

void kx_put_page(struct page *page)
{
	put_page(page);
}
