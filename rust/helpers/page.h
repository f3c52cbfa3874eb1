/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for refcounted pages (rust/page_ref.rs): get_page() and
 * put_page() are inline functions, alloc_page() a macro.
 */
#ifndef KERNEL_EXT_HELPERS_PAGE_H
#define KERNEL_EXT_HELPERS_PAGE_H

struct page;

struct page *kx_alloc_zeroed_user_page(void);
void kx_get_page(struct page *page);
void kx_put_page(struct page *page);

#endif /* KERNEL_EXT_HELPERS_PAGE_H */
