/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for refcounted pages (rust/page_ref.rs): get_page() and
 * put_page() are inline functions, alloc_page() a macro; and for the
 * write notification of VMAs (rust/vm_fault.rs).
 */
#ifndef KERNEL_EXT_HELPERS_PAGE_H
#define KERNEL_EXT_HELPERS_PAGE_H

struct page;

struct page *kx_alloc_zeroed_user_page(void);
struct page *kx_alloc_user_page(void);
void kx_get_page(struct page *page);
void kx_put_page(struct page *page);
struct page *kx_vmalloc_page_get(const void *addr);
void kx_lock_page(struct page *page);
void kx_unlock_page(struct page *page);

struct vm_area_struct;
void kx_vma_set_write_notify_prot(struct vm_area_struct *vma);

#endif /* KERNEL_EXT_HELPERS_PAGE_H */
